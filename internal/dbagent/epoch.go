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
// The highest epoch is kept in memory: an agent restarted holds nobody to
// an epoch until a controller reaches it again (the new one does within
// its next poll of the members).

import (
	"net/http"
	"strconv"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/guard"
)

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
			guard.Refuse(w, r, a.logger, http.StatusConflict, "%s %s: %s, and a controller of epoch %d took the site over: this controller must stand down", r.Method, r.URL.Path, what, a.epoch)
			return
		}
		next.ServeHTTP(w, r)
	})
}
