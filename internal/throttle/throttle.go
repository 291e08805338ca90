// Package throttle limits password guessing against WordPress
// (docs/adr/0014-login-throttling.md): failed login attempts are counted per
// client address and per user name in a window, and a key over its limit is
// blocked for a while. It is pure: the caller says what a request carries
// (ParseForm, ParseXMLRPC, BasicUser) and how the node answered; the clock
// is injected; memory is bounded by fixed-size tables whatever the number of
// addresses or names sprayed at it.
package throttle

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Config is the limits of one Limiter.
type Config struct {
	// PerAddress is the failed attempts one client address (an IPv6 /64)
	// may make per Window, whatever the user names; 0 = no limit.
	PerAddress int
	// PerUser is the failed attempts against one user name from all
	// addresses together per Window; 0 = no limit. An address from which
	// that user logged in within TrustFor is spared this limit, so that an
	// attacker cannot lock the real user out from where they usually are.
	PerUser int
	// Window is how long failed attempts are counted: a key's window
	// starts at its first failure.
	Window time.Duration
	// Block is how long a key over its limit is refused; its count starts
	// again afterwards.
	Block time.Duration
	// TrustFor is how long a successful login spares its (address, user)
	// pair the user's limit; 0 = never.
	TrustFor time.Duration
	// MaxEntries bounds each table (addresses, user names, trusted pairs).
	MaxEntries int
}

// DefaultConfig is 20 failures per address and 10 per user name per 5
// minutes, then 15 minutes of refusals.
func DefaultConfig() Config {
	return Config{PerAddress: 20, PerUser: 10, Window: 5 * time.Minute, Block: 15 * time.Minute,
		TrustFor: 30 * 24 * time.Hour, MaxEntries: 65536}
}

// FieldError is a Config field out of range, named as in the config file.
type FieldError struct {
	Field string // per_address, per_user, window, block, trusted_for, max_entries
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Validate reports every field out of range.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if c.PerAddress < 0 || c.PerAddress > 1_000_000 {
		bad("per_address", "must be 0 (no limit) to 1000000, got %d", c.PerAddress)
	}
	if c.PerUser < 0 || c.PerUser > 1_000_000 {
		bad("per_user", "must be 0 (no limit) to 1000000, got %d", c.PerUser)
	}
	if c.Window < time.Second || c.Window > 24*time.Hour {
		bad("window", "must be 1s to 24h, got %s", c.Window)
	}
	if c.Block < time.Second || c.Block > 7*24*time.Hour {
		bad("block", "must be 1s to 168h, got %s", c.Block)
	}
	if c.TrustFor < 0 || c.TrustFor > 365*24*time.Hour {
		bad("trusted_for", "must be 0 (never) to 8760h, got %s", c.TrustFor)
	}
	if c.MaxEntries < 1024 || c.MaxEntries > 10_000_000 {
		bad("max_entries", "must be 1024 to 10000000, got %d", c.MaxEntries)
	}
	return errors.Join(errs...)
}

// By names what a verdict is about.
type By string

const (
	ByAddress By = "address"
	ByUser    By = "user"
)

// Verdict is the answer to an attempt.
type Verdict struct {
	Blocked bool
	By      By // which limit refused it (when Blocked)
	// RetryAfter is how long the block still lasts.
	RetryAfter time.Duration
	// Count and Limit are the refusing key's failures and its limit.
	Count, Limit int
	// Block is the block this attempt started (nil when it was refused by a
	// block already in force, or allowed): an event for the caller to report.
	Block *Block
}

// Block is a block that started: what was blocked and after how many
// failed attempts. It never holds a password.
type Block struct {
	Time    time.Time `json:"time"`
	By      By        `json:"by"`
	Address string    `json:"address"`        // the client address (the key for IPv6 is its /64)
	User    string    `json:"user,omitempty"` // the user name tried, when known
	Count   int       `json:"count"`          // failures counted plus the attempts refused
	Until   time.Time `json:"until"`
}

// recentBlocks is how many started blocks Recent keeps.
const recentBlocks = 32

// Limiter counts failed login attempts. Safe for concurrent use.
type Limiter struct {
	cfg Config
	now func() time.Time

	mu       sync.Mutex
	addrs    *table
	users    *table
	trusted  *table // "address-key user" → last success (seen)
	stats    Stats
	recent   []Block // ring of the last recentBlocks
	recentAt int
}

// Stats are a Limiter's counters since it was made.
type Stats struct {
	Attempts  int64 `json:"attempts"`  // attempts charged (an xmlrpc multicall charges each call)
	Successes int64 `json:"successes"` // attempts the node answered as a login
	Refused   struct {
		Address int64 `json:"address"`
		User    int64 `json:"user"`
	} `json:"refused"` // requests refused
	Blocks struct {
		Address int64 `json:"address"`
		User    int64 `json:"user"`
	} `json:"blocks"` // blocks started
	// Blocked are the keys blocked now; Tracked the entries per table.
	Blocked struct {
		Address int `json:"address"`
		User    int `json:"user"`
	} `json:"blocked"`
	Tracked struct {
		Address int `json:"address"`
		User    int `json:"user"`
		Trusted int `json:"trusted"`
	} `json:"tracked"`
	Evictions int64 `json:"evictions"` // entries forgotten to stay within MaxEntries
}

// New returns a Limiter; now is its clock (time.Now in production).
func New(cfg Config, now func() time.Time) (*Limiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("throttle: %w", err)
	}
	return &Limiter{cfg: cfg, now: now, addrs: newTable(cfg.MaxEntries), users: newTable(cfg.MaxEntries),
		trusted: newTable(cfg.MaxEntries)}, nil
}

// Config returns the limiter's configuration.
func (l *Limiter) Config() Config { return l.cfg }

// Attempt is a login request about to go to a node: n attempts (an xmlrpc
// multicall carries several; 0 checks the limits without charging, for
// requests counted only when the node answers them as failed, see Fail) by
// user ("" = unknown: only the address limit applies) from addr. Unless a
// limit refuses, the n attempts are charged now, before the node answers,
// so that parallel guesses cannot race past the limit; Succeed gives them
// back. A request that would go over a limit is refused whole and starts a
// Block.
func (l *Limiter) Attempt(addr netip.Addr, user string, n int) Verdict {
	now := l.now()
	ak, uk := AddrKey(addr), NormUser(user)
	l.mu.Lock()
	defer l.mu.Unlock()
	need := max(n, 1)
	var a, u *counter
	if l.cfg.PerAddress > 0 {
		a = l.touch(l.addrs, ak, now)
		if v, refused := l.check(a, need, l.cfg.PerAddress, ByAddress, addr, user, now); refused {
			return v
		}
	}
	if l.cfg.PerUser > 0 && uk != "" && !l.trustedPair(ak, uk, now) {
		u = l.touch(l.users, uk, now)
		if v, refused := l.check(u, need, l.cfg.PerUser, ByUser, addr, user, now); refused {
			return v
		}
	}
	l.stats.Attempts += int64(n)
	if a != nil {
		a.count += n
	}
	if u != nil {
		u.count += n
	}
	return Verdict{}
}

// Fail counts one failed attempt that Attempt did not charge (n = 0): a
// request whose failure is only known from the node's answer.
func (l *Limiter) Fail(addr netip.Addr, user string) {
	now := l.now()
	ak, uk := AddrKey(addr), NormUser(user)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stats.Attempts++
	if l.cfg.PerAddress > 0 {
		l.touch(l.addrs, ak, now).count++
	}
	if l.cfg.PerUser > 0 && uk != "" && !l.trustedPair(ak, uk, now) {
		l.touch(l.users, uk, now).count++
	}
}

// Succeed records that the node answered the n attempts charged for a
// request of user from addr as a success: they are given back. trust says
// the answer proves the password (a login cookie): the pair is then
// spared the user's limit for TrustFor.
func (l *Limiter) Succeed(addr netip.Addr, user string, n int, trust bool) {
	now := l.now()
	ak, uk := AddrKey(addr), NormUser(user)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stats.Successes++
	if c := l.addrs.get(ak); c != nil {
		c.count = max(c.count-n, 0)
	}
	if uk == "" {
		return
	}
	if c := l.users.get(uk); c != nil && !l.trustedPair(ak, uk, now) { // a trusted pair was not charged
		c.count = max(c.count-n, 0)
	}
	if trust && l.cfg.TrustFor > 0 {
		l.trusted.getOrAdd(ak+" "+uk, now).seen = now
	}
}

// touch returns key's counter in t with its window and block brought up
// to now.
func (l *Limiter) touch(t *table, key string, now time.Time) *counter {
	c := t.getOrAdd(key, now)
	switch {
	case !c.blockedUntil.IsZero() && !c.blocked(now):
		c.count, c.start, c.blockedUntil = 0, now, time.Time{} // served its block
	case c.blockedUntil.IsZero() && now.Sub(c.start) >= l.cfg.Window:
		c.count, c.start = 0, now
	}
	if c.count == 0 && c.blockedUntil.IsZero() {
		c.start = now // the window starts at the first failure
	}
	return c
}

// check refuses when c is blocked or need more attempts would go over
// limit (then a block starts).
func (l *Limiter) check(c *counter, need, limit int, by By, addr netip.Addr, user string, now time.Time) (Verdict, bool) {
	if !c.blocked(now) && c.count+need <= limit {
		return Verdict{}, false
	}
	v := Verdict{Blocked: true, By: by, Count: c.count, Limit: limit}
	if !c.blocked(now) {
		c.blockedUntil = now.Add(l.cfg.Block)
		b := Block{Time: now, By: by, Address: addr.String(), User: NormUser(user), Count: c.count + need, Until: c.blockedUntil}
		l.remember(b)
		v.Block = &b
		if by == ByAddress {
			l.stats.Blocks.Address++
		} else {
			l.stats.Blocks.User++
		}
	}
	if by == ByAddress {
		l.stats.Refused.Address++
	} else {
		l.stats.Refused.User++
	}
	v.RetryAfter = c.blockedUntil.Sub(now)
	return v, true
}

func (l *Limiter) trustedPair(ak, uk string, now time.Time) bool {
	if l.cfg.TrustFor <= 0 {
		return false
	}
	c := l.trusted.get(ak + " " + uk)
	return c != nil && now.Sub(c.seen) < l.cfg.TrustFor
}

func (l *Limiter) remember(b Block) {
	if len(l.recent) < recentBlocks {
		l.recent = append(l.recent, b)
		return
	}
	l.recent[l.recentAt] = b
	l.recentAt = (l.recentAt + 1) % recentBlocks
}

// Recent returns the last blocks that started, oldest first.
func (l *Limiter) Recent() []Block {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Block, 0, len(l.recent))
	out = append(out, l.recent[l.recentAt:]...)
	return append(out, l.recent[:l.recentAt]...)
}

// Stats returns the counters, and the blocked keys now (a scan of the
// tables, for metrics scrapes).
func (l *Limiter) Stats() Stats {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.stats
	s.Blocked.Address, s.Blocked.User = l.addrs.blockedNow(now), l.users.blockedNow(now)
	s.Tracked.Address, s.Tracked.User, s.Tracked.Trusted = l.addrs.len(), l.users.len(), l.trusted.len()
	s.Evictions = l.addrs.evictions + l.users.evictions + l.trusted.evictions
	return s
}

// AddrKey is the key an address is counted under: an IPv4 address itself,
// an IPv6 address's /64 (one subscriber's network: counting single IPv6
// addresses would give an attacker 2^64 tries).
func AddrKey(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// maxUser bounds a user name as counted (WordPress's user_login is at most
// 60 characters, an e-mail address at most 100).
const maxUser = 100

// NormUser is the key a user name is counted under: WordPress matches
// logins and e-mail addresses without regard to case or surrounding space.
func NormUser(u string) string {
	u = strings.ToLower(strings.TrimSpace(u))
	if len(u) > maxUser {
		u = u[:maxUser]
	}
	return u
}
