package dbagent

// The owner epoch (ADR 31): the controller that took the site over last
// sends the highest epoch (api.DBAgentHeaderEpoch). The agent remembers
// the highest it has seen and refuses any request carrying a lower one, or
// none: a controller taken over changes no member here once the new one
// has reached this agent, whatever it read of the owner before. The check
// and the operation are one step: a request holds the epoch's read lock
// for its whole run, and raising the epoch takes the write lock, so no
// operation of an older epoch is under way, or starts, once a newer
// request is let through.
//
// The highest epoch is also kept in each member's directory (EpochFile),
// so that an agent restarted holds the controllers to it again: one that
// was taken over while the agent was down is refused at once. A member
// directory that does not exist yet (a new host, before the first
// prepare) keeps nothing; the agent then starts with no epoch and takes
// the first it is sent.

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/atomicfile"
	"github.com/scalepress/scalepress/internal/galera"
	"github.com/scalepress/scalepress/internal/guard"
)

// EpochFile is the file in a member's directory that keeps the highest
// owner epoch the agent has seen.
const EpochFile = "owner-epoch"

// loadEpoch is the highest epoch kept in the members' directories, 0 when
// none keeps one; a file that cannot be read or parsed is an error (the
// agent would otherwise let an older controller in).
func loadEpoch(members []galera.MemberConfig) (uint64, error) {
	var high uint64
	for _, m := range members {
		b, err := os.ReadFile(filepath.Join(m.Dir, EpochFile))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, err
		}
		n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", filepath.Join(m.Dir, EpochFile), err)
		}
		high = max(high, n)
	}
	return high, nil
}

// keepEpoch writes epoch into every member directory there is. The caller
// holds epochMu for writing.
func (a *Agent) keepEpoch(epoch uint64) {
	for _, m := range a.cfg.Members {
		if _, err := os.Stat(m.Dir); err != nil {
			continue
		}
		if err := atomicfile.Write(filepath.Join(m.Dir, EpochFile), []byte(strconv.FormatUint(epoch, 10)+"\n"), 0o644); err != nil {
			a.logger.Warn("owner epoch not kept: a restart of this agent forgets it", "member", m.ID, "err", err)
		}
	}
}

// fenced runs next only for a request whose epoch is not below the
// highest seen, raising it first when it is above.
func (a *Agent) fenced(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var epoch uint64
		if v := r.Header.Get(api.DBAgentHeaderEpoch); v != "" {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil || n == 0 {
				guard.Refuse(w, r, a.logger, http.StatusBadRequest, "%s %s: header %s: want a positive number, got %q", r.Method, r.URL.Path, api.DBAgentHeaderEpoch, v)
				return
			}
			epoch = n
		}
		a.epochMu.RLock()
		if epoch > a.epoch {
			a.epochMu.RUnlock()
			a.epochMu.Lock() // waits for every request of an older epoch under way
			if epoch > a.epoch {
				a.logger.Info("a controller with a newer owner epoch drives this agent: requests of older ones are refused", "epoch", epoch, "was", a.epoch, "client", r.RemoteAddr)
				a.epoch = epoch
				a.keepEpoch(epoch)
			}
			a.epochMu.Unlock()
			a.epochMu.RLock()
		}
		defer a.epochMu.RUnlock()
		if epoch < a.epoch {
			w.Header().Set(api.DBAgentHeaderEpoch, strconv.FormatUint(a.epoch, 10))
			what := "owner epoch " + strconv.FormatUint(epoch, 10)
			if epoch == 0 {
				what = "no owner epoch"
			}
			guard.Refuse(w, r, a.logger, http.StatusConflict, "%s %s: %s, and a controller of epoch %d took the site over: this controller must stand down (only if the Nomad cluster was made anew, its indexes restarting, remove %s in the member directories on this host)", r.Method, r.URL.Path, what, a.epoch, EpochFile)
			return
		}
		next.ServeHTTP(w, r)
	})
}
