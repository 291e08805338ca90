package galera

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseGraState(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    GraState
		wantErr string
	}{
		{name: "after a crash", in: "# GALERA saved state\nversion: 2.1\nuuid:    ef78fd03-e9a1-11f1-a34b-2b31645d8083\nseqno:   -1\nsafe_to_bootstrap: 0\n",
			want: GraState{Version: "2.1", UUID: uA, Seqno: -1}},
		{name: "last one out of a clean stop", in: "# GALERA saved state\nversion: 2.1\nuuid:    ef78fd03-e9a1-11f1-a34b-2b31645d8083\nseqno:   1821\nsafe_to_bootstrap: 1\n",
			want: GraState{Version: "2.1", UUID: uA, Seqno: 1821, SafeToBootstrap: true}},
		{name: "never in a cluster", in: "version: 2.1\nuuid: 00000000-0000-0000-0000-000000000000\nseqno: -1\n",
			want: GraState{Version: "2.1", UUID: ZeroUUID, Seqno: -1}},
		{name: "bad seqno", in: "uuid: " + uA + "\nseqno: x\n", wantErr: "seqno"},
		{name: "bad uuid", in: "uuid: nope\nseqno: 1\n", wantErr: "uuid"},
		{name: "bad safe flag", in: "uuid: " + uA + "\nseqno: 1\nsafe_to_bootstrap: yes\n", wantErr: "safe_to_bootstrap"},
		{name: "missing seqno", in: "uuid: " + uA + "\n", wantErr: "missing"},
		{name: "garbage line", in: "uuid " + uA + "\n", wantErr: "key: value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseGraState([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Error(diff)
			}
		})
	}
}

func TestParseRecovered(t *testing.T) {
	out := `2026-11-26 14:02:13 0 [Note] InnoDB: Starting crash recovery from checkpoint LSN=47427
2026-11-26 14:02:13 0 [Note] WSREP: Recovered position: ef78fd03-e9a1-11f1-a34b-2b31645d8083:6
`
	tests := []struct {
		name, in string
		want     Position
		wantErr  string
	}{
		{"crash recovery", out, Position{uA, 6}, ""},
		{"standalone datadir", "WSREP: Recovered position: 00000000-0000-0000-0000-000000000000:-1\n", Position{ZeroUUID, -1}, ""},
		{"last one wins", "WSREP: Recovered position: " + uA + ":5\nWSREP: Recovered position: " + uA + ":7\n", Position{uA, 7}, ""},
		{"no line", "[ERROR] InnoDB: cannot open\n", Position{}, "no \"Recovered position\""},
		{"bad position", "WSREP: Recovered position: " + uA + ":x\n", Position{}, "seqno"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRecovered([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	if (Position{ZeroUUID, -1}).Known() || (Position{uA, -1}).Known() || !(Position{uA, 0}).Known() {
		t.Error("Known is wrong")
	}
}

func TestSetSafeToBootstrap(t *testing.T) {
	dir := t.TempDir()
	orig := "# GALERA saved state\nversion: 2.1\nuuid:    " + uA + "\nseqno:   -1\nsafe_to_bootstrap: 0\n"
	os.WriteFile(filepath.Join(dir, "grastate.dat"), []byte(orig), 0o660)
	os.Chmod(filepath.Join(dir, "grastate.dat"), 0o660)
	if err := SetSafeToBootstrap(dir, true); err != nil {
		t.Fatal(err)
	}
	g, ok, err := ReadGraState(dir)
	if err != nil || !ok || !g.SafeToBootstrap || g.UUID != uA || g.Seqno != -1 {
		t.Fatalf("after set: %+v %v %v", g, ok, err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "grastate.dat"))
	if string(b) != strings.Replace(orig, "safe_to_bootstrap: 0", "safe_to_bootstrap: 1", 1) {
		t.Errorf("other lines changed:\n%s", b)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "grastate.dat")); fi.Mode().Perm() != 0o660 {
		t.Errorf("mode %v", fi.Mode())
	}
	SetSafeToBootstrap(dir, false)
	if g, _, _ := ReadGraState(dir); g.SafeToBootstrap {
		t.Error("not cleared")
	}
	if _, ok, _ := ReadGraState(t.TempDir()); ok {
		t.Error("missing grastate reported present")
	}
}

func TestParseViewID(t *testing.T) {
	b := []byte("my_uuid: ef78a08c-e9a1-11f1-9960-8f83cf845d3e\n#vwbeg\nview_id: 3 ef78a08c-e9a1-11f1-9960-8f83cf845d3e 4\nbootstrap: 0\n#vwend\n")
	if got := parseViewID(b); got != "3 ef78a08c-e9a1-11f1-9960-8f83cf845d3e 4" {
		t.Errorf("got %q", got)
	}
	if got := parseViewID([]byte("x")); got != "" {
		t.Errorf("got %q", got)
	}
}

func TestParseStatus(t *testing.T) {
	s := ParseStatus(map[string]string{"wsrep_ready": "ON", "wsrep_cluster_status": "Primary", "wsrep_local_state": "4",
		"wsrep_local_state_comment": "Synced", "wsrep_cluster_size": "3", "wsrep_cluster_state_uuid": uA, "wsrep_last_committed": "42",
		"wsrep_flow_control_paused": "0.25", "wsrep_connected": "ON"})
	if !s.Synced() || s.ClusterSize != 3 || s.Position() != (Position{uA, 42}) || s.FlowControlPaused != 0.25 {
		t.Errorf("%+v", s)
	}
	for _, tt := range []struct {
		name string
		vars map[string]string
	}{
		{"donor", map[string]string{"wsrep_ready": "ON", "wsrep_cluster_status": "Primary", "wsrep_local_state": "2"}},
		{"joined", map[string]string{"wsrep_ready": "ON", "wsrep_cluster_status": "Primary", "wsrep_local_state": "3"}},
		{"non-primary", map[string]string{"wsrep_ready": "OFF", "wsrep_cluster_status": "non-Primary", "wsrep_local_state": "4"}},
		{"not ready", map[string]string{"wsrep_ready": "OFF", "wsrep_cluster_status": "Primary", "wsrep_local_state": "4"}},
	} {
		if ParseStatus(tt.vars).Synced() {
			t.Errorf("%s counted as synced", tt.name)
		}
	}
}

func FuzzParseGraState(f *testing.F) {
	f.Add([]byte("# GALERA saved state\nversion: 2.1\nuuid:    " + uA + "\nseqno:   -1\nsafe_to_bootstrap: 0\n"))
	f.Add([]byte("uuid: x\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := ParseGraState(b)
		if err == nil && (!uuidRE.MatchString(g.UUID) || g.Seqno < -1) {
			t.Fatalf("accepted %+v", g)
		}
	})
}
