package node

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/api"
)

func TestFilesQuarantine(t *testing.T) {
	dir := t.TempDir()
	a := &Agent{spec: api.NodeSpec{Files: "127.0.4.1:8080", FilesState: dir}}
	if n, last := a.filesQuarantine(); n != 0 || last != nil {
		t.Fatalf("no journal: %d, %+v", n, last)
	}
	journal := `{"seq":7,"op":"put","path":"a/x.php","error":"permission denied","attempts":5,"time":"2026-12-07T10:00:00Z"}
{"seq":9,"op":"delete","path":"b","error":"permission denied","attempts":5,"time":"2026-12-07T10:01:00Z"}
{"seq":12,"path":"a/x.php","time":"2026-12-07T10:02:00Z","released":true}
{"seq":13,"op":"pu`
	if err := os.WriteFile(filepath.Join(dir, api.FilesQuarantineFile), []byte(journal), 0o644); err != nil {
		t.Fatal(err)
	}
	n, last := a.filesQuarantine()
	want := &api.FilesQuarantine{Seq: 9, Op: "delete", Path: "b", Error: "permission denied", Attempts: 5}
	if last != nil {
		last.Time = want.Time
	}
	if n != 2 || !cmp.Equal(want, last) {
		t.Errorf("filesQuarantine() = %d, %+v; want 2 (a counter: releases do not lower it), %+v", n, last, want)
	}
}
