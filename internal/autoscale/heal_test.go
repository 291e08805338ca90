package autoscale

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// DefaultHealPolicy is the tests' policy: at most 3 replacements per 60 s
// and a 30 s grace (the controller takes its own from the configuration).
func DefaultHealPolicy() HealPolicy {
	return HealPolicy{MaxReplacements: 3, Window: 60 * time.Second, Grace: 30 * time.Second}
}

func TestHealer(t *testing.T) {
	const s = time.Second
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	bad := func(id string, c Condition, since time.Duration) NodeHealth {
		return NodeHealth{ID: id, Condition: c, Since: at(since)}
	}
	type step struct {
		at    time.Duration
		nodes []NodeHealth
	}
	type result struct {
		Replace  []string
		Deferred map[string]time.Time // ID → NotBefore
	}
	tests := []struct {
		name  string
		steps []step
		want  []result
	}{
		{
			name:  "healthy nodes are left alone",
			steps: []step{{0, []NodeHealth{{ID: "a", Condition: Healthy}, {ID: "b"}}}},
			want:  []result{{}},
		},
		{
			name:  "failed: at once",
			steps: []step{{0, []NodeHealth{bad("a", Failed, 0)}}},
			want:  []result{{Replace: []string{"a"}}},
		},
		{
			name: "unhealthy and exited: after the grace",
			steps: []step{
				{10 * s, []NodeHealth{bad("a", Unhealthy, 0), bad("b", Exited, 5*s)}},
				{30 * s, []NodeHealth{bad("a", Unhealthy, 0), bad("b", Exited, 5*s)}},
				{35 * s, []NodeHealth{bad("a", Unhealthy, 0), bad("b", Exited, 5*s)}},
			},
			want: []result{
				{Deferred: map[string]time.Time{"a": at(30 * s), "b": at(35 * s)}},
				{Replace: []string{"a"}, Deferred: map[string]time.Time{"b": at(35 * s)}},
				{Replace: []string{"b"}},
			},
		},
		{
			name: "rate limit: 3 per minute, failed first, then the longest failing",
			steps: []step{
				{40 * s, []NodeHealth{bad("e", Unhealthy, 0), bad("d", Unhealthy, 5*s), bad("c", Exited, 1*s), bad("b", Failed, 39*s), bad("a", Unhealthy, 9*s)}},
				{70 * s, []NodeHealth{bad("d", Unhealthy, 5*s), bad("a", Unhealthy, 9*s)}},
				{100 * s, []NodeHealth{bad("d", Unhealthy, 5*s), bad("a", Unhealthy, 9*s)}},
			},
			want: []result{
				{Replace: []string{"b", "e", "c"}, Deferred: map[string]time.Time{"d": at(100 * s), "a": at(100 * s)}},
				{Deferred: map[string]time.Time{"d": at(100 * s), "a": at(100 * s)}},
				{Replace: []string{"d", "a"}},
			},
		},
		{
			name: "a node ordered replaced is not ordered again",
			steps: []step{
				{0, []NodeHealth{bad("a", Failed, 0)}},
				{10 * s, []NodeHealth{bad("a", Failed, 0)}},
				{20 * s, nil}, // gone
				{200 * s, []NodeHealth{bad("a", Failed, 0)}}, // a new node with the same ID
			},
			want: []result{{Replace: []string{"a"}}, {}, {}, {Replace: []string{"a"}}},
		},
		{
			name: "crash loop: every new node fails, at most 3 per minute",
			steps: func() []step {
				var out []step
				for i := range 12 { // a new failed node every 10 s for 2 minutes
					var ns []NodeHealth
					for j := 0; j <= i; j++ {
						ns = append(ns, bad(string(rune('a'+j)), Failed, time.Duration(j)*10*s))
					}
					out = append(out, step{time.Duration(i) * 10 * s, ns})
				}
				return out
			}(),
			want: []result{
				{Replace: []string{"a"}},
				{Replace: []string{"b"}},
				{Replace: []string{"c"}},
				{Deferred: map[string]time.Time{"d": at(60 * s)}},
				{Deferred: map[string]time.Time{"d": at(60 * s), "e": at(60 * s)}},
				{Deferred: map[string]time.Time{"d": at(60 * s), "e": at(60 * s), "f": at(60 * s)}},
				{Replace: []string{"d"}, Deferred: map[string]time.Time{"e": at(70 * s), "f": at(70 * s), "g": at(70 * s)}},
				{Replace: []string{"e"}, Deferred: map[string]time.Time{"f": at(80 * s), "g": at(80 * s), "h": at(80 * s)}},
				{Replace: []string{"f"}, Deferred: map[string]time.Time{"g": at(120 * s), "h": at(120 * s), "i": at(120 * s)}},
				{Deferred: map[string]time.Time{"g": at(120 * s), "h": at(120 * s), "i": at(120 * s), "j": at(120 * s)}},
				{Deferred: map[string]time.Time{"g": at(120 * s), "h": at(120 * s), "i": at(120 * s), "j": at(120 * s), "k": at(120 * s)}},
				{Deferred: map[string]time.Time{"g": at(120 * s), "h": at(120 * s), "i": at(120 * s), "j": at(120 * s), "k": at(120 * s), "l": at(120 * s)}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := NewHealer(DefaultHealPolicy())
			if err != nil {
				t.Fatal(err)
			}
			var got []result
			for _, st := range tt.steps {
				d := h.Decide(at(st.at), st.nodes)
				var r result
				for _, rep := range d.Replace {
					if rep.Reason == "" || !rep.NotBefore.IsZero() {
						t.Errorf("at %s: replacement %+v", st.at, rep)
					}
					r.Replace = append(r.Replace, rep.ID)
				}
				for _, def := range d.Deferred {
					if def.Reason == "" {
						t.Errorf("at %s: deferral without a reason: %+v", st.at, def)
					}
					if r.Deferred == nil {
						r.Deferred = map[string]time.Time{}
					}
					r.Deferred[def.ID] = def.NotBefore
				}
				got = append(got, r)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("decisions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHealerReasons(t *testing.T) {
	h, err := NewHealer(HealPolicy{MaxReplacements: 1, Window: time.Minute, Grace: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	d := h.Decide(t0.Add(45*time.Second), []NodeHealth{
		{ID: "a", Condition: Failed, Since: t0, Detail: "php-fpm exited 5 times in 60s"},
		{ID: "b", Condition: Unhealthy, Since: t0, Detail: "GET /_scalepress/health: 502"},
		{ID: "c", Condition: Exited, Since: t0.Add(40 * time.Second)},
	})
	got := []string{d.Replace[0].Reason, d.Deferred[0].Reason, d.Deferred[1].Reason}
	want := []string{
		"failed: its supervisor gave up (php-fpm exited 5 times in 60s): replace (1 of 1 per 1m0s)",
		"exited for 5s: replaced after 30s grace",
		"unhealthy for 45s (GET /_scalepress/health: 502): rate limit of 1 replacements per 1m0s reached, next in 1m0s",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("reasons (-want +got):\n%s", diff)
	}
}
