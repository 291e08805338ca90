package statedir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/api"
)

func TestReadState(t *testing.T) {
	tests := []struct {
		name    string
		content string // "" means no file
		want    State
		wantErr string
		wantIs  error
	}{
		{name: "missing is new", want: State{Format: StateFormat}},
		{name: "current", content: `{"format":1,"version":"v1","installed":true,"policy":{"min":3}}`,
			want: State{Format: 1, Version: "v1", Installed: true, Policy: &api.ScaleRequest{Min: new(3)}}},
		{name: "damaged", content: `{"format":`, wantErr: "state.json is damaged"},
		{name: "newer format", content: `{"format":99,"version":"v9"}`, wantErr: "state.json has format 99", wantIs: ErrNewerState},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			if tt.content != "" {
				if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := ReadState(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || (tt.wantIs != nil && !errors.Is(err, tt.wantIs)) {
					t.Fatalf("ReadState error = %v, want one with %q (is %v)", err, tt.wantErr, tt.wantIs)
				}
				return
			}
			if err != nil {
				t.Fatalf("ReadState: %v", err)
			}
			got.CreatedAt = ""
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ReadState (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWriteStateRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	in := State{Format: 0, CreatedAt: "2025-01-01T00:00:00Z", Version: "v1", Installed: true}
	if err := WriteState(path, in); err != nil {
		t.Fatal(err)
	}
	got, err := ReadState(path)
	if err != nil {
		t.Fatal(err)
	}
	in.Format = StateFormat // WriteState stamps the current format
	if diff := cmp.Diff(in, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}
