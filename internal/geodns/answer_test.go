package geodns

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

func TestBuildState(t *testing.T) {
	regions := []Region{{Name: "eu"}, {Name: "us"}, {Name: "ap"}, {Name: "default"}}
	fallbacks := [][]int{{1}, {0}, {1, 0}, nil}
	edges := []edgeInfo{
		{region: 0, addr: netip.MustParseAddr("192.0.2.1"), weight: 1},
		{region: 0, addr: netip.MustParseAddr("2001:db8::1"), weight: 1},
		{region: 1, addr: netip.MustParseAddr("192.0.2.2"), weight: 1},
		{region: 2, addr: netip.MustParseAddr("192.0.2.3"), weight: 1},
		{region: 3, addr: netip.MustParseAddr("192.0.2.4"), weight: 1},
	}
	// served is who answers a client region for one family.
	type served struct {
		Region   int
		Fallback bool
		FailOpen bool
		Edges    []int32
	}
	noV6 := func(r int) served { return served{Region: r} } // region without IPv6: NODATA
	tests := []struct {
		name   string
		up     []bool
		wantV4 []served // per client region: eu, us, ap, default
		wantV6 []served
	}{
		{
			name:   "all healthy: each its own",
			up:     []bool{true, true, true, true, true},
			wantV4: []served{{0, false, false, []int32{0}}, {1, false, false, []int32{2}}, {2, false, false, []int32{3}}, {3, false, false, []int32{4}}},
			wantV6: []served{{0, false, false, []int32{1}}, noV6(1), noV6(2), noV6(3)},
		},
		{
			name:   "eu IPv4 down: A from the fallback, AAAA still eu",
			up:     []bool{false, true, true, true, true},
			wantV4: []served{{1, true, false, []int32{2}}, {1, false, false, []int32{2}}, {2, false, false, []int32{3}}, {3, false, false, []int32{4}}},
			wantV6: []served{{0, false, false, []int32{1}}, noV6(1), noV6(2), noV6(3)},
		},
		{
			name:   "us and ap down: us to eu, ap skips us for eu",
			up:     []bool{true, true, false, false, true},
			wantV4: []served{{0, false, false, []int32{0}}, {0, true, false, []int32{0}}, {0, true, false, []int32{0}}, {3, false, false, []int32{4}}},
			wantV6: []served{{0, false, false, []int32{1}}, noV6(1), noV6(2), noV6(3)},
		},
		{
			name:   "eu, us and ap down: the default",
			up:     []bool{false, false, false, false, true},
			wantV4: []served{{3, true, false, []int32{4}}, {3, true, false, []int32{4}}, {3, true, false, []int32{4}}, {3, false, false, []int32{4}}},
			wantV6: []served{{-1, true, true, []int32{1}}, noV6(1), noV6(2), noV6(3)},
		},
		{
			name:   "only ap up: the healthy rest",
			up:     []bool{false, false, false, true, false},
			wantV4: []served{{-1, true, false, []int32{3}}, {-1, true, false, []int32{3}}, {2, false, false, []int32{3}}, {-1, true, false, []int32{3}}},
			wantV6: []served{{-1, true, true, []int32{1}}, noV6(1), noV6(2), noV6(3)},
		},
		{
			name:   "nothing up: fail open",
			up:     []bool{false, false, false, false, false},
			wantV4: []served{{-1, true, true, []int32{0, 2, 3, 4}}, {-1, true, true, []int32{0, 2, 3, 4}}, {-1, true, true, []int32{0, 2, 3, 4}}, {-1, true, true, []int32{0, 2, 3, 4}}},
			wantV6: []served{{-1, true, true, []int32{1}}, noV6(1), noV6(2), noV6(3)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := buildState(regions, fallbacks, 3, edges, tt.up)
			got := func(fam int) []served {
				var out []served
				for _, s := range st.serve[fam] {
					var ids []int32
					for _, w := range s.edges {
						ids = append(ids, w.edge)
					}
					out = append(out, served{s.region, s.fallback, s.failOpen, ids})
				}
				return out
			}
			if diff := cmp.Diff(tt.wantV4, got(famV4)); diff != "" {
				t.Errorf("IPv4 (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantV6, got(famV6)); diff != "" {
				t.Errorf("IPv6 (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPickWeighted(t *testing.T) {
	rrs := []dns.RR{
		&dns.A{Hdr: dns.RR_Header{Name: "a."}},
		&dns.A{Hdr: dns.RR_Header{Name: "b."}},
		&dns.A{Hdr: dns.RR_Header{Name: "c."}},
	}
	set := []weighted{{0, 6}, {1, 3}, {2, 1}}
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name      string
		n         int
		wantLen   int
		wantFirst map[string]float64 // share of first positions
	}{
		{name: "all, weighted order", n: 0, wantLen: 3, wantFirst: map[string]float64{"a.": 0.6, "b.": 0.3, "c.": 0.1}},
		{name: "answer_count 1", n: 1, wantLen: 1, wantFirst: map[string]float64{"a.": 0.6, "b.": 0.3, "c.": 0.1}},
		{name: "answer_count larger than the set", n: 5, wantLen: 3, wantFirst: map[string]float64{"a.": 0.6, "b.": 0.3, "c.": 0.1}},
	}
	const draws = 20000
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var scratch []weighted
			first := map[string]float64{}
			for range draws {
				got := pickWeighted(nil, rrs, set, tt.n, &scratch, rng.IntN)
				if len(got) != tt.wantLen {
					t.Fatalf("picked %d, want %d", len(got), tt.wantLen)
				}
				seen := map[string]bool{}
				for _, rr := range got {
					if seen[rr.Header().Name] {
						t.Fatalf("picked %s twice", rr.Header().Name)
					}
					seen[rr.Header().Name] = true
				}
				first[got[0].Header().Name] += 1.0 / draws
			}
			approx := cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) < 0.02 })
			if diff := cmp.Diff(tt.wantFirst, first, approx); diff != "" {
				t.Errorf("first positions (-want +got):\n%s", diff)
			}
		})
	}
	if got := pickWeighted(nil, rrs, nil, 0, new([]weighted), rng.IntN); len(got) != 0 {
		t.Errorf("empty set picked %v", got)
	}
	if got := pickWeighted(nil, rrs, set[1:2], 0, new([]weighted), rng.IntN); len(got) != 1 || got[0] != rrs[1] {
		t.Errorf("single edge picked %v", got)
	}
}
