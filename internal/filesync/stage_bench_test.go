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
// WordPress wp-includes (about 1,900 files, 42 MB) when it is installed,
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

// unitBench is a store holding versions of a core-sized unit and agents
// with one link pool applying them.
type unitBench struct {
	b       *testing.B
	c       *cluster
	s       *Store
	unit    string
	files   map[string][]byte
	changed string            // the file each version changes
	hashes  map[string]string // of the unchanged files
}

func newUnitBench(b *testing.B) *unitBench {
	u := &unitBench{b: b, c: newCluster(b), unit: "wp-includes", files: benchUnitFiles(b), hashes: map[string]string{}}
	u.s = u.c.srv.srv.Store()
	u.changed = "version.php"
	if _, ok := u.files[u.changed]; !ok {
		u.changed = firstKey(u.files)
	}
	var total int64
	for p, data := range u.files {
		u.hashes[p] = u.putBlob(data)
		total += int64(len(data))
	}
	b.Logf("unit %s: %d files, %d bytes", u.unit, len(u.files), total)
	return u
}

func (u *unitBench) putBlob(data []byte) string {
	h := hashBytes(data)
	if _, err := u.s.PutBlob(context.Background(), h, strings.NewReader(string(data)), int64(len(data))); err != nil {
		u.b.Fatal(err)
	}
	return h
}

// commit commits version v of the unit, every file with mtime, and returns
// its group as the log has it.
func (u *unitBench) commit(v int, mtime int64) []Change {
	cs := []Change{{Op: OpMkdir, Path: u.unit, Mode: 0o755}}
	dirs := map[string]bool{}
	for p, data := range u.files {
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if !dirs[d] {
				dirs[d] = true
				cs = append(cs, Change{Op: OpMkdir, Path: u.unit + "/" + d, Mode: 0o755})
			}
		}
		h := u.hashes[p]
		if p == u.changed {
			data = append(append([]byte(nil), data...), fmt.Sprintf("\n// version %d\n", v)...)
			h = u.putBlob(data)
		}
		cs = append(cs, Change{Op: OpPut, Path: u.unit + "/" + p, Mode: 0o644, Size: int64(len(data)), Hash: h, MTime: mtime})
	}
	since := u.s.Seq()
	if _, err := u.s.Commit(context.Background(), unitPush(u.unit, cs...)); err != nil {
		u.b.Fatal(err)
	}
	got, _, err := u.s.Changes(context.Background(), since, 8192)
	if err != nil {
		u.b.Fatal(err)
	}
	var out []Change
	for _, ch := range got {
		if ch.Path == u.unit || isBelow(ch.Path, u.unit) {
			out = append(out, ch)
		}
	}
	if len(out) < 2 || out[0].Op != OpDelete {
		u.b.Fatalf("no unit group after seq %d", since)
	}
	return out
}

// agent is a bootstrapped agent on the shared pool, not running: the
// benchmark applies groups itself.
func (u *unitBench) agent(name string) *testAgent {
	ta := newTestAgent(u.b, u.c.srv.url, u.c.base, name)
	ta.stop()
	ta.cfg.LinkPool = filepath.Join(u.c.base, "pool")
	ta.open()
	ta.bootstrap()
	return ta
}

// stageMeter measures an agent's applies: the time to the staged tree,
// the bytes of staged files that are not links, and write_bytes.
type stageMeter struct {
	start        time.Time
	stage        time.Duration
	copied, wrot int64
}

func (m *stageMeter) apply(b *testing.B, ta *testAgent, group []Change) {
	ta.a.testHookStage = func(step string) error {
		if step != stepStaged {
			return nil
		}
		m.stage += time.Since(m.start)
		b.StopTimer()
		dirs, _ := filepath.Glob(filepath.Join(ta.docroot, stageDir, "[0-9]*", "new"))
		for _, d := range dirs {
			filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
				if err == nil && e.Type().IsRegular() {
					if fi, err := e.Info(); err == nil && fi.Sys().(*syscall.Stat_t).Nlink == 1 {
						m.copied += fi.Size()
					}
				}
				return nil
			})
		}
		b.StartTimer()
		return nil
	}
	w0 := writeBytes(b)
	m.start = time.Now()
	if err := ta.a.applyGroup(context.Background(), group); err != nil {
		b.Fatal(err)
	}
	m.wrot += writeBytes(b) - w0
}

func (m *stageMeter) report(b *testing.B, who string) {
	n := float64(b.N)
	b.ReportMetric(float64(m.stage.Milliseconds())/n, who+"stage-ms/op")
	b.ReportMetric(float64(m.copied)/n, who+"copied-B/op")
	b.ReportMetric(float64(m.wrot)/n, who+"write-B/op")
}

// BenchmarkUnitStage: agents with a link pool (ADR 29) swap in a
// core-sized unit (ADR 26) that changes one file and keeps the others.
// Reported per apply: the stage's build (stage-ms/op, from the start of the
// apply to the staged step), the bytes of the staged files that are not
// links (copied-B/op) and what the process wrote to storage (write-B/op,
// /proc/self/io, the old tree's removal and the index included).
//
// kept: one agent applies two versions alternately, every file with the
// same mtime in both: the pool has every kept file's entry.
//
// release: each version gives every file a new mtime, as `scalepress update
// core` does; node a applies it first on the host, then node b (a-, b-
// metrics).
func BenchmarkUnitStage(b *testing.B) {
	mtime := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	b.Run("kept", func(b *testing.B) {
		u := newUnitBench(b)
		groups := [][]Change{u.commit(1, mtime), u.commit(2, mtime)}
		ta := u.agent("node-a") // version 2, linked from the pool
		var warm stageMeter
		warm.apply(b, ta, groups[0]) // version 1's changed file gets its entry
		var m stageMeter
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			m.apply(b, ta, groups[(i+1)%2])
		}
		m.report(b, "")
	})
	b.Run("release", func(b *testing.B) {
		u := newUnitBench(b)
		u.commit(1, mtime)
		a, c := u.agent("node-a"), u.agent("node-b")
		var ma, mc stageMeter
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			g := u.commit(i+2, mtime+int64(i+1)*1e9)
			b.StartTimer()
			ma.apply(b, a, g)
			mc.apply(b, c, g)
		}
		ma.report(b, "a-")
		mc.report(b, "b-")
	})
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
