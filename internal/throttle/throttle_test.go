package throttle

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// clock is a settable time for the limiter.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestLimiter(t *testing.T, cfg Config) (*Limiter, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)}
	l, err := New(cfg, c.now)
	if err != nil {
		t.Fatal(err)
	}
	return l, c
}

func testConfig() Config {
	return Config{PerAddress: 5, PerUser: 3, Window: time.Minute, Block: 2 * time.Minute, TrustFor: time.Hour, MaxEntries: 1024}
}

var (
	attacker = netip.MustParseAddr("198.51.100.7")
	other    = netip.MustParseAddr("198.51.100.8")
	admin    = netip.MustParseAddr("203.0.113.10")
)

// step is one thing that happens to a limiter in a scenario.
type step struct {
	wait    time.Duration
	addr    netip.Addr
	user    string
	n       int    // Attempt(n)
	fail    bool   // Fail instead of Attempt
	succeed bool   // Succeed(n, trust) instead of Attempt
	trust   bool   //
	want    string // "ok", or "address"/"user" for the limit that refuses
}

func TestLimiter(t *testing.T) {
	rep := func(s step, k int) []step {
		out := make([]step, k)
		for i := range out {
			out[i] = s
		}
		return out
	}
	cat := func(parts ...[]step) []step {
		var out []step
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name  string
		cfg   func(*Config)
		steps []step
	}{
		{
			name: "the N+1th attempt of an address is refused",
			cfg:  func(c *Config) { c.PerUser = 0 },
			steps: cat(rep(step{addr: attacker, user: "admin", n: 1, want: "ok"}, 5),
				[]step{{addr: attacker, user: "admin", n: 1, want: "address"}, {addr: other, user: "admin", n: 1, want: "ok"}}),
		},
		{
			name: "the block outlasts the window, then counting starts again",
			cfg:  func(c *Config) { c.PerUser = 0 },
			steps: cat(rep(step{addr: attacker, n: 1, want: "ok"}, 5),
				[]step{{addr: attacker, n: 1, want: "address"}, {wait: 90 * time.Second, addr: attacker, n: 1, want: "address"},
					{wait: 31 * time.Second, addr: attacker, n: 1, want: "ok"}}),
		},
		{
			name: "the window ends the count",
			cfg:  func(c *Config) { c.PerUser = 0 },
			steps: cat(rep(step{addr: attacker, n: 1, want: "ok"}, 5),
				[]step{{wait: time.Minute, addr: attacker, n: 1, want: "ok"}}, rep(step{addr: attacker, n: 1, want: "ok"}, 4),
				[]step{{addr: attacker, n: 1, want: "address"}}),
		},
		{
			name: "a success gives its attempt back",
			cfg:  func(c *Config) { c.PerUser = 0 },
			steps: cat(rep(step{addr: admin, user: "admin", n: 1, want: "ok"}, 5),
				[]step{{addr: admin, user: "admin", succeed: true, n: 1}, {addr: admin, user: "admin", n: 1, want: "ok"},
					{addr: admin, user: "admin", n: 1, want: "address"}}),
		},
		{
			name: "a multicall with more calls than the limit is refused whole",
			steps: []step{{addr: attacker, n: 500, want: "address"}, {addr: other, n: 5, want: "ok"},
				{addr: other, n: 1, want: "address"}},
		},
		{
			name: "a user name is limited across addresses",
			steps: []step{{addr: attacker, user: "admin", n: 1, want: "ok"}, {addr: other, user: "Admin", n: 1, want: "ok"},
				{addr: netip.MustParseAddr("192.0.2.1"), user: " ADMIN ", n: 1, want: "ok"},
				{addr: netip.MustParseAddr("192.0.2.2"), user: "admin", n: 1, want: "user"},
				{addr: netip.MustParseAddr("192.0.2.2"), user: "editor", n: 1, want: "ok"}},
		},
		{
			name: "where the user logged in, their name's block does not apply",
			steps: cat([]step{{addr: admin, user: "admin", n: 1, want: "ok"}, {addr: admin, user: "admin", n: 1, succeed: true, trust: true}},
				rep(step{addr: attacker, user: "admin", n: 1, want: "ok"}, 3),
				[]step{{addr: attacker, user: "admin", n: 1, want: "user"}, {addr: admin, user: "admin", n: 1, want: "ok"},
					{addr: other, user: "admin", n: 1, want: "user"}}),
		},
		{
			name: "trust ends after trusted_for",
			steps: cat([]step{{addr: admin, user: "admin", n: 1, want: "ok"}, {addr: admin, user: "admin", n: 1, succeed: true, trust: true},
				{wait: time.Hour}}, rep(step{addr: attacker, user: "admin", n: 1, want: "ok"}, 3),
				[]step{{addr: admin, user: "admin", n: 1, want: "user"}}),
		},
		{
			name: "a success without proof trusts nobody",
			steps: cat([]step{{addr: attacker, user: "admin", n: 1, want: "ok"}, {addr: attacker, user: "admin", n: 1, succeed: true}},
				rep(step{addr: other, user: "admin", n: 1, want: "ok"}, 3),
				[]step{{addr: attacker, user: "admin", n: 1, want: "user"}}),
		},
		{
			name: "failures known from the answer count; a check charges nothing",
			cfg:  func(c *Config) { c.PerUser = 0 },
			steps: cat(rep(step{addr: attacker, user: "app", n: 0, want: "ok"}, 10), rep(step{addr: attacker, user: "app", fail: true}, 5),
				[]step{{addr: attacker, user: "app", n: 0, want: "address"}}),
		},
		{
			name: "an IPv6 /64 is one address",
			cfg:  func(c *Config) { c.PerAddress, c.PerUser = 2, 0 },
			steps: []step{{addr: netip.MustParseAddr("2001:db8:1:2::1"), n: 1, want: "ok"}, {addr: netip.MustParseAddr("2001:db8:1:2:ffff::9"), n: 1, want: "ok"},
				{addr: netip.MustParseAddr("2001:db8:1:2::abcd"), n: 1, want: "address"}, {addr: netip.MustParseAddr("2001:db8:1:3::1"), n: 1, want: "ok"}},
		},
		{
			name:  "no limits",
			cfg:   func(c *Config) { c.PerAddress, c.PerUser = 0, 0 },
			steps: []step{{addr: attacker, user: "admin", n: 1000, want: "ok"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			l, c := newTestLimiter(t, cfg)
			var got, want []string
			for i, s := range tt.steps {
				c.advance(s.wait)
				switch {
				case s.fail:
					l.Fail(s.addr, s.user)
				case s.succeed:
					l.Succeed(s.addr, s.user, s.n, s.trust)
				case s.want != "":
					v := l.Attempt(s.addr, s.user, s.n)
					res := "ok"
					if v.Blocked {
						res = string(v.By)
					}
					got = append(got, fmt.Sprintf("%d: %s", i, res))
					want = append(want, fmt.Sprintf("%d: %s", i, s.want))
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("verdicts (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVerdictAndBlock(t *testing.T) {
	l, c := newTestLimiter(t, testConfig())
	for range 3 {
		l.Attempt(attacker, "admin", 1)
	}
	v := l.Attempt(attacker, "admin", 1)
	want := Verdict{Blocked: true, By: ByUser, RetryAfter: 2 * time.Minute, Count: 3, Limit: 3,
		Block: &Block{Time: c.t, By: ByUser, Address: "198.51.100.7", User: "admin", Count: 4, Until: c.t.Add(2 * time.Minute)}}
	if diff := cmp.Diff(want, v); diff != "" {
		t.Errorf("first refusal (-want +got):\n%s", diff)
	}
	c.advance(30 * time.Second)
	v = l.Attempt(attacker, "admin", 1)
	if v.Block != nil || v.RetryAfter != 90*time.Second {
		t.Errorf("second refusal: %+v, want no new block and 90s left", v)
	}
	if diff := cmp.Diff([]Block{*want.Block}, l.Recent()); diff != "" {
		t.Errorf("recent (-want +got):\n%s", diff)
	}
	st := l.Stats()
	if st.Attempts != 3 || st.Refused.User != 2 || st.Blocks.User != 1 || st.Blocked.User != 1 || st.Blocked.Address != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestRecentKeepsTheLast(t *testing.T) {
	cfg := testConfig()
	cfg.PerAddress, cfg.PerUser = 1, 0
	l, _ := newTestLimiter(t, cfg)
	for i := range recentBlocks + 5 {
		a := netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
		l.Attempt(a, "", 2)
	}
	r := l.Recent()
	if len(r) != recentBlocks || r[0].Address != "192.0.2.5" || r[len(r)-1].Address != fmt.Sprintf("192.0.2.%d", recentBlocks+4) {
		t.Errorf("recent: %d blocks, first %s, last %s", len(r), r[0].Address, r[len(r)-1].Address)
	}
}

// TestSprayStaysBounded: a spray from many more addresses and user names
// than the tables hold keeps them at their size, and a blocked address
// is forgotten last.
func TestSprayStaysBounded(t *testing.T) {
	cfg := testConfig()
	cfg.MaxEntries = 1024
	l, c := newTestLimiter(t, cfg)
	for range 5 {
		l.Attempt(attacker, "", 1)
	}
	if v := l.Attempt(attacker, "", 1); !v.Blocked {
		t.Fatal("attacker not blocked")
	}
	for i := range 100_000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		l.Attempt(a, fmt.Sprintf("user%d", i), 1)
		if i%1000 == 0 {
			c.advance(time.Millisecond)
		}
	}
	st := l.Stats()
	if st.Tracked.Address > cfg.MaxEntries || st.Tracked.User > cfg.MaxEntries {
		t.Errorf("tracked %+v, more than %d", st.Tracked, cfg.MaxEntries)
	}
	if st.Evictions < 2*(100_000-int64(cfg.MaxEntries)) {
		t.Errorf("evictions = %d", st.Evictions)
	}
	if v := l.Attempt(attacker, "", 1); !v.Blocked {
		t.Error("the spray made the edge forget a blocked address")
	}
}

func BenchmarkAttempt(b *testing.B) {
	l, err := New(DefaultConfig(), time.Now)
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		i++
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		l.Attempt(a, "admin", 1)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := Config{PerAddress: -1, PerUser: 2_000_000, Window: 0, Block: 0, TrustFor: -1, MaxEntries: 1}
	err := bad.Validate()
	var fields []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		fields = append(fields, e.(*FieldError).Field)
	}
	if diff := cmp.Diff([]string{"per_address", "per_user", "window", "block", "trusted_for", "max_entries"}, fields); diff != "" {
		t.Error(diff)
	}
}
