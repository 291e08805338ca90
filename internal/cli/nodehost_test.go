package cli

import (
	"strings"
	"testing"
)

// TestNodeHostDir: a scheduler's node keeps its directories on its own
// host: the node meta's directory when Nomad resolved it, else the
// allocation's, never the controller's (the spec's).
func TestNodeHostDir(t *testing.T) {
	tests := []struct {
		name, dir, alloc, want, wantErr string
	}{
		{"node meta", "/srv/scalepress", "/var/lib/nomad/alloc/a1/alloc", "/srv/scalepress", ""},
		{"meta unset: the allocation's", "${meta.scalepress_dir}", "/var/lib/nomad/alloc/a1/alloc", "/var/lib/nomad/alloc/a1/alloc/scalepress", ""},
		{"no flag: the allocation's", "", "/a/alloc", "/a/alloc/scalepress", ""},
		{"relative", "srv", "/a/alloc", "", "absolute"},
		{"neither", "${meta.scalepress_dir}", "", "", "NOMAD_ALLOC_DIR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := nodeHostDir(tt.dir, tt.alloc)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("nodeHostDir() = %q, %v; want error %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("nodeHostDir() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
