package filesync

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// benchUnitSource is the core-sized unit BenchmarkUnitStage swaps: Debian's
// WordPress wp-includes (about 1,900 files, 46 MB) when it is installed,
// else 2,000 synthetic files of 24 KiB.
const benchUnitSource = "/usr/share/wordpress/wp-includes"

// benchUnitFiles returns the unit's files by path below the unit.
func benchUnitFiles(b *testing.B) map[string][]byte {
	b.Helper()
	files := make(map[string][]byte)
	err := filepath.WalkDir(benchUnitSource, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(benchUnitSource, p)
		files[filepath.ToSlash(rel)] = data
		return nil
	})
	if err == nil && len(files) > 0 {
		return files
	}
	for i := range 2000 {
		files[fmt.Sprintf("d%02d/f%04d.php", i%40, i)] = []byte(strings.Repeat(fmt.Sprintf("<?php // file %d\n", i), 24<<10/18))
	}
	return files
}

// writeBytes is this process's write_bytes of /proc/self/io: what it
// caused to be written to storage (page cache dirtied), copies by
// copy_file_range included.
func writeBytes(b *testing.B) int64 {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "write_bytes: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	b.Fatal("no write_bytes in /proc/self/io")
	return 0
}

// BenchmarkUnitStage: an agent with a link pool (ADR 29) swaps in a
// core-sized unit (ADR 26) that changes one file and keeps the others,
// over and over (two versions, alternately). Besides the whole apply
// (ns/op) it reports the stage's build (stage-ms/op, from the start of
// the apply to the staged step), the bytes of the new tree's files that
// are not links (stage-copied-B/op) and what the process wrote to storage
// (write-B/op, /proc/self/io).
func BenchmarkUnitStage(b *testing.B) {
	const unit = "wp-includes"
	c := newCluster(b)
	s := c.srv.srv.Store()
	files := benchUnitFiles(b)
	mtime := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	changed := "version.php"
	if _, ok := files[changed]; !ok {
		changed = firstKey(files)
	}
	version := func(v int) PushRequest {
		cs := []Change{{Op: OpMkdir, Path: unit, Mode: 0o755}}
		dirs := map[string]bool{}
		var total int64
		for p, data := range files {
			for d := path.Dir(p); d != "."; d = path.Dir(d) {
				if !dirs[d] {
					dirs[d] = true
					cs = append(cs, Change{Op: OpMkdir, Path: unit + "/" + d, Mode: 0o755})
				}
			}
			if p == changed {
				data = append(append([]byte(nil), data...), fmt.Sprintf("\n// version %d\n", v)...)
			}
			h := hashBytes(data)
			if _, err := s.PutBlob(context.Background(), h, strings.NewReader(string(data)), int64(len(data))); err != nil {
				b.Fatal(err)
			}
			cs = append(cs, Change{Op: OpPut, Path: unit + "/" + p, Mode: 0o644, Size: int64(len(data)), Hash: h, MTime: mtime})
			total += int64(len(data))
		}
		b.Logf("unit %s: %d files, %d bytes", unit, len(files), total)
		return unitPush(unit, cs...)
	}
	// groupOf is the unit's group committed after seq since, up to until.
	groupOf := func(since, until uint64) []Change {
		cs, _, err := s.Changes(context.Background(), since, 8192)
		if err != nil {
			b.Fatal(err)
		}
		var out []Change
		for _, ch := range cs {
			if ch.Seq <= until && (ch.Path == unit || isBelow(ch.Path, unit)) {
				out = append(out, ch)
			}
		}
		if len(out) < 2 || out[0].Op != OpDelete {
			b.Fatalf("no unit group in seq (%d, %d]", since, until)
		}
		return out
	}
	seq0 := s.Seq()
	if _, err := s.Commit(context.Background(), version(1)); err != nil {
		b.Fatal(err)
	}
	seq1 := s.Seq()
	if _, err := s.Commit(context.Background(), version(2)); err != nil {
		b.Fatal(err)
	}
	groups := [][]Change{groupOf(seq1, s.Seq()), groupOf(seq0, seq1)}

	ta := newTestAgent(b, c.srv.url, c.base, "node-bench")
	ta.stop()
	ta.cfg.LinkPool = filepath.Join(c.base, "pool")
	ta.open()
	ta.bootstrap() // the live tree is version 2, linked from the pool
	// Warm: version 1's changed file gets its pool entry, as on a node
	// that had version 1 before.
	ctx := context.Background()
	if err := ta.a.applyGroup(ctx, groups[1]); err != nil {
		b.Fatal(err)
	}

	var start time.Time
	var stage time.Duration
	var copied int64
	ta.a.testHookStage = func(step string) error {
		if step != stepStaged {
			return nil
		}
		stage += time.Since(start)
		b.StopTimer()
		dirs, _ := filepath.Glob(filepath.Join(ta.docroot, stageDir, "[0-9]*", "new"))
		for _, d := range dirs {
			filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
				if err == nil && e.Type().IsRegular() {
					if fi, err := e.Info(); err == nil && fi.Sys().(*syscall.Stat_t).Nlink == 1 {
						copied += fi.Size()
					}
				}
				return nil
			})
		}
		b.StartTimer()
		return nil
	}
	w0 := writeBytes(b)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		start = time.Now()
		if err := ta.a.applyGroup(ctx, groups[i%2]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(stage.Milliseconds())/n, "stage-ms/op")
	b.ReportMetric(float64(copied)/n, "stage-copied-B/op")
	b.ReportMetric(float64(writeBytes(b)-w0)/n, "write-B/op")
}

// firstKey is the smallest key of m: the file a version changes when the
// unit has no version.php.
func firstKey(m map[string][]byte) string {
	first := ""
	for k := range m {
		if first == "" || k < first {
			first = k
		}
	}
	return first
}
