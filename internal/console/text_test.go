package console

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/api"
)

func TestText(t *testing.T) {
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.Local)
	doc := api.Console{
		Time: now,
		Host: api.HostLoad{CPUs: 2, CPU: 0.35, Load1: 1.5},
		Status: api.Status{
			SiteURL: "http://127.0.0.1:8080", Ready: true,
			Nodes: []api.NodeStatus{
				{ID: "node-1", Addr: "127.0.1.1:8080", State: api.NodeInService, Utilization: 0.5, FilesSeq: 42},
				{ID: "node-2", Addr: "127.0.1.2:8080", State: api.NodeWarming, FilesSeq: 40, Restarts: 1},
			},
			Autoscaling: &api.Autoscaling{Min: 1, Max: 4, Desired: 2, Target: 0.6, Utilization: 0.5},
			DB:          &api.DBStatus{Router: "127.0.0.1:3306", Writer: "db-1", Members: []api.DBMemberStatus{{ID: "db-1", Addr: "127.0.2.1:3306", State: api.DBSynced, LastCommitted: 1234}}},
			Files:       &api.FilesStatus{State: "up", Seq: 42},
			DNS:         &api.DNSStatus{Zone: "example.test.", Addr: "127.0.0.1:5353", State: "up", Regions: []api.DNSRegionStatus{{Name: "eu", Edges: []string{"edge-1"}, Healthy: true}, {Name: "us", Edges: []string{}}, {Name: "ap", Edges: []string{}}}},
		},
		Edges: []api.EdgeCache{{ID: "edge-1", Region: "eu", Healthy: true, Hits: 90, Misses: 10, HitRatio: 0.9, Purged: 3, Objects: 12}},
		DNS:   []api.DNSAnswers{{Region: "eu", Answers: 1234, Rate: 12.5}, {Region: "us", Error: "connection refused"}},
		Load: []api.LoadSample{
			{Time: now.Add(-2 * time.Second), Utilization: 0},
			{Time: now.Add(-time.Second), Utilization: 0.5},
			{Time: now, Utilization: 1},
		},
		Events: []api.Event{{Time: now, Kind: "scale", Message: "scale out to 2: utilisation 0.90 over target 0.60"}},
	}
	var b strings.Builder
	Text(&b, doc, 100)
	want := []string{
		"scalepress http://127.0.0.1:8080  ready  09:00:00   host CPU 35% of 2, load 1.50",
		"",
		"NODES  2, 1 in service, desired 2 (min 1, max 4)   load 50% / target 60%",
		"  node-1    in-service  127.0.1.1        [#####.....]  50%  restarts 0  files 42",
		"  node-2    warming     127.0.1.2        [..........]   0%  restarts 1  files 40",
		"  load     ▁▄█",
		"           last 2s",
		"",
		"EDGES",
		"  edge-1    eu         healthy   hit  90%  90 hits 10 misses  purged 3  objects 12",
		"",
		"DB     router 127.0.0.1:3306  writer db-1",
		"  db-1      synced      127.0.2.1:3306        committed 1234",
		"",
		"FILES  store up, sequence 42",
		"  node-1    applied 42, behind 0",
		"  node-2    applied 40, behind 2",
		"",
		"DNS    example.test. on 127.0.0.1:5353, up",
		"  eu        edge-1  healthy  12.5 answers/s, 1234 total",
		"  us          no healthy edge  answers: connection refused",
		"  ap          no healthy edge",
		"",
		"EVENTS",
		"  09:00:00 scale    scale out to 2: utilisation 0.90 over target 0.60",
	}
	if d := cmp.Diff(want, strings.Split(strings.TrimRight(b.String(), "\n"), "\n")); d != "" {
		t.Errorf("Text (-want +got):\n%s", d)
	}

	// Narrow terminals get lines cut, never wrapped.
	b.Reset()
	Text(&b, doc, 60)
	for _, l := range strings.Split(b.String(), "\n") {
		if n := len([]rune(l)); n > 60 {
			t.Errorf("%d columns: %q", n, l)
		}
	}
}

func TestParseCPU(t *testing.T) {
	tests := []struct {
		name, stat  string
		busy, total uint64
		ok          bool
	}{
		{"linux", "cpu  100 5 50 800 40 3 2 0 7 0\ncpu0 1 2 3\n", 160, 1000, true},
		{"short", "cpu 1 2\n", 0, 0, false},
		{"not cpu", "intr 1 2 3 4 5\n", 0, 0, false},
		{"garbage", "cpu a b c d e\n", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			busy, total, ok := parseCPU(tt.stat)
			if d := cmp.Diff([]any{tt.busy, tt.total, tt.ok}, []any{busy, total, ok}); d != "" {
				t.Error(d)
			}
		})
	}
}
