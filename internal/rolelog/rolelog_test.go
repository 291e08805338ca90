package rolelog

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseTime(t *testing.T) {
	utc := time.UTC
	tests := []struct {
		name, line string
		want       time.Time
		ok         bool
	}{
		{"slog", `time=2026-12-07T09:03:17.123Z level=INFO msg=started`, time.Date(2026, 12, 7, 9, 3, 17, 123e6, utc), true},
		{"slog with zone", `time=2026-12-07T10:03:17.5+01:00 level=WARN`, time.Date(2026, 12, 7, 9, 3, 17, 5e8, utc), true},
		{"mariadb", `2026-12-07  9:03:17 0 [Note] Starting MariaDB`, time.Date(2026, 12, 7, 9, 3, 17, 0, utc), true},
		{"mariadb two-digit hour", `2026-12-07 19:03:17 0 [Note] ready`, time.Date(2026, 12, 7, 19, 3, 17, 0, utc), true},
		{"redis", `4242:M 07 Dec 2026 09:03:17.250 * Ready to accept connections`, time.Date(2026, 12, 7, 9, 3, 17, 25e7, utc), true},
		{"php-fpm", `[07-Dec-2026 09:03:17] NOTICE: ready to handle connections`, time.Date(2026, 12, 7, 9, 3, 17, 0, utc), true},
		{"go log", `2026/12/07 09:03:17 http: TLS handshake error`, time.Date(2026, 12, 7, 9, 3, 17, 0, utc), true},
		{"continuation", `	at main.go:12`, time.Time{}, false},
		{"bad slog time", `time=yesterday level=INFO`, time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseTime(tt.line, utc)
			if ok != tt.ok || !got.Equal(tt.want) {
				t.Errorf("ParseTime(%q) = %v %v, want %v %v", tt.line, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{
		"time=2026-12-07T09:03:17.123Z level=INFO", "2026-12-07  9:03:17 0 [Note] x",
		"1:M 07 Dec 2026 09:03:17.250 * x", "[07-Dec-2026 09:03:17] NOTICE: x", "2026/12/07 09:03:17 x", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		got, ok := ParseTime(line, time.UTC)
		if !ok && !got.IsZero() {
			t.Errorf("not ok but a time: %v", got)
		}
	})
}

func TestRoles(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"controller", "edge-1", "edge-2", "node-1", "node-1-php-fpm", "node-1-filesync", "db-1", "dbrouter", "redis"} {
		os.WriteFile(filepath.Join(dir, n+".log"), nil, 0o644)
	}
	os.Mkdir(filepath.Join(dir, "odd.log"), 0o755) // not a file: ignored
	srcs, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"controller", "db", "dbrouter", "edge", "filesync", "node", "php-fpm", "redis"}, Roles(srcs)); d != "" {
		t.Errorf("Roles (-want +got):\n%s", d)
	}
	names := func(s []Source) []string {
		var out []string
		for _, x := range s {
			out = append(out, x.Name)
		}
		return out
	}
	tests := []struct {
		role string
		want []string
	}{
		{"edge", []string{"edge-1", "edge-2"}},
		{"edge-2", []string{"edge-2"}},
		{"php-fpm", []string{"node-1-php-fpm"}},
		{"node", []string{"node-1"}},
	}
	for _, tt := range tests {
		got, err := Select(srcs, tt.role)
		if err != nil {
			t.Fatalf("%s: %v", tt.role, err)
		}
		if d := cmp.Diff(tt.want, names(got)); d != "" {
			t.Errorf("Select(%q) (-want +got):\n%s", tt.role, d)
		}
	}
	_, err = Select(srcs, "nginx")
	if !errors.Is(err, ErrUnknownRole) || !strings.Contains(err.Error(), "controller, db, dbrouter, edge, filesync, node, php-fpm, redis") {
		t.Errorf("unknown role: %v", err)
	}
}

func TestMerge(t *testing.T) {
	at := func(s int) time.Time { return time.Date(2026, 12, 7, 9, 0, s, 0, time.UTC) }
	a := []Line{{at(1), "a", "a1"}, {at(3), "a", "a3"}, {at(3), "a", "a3 continued"}, {at(2), "a", "a2 after a3 (clock went back)"}}
	b := []Line{{at(0), "b", "b0"}, {at(3), "b", "b3"}, {at(4), "b", "b4"}}
	var got []string
	for _, l := range Merge(a, b, nil) {
		got = append(got, l.Text)
	}
	want := []string{"b0", "a1", "a3", "a3 continued", "a2 after a3 (clock went back)", "b3", "b4"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Merge (-want +got):\n%s", d)
	}
}

// TestFollower: each Poll returns the complete lines added since the last,
// merged by time; a half-written line waits; a line without a time takes
// the one before it; a truncated log is read from its start.
func TestFollower(t *testing.T) {
	dir := t.TempDir()
	edge, db := filepath.Join(dir, "edge-1.log"), filepath.Join(dir, "db-1.log")
	os.WriteFile(edge, []byte("time=2026-12-07T09:00:01Z msg=one\npanic: x\ntime=2026-12-07T09:00:05Z msg=fi"), 0o644)
	os.WriteFile(db, []byte("2026-12-07  9:00:02 0 [Note] two\n"), 0o644)
	srcs, _ := List(dir)
	f := Follower{Loc: time.UTC}
	text := func(ls []Line) []string {
		var out []string
		for _, l := range ls {
			out = append(out, l.Source+" "+l.Text)
		}
		return out
	}
	if d := cmp.Diff([]string{"edge-1 time=2026-12-07T09:00:01Z msg=one", "edge-1 panic: x", "db-1 2026-12-07  9:00:02 0 [Note] two"}, text(f.Poll(srcs))); d != "" {
		t.Errorf("first poll (-want +got):\n%s", d)
	}
	if got := f.Poll(srcs); len(got) != 0 {
		t.Errorf("nothing new: %v", text(got))
	}
	appendTo := func(p, s string) {
		fh, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
		fh.WriteString(s)
		fh.Close()
	}
	appendTo(edge, "ve\n")
	appendTo(db, "2026-12-07  9:00:03 0 [Note] three\n")
	if d := cmp.Diff([]string{"db-1 2026-12-07  9:00:03 0 [Note] three", "edge-1 time=2026-12-07T09:00:05Z msg=five"}, text(f.Poll(srcs))); d != "" {
		t.Errorf("second poll (-want +got):\n%s", d)
	}
	os.WriteFile(db, []byte("2026-12-07  9:00:09 0 [Note] new\n"), 0o644)
	if d := cmp.Diff([]string{"db-1 2026-12-07  9:00:09 0 [Note] new"}, text(f.Poll(srcs))); d != "" {
		t.Errorf("after truncation (-want +got):\n%s", d)
	}
}
