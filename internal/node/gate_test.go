package node

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/scalepress/scalepress/internal/api"
	"golang.org/x/sys/unix"
)

// gateDocroot is a docroot kept by filesync: the request gate's file, the
// front controller and a plugin of a script, a stylesheet and an index.
func gateDocroot(t *testing.T, withGate bool) string {
	t.Helper()
	dir := t.TempDir()
	files := []string{"index.php"}
	if withGate {
		files = append(files, api.SwapStageDir+"/"+api.SwapGateFile)
	}
	for _, name := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("<?php"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writePlugin(t, dir)
	return dir
}

// writePlugin is WordPress's copy_dir of the plugin "mix".
func writePlugin(t *testing.T, docroot string) {
	t.Helper()
	for _, name := range []string{"check.php", "style.css", "index.php"} {
		p := filepath.Join(docroot, "wp-content/plugins/mix", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("<?php"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// removePlugin is WordPress's clear_destination of the plugin "mix".
func removePlugin(t *testing.T, docroot string) {
	t.Helper()
	if err := os.RemoveAll(filepath.Join(docroot, "wp-content/plugins/mix")); err != nil {
		t.Fatal(err)
	}
}

// gateAgent is an agent with only what decide uses.
func gateAgent(t *testing.T, docroot string, closed func()) *Agent {
	t.Helper()
	root, err := os.OpenRoot(docroot)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	real, err := filepath.EvalSymlinks(docroot)
	if err != nil {
		t.Fatal(err)
	}
	return &Agent{root: root, realDocroot: real, logger: slog.New(slog.DiscardHandler),
		gate: &flockGate{root: root, wait: gateWait, poll: gatePoll, testHookClosed: closed}}
}

// holdGate closes the gate as the units mu-plugin does around WordPress's
// upgrader (or the filesync agent around a swap): the gate file locked
// exclusively. The returned func opens it again.
func holdGate(t *testing.T, docroot string) func() {
	t.Helper()
	f, err := os.Open(filepath.Join(docroot, api.SwapStageDir, api.SwapGateFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	var once bool
	open := func() {
		if !once {
			once = true
			unix.Flock(int(f.Fd()), unix.LOCK_UN)
			f.Close()
		}
	}
	t.Cleanup(open)
	return open
}

// decision is what decide returned; Runs is the base name of the file
// php-fpm is given.
type decision struct {
	Kind         routeKind
	Script, File string
	Missing, OK  bool
	Runs         string
}

func decisionOf(rt route, file string, ok bool) decision {
	d := decision{Kind: rt.kind, Script: rt.script, File: rt.file, Missing: rt.missing, OK: ok}
	if file != "" {
		d.Runs = filepath.Base(file)
	}
	return d
}

// TestDecideWaitsForTheGate reproduces TestPluginUpdateAtomic's 404s on the
// upgrader's node deterministically: WordPress's upgrader closed the node's
// request gate, deleted the plugin's directory (clear_destination) and has
// not copied it back yet when a request for one of its files arrives. The
// agent must not decide that the file is missing (the front controller,
// WordPress's 404 once the gate opens): it waits for the gate, and decides
// once the new tree is whole. A path that exists is decided at once, gate
// closed or not; a plugin that stays deleted goes to the front controller
// after the gate.
func TestDecideWaitsForTheGate(t *testing.T) {
	tests := []struct {
		name string
		path string
		// during is what the upgrader does while the request waits at the
		// gate (the gate closed, the directory deleted before it).
		during func(t *testing.T, docroot string)
		want   decision
	}{
		{"script of the plugin being replaced", "/wp-content/plugins/mix/check.php", writePlugin,
			decision{Kind: routePHP, Script: "/wp-content/plugins/mix/check.php", OK: true, Runs: "check.php"}},
		{"static file of the plugin being replaced", "/wp-content/plugins/mix/style.css", writePlugin,
			decision{Kind: routeStatic, File: "wp-content/plugins/mix/style.css", OK: true}},
		{"directory index of the plugin being replaced", "/wp-content/plugins/mix/", writePlugin,
			decision{Kind: routePHP, Script: "/wp-content/plugins/mix/index.php", OK: true, Runs: "index.php"}},
		{"plugin deleted for good", "/wp-content/plugins/mix/check.php", func(*testing.T, string) {},
			decision{Kind: routePHP, Script: "/index.php", Missing: true, OK: true, Runs: "index.php"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docroot := gateDocroot(t, true)
			closed := make(chan struct{})
			a := gateAgent(t, docroot, func() { close(closed) })
			open := holdGate(t, docroot)
			removePlugin(t, docroot)

			got := make(chan decision, 1)
			go func() {
				rt, file, ok := a.decide(context.Background(), tt.path)
				got <- decisionOf(rt, file, ok)
			}()
			select {
			case <-closed:
			case d := <-got:
				t.Fatalf("decided %+v while the gate was closed and the plugin half replaced; want a wait for the gate", d)
			}
			tt.during(t, docroot)
			open()
			if diff := cmp.Diff(tt.want, <-got); diff != "" {
				t.Errorf("decide(%q) after the gate (-want +got):\n%s", tt.path, diff)
			}
			if n := a.gateWaits.Load(); n != 1 {
				t.Errorf("gate waits counted: %d, want 1", n)
			}
		})
	}
}

// TestDecideWithoutWaiting: a decision that rests on no missing path, or a
// docroot without the gate (not kept by filesync), never waits, closed
// gate or not.
func TestDecideWithoutWaiting(t *testing.T) {
	tests := []struct {
		name     string
		withGate bool
		path     string
		want     decision
	}{
		{"existing script, gate closed", true, "/wp-content/plugins/mix/check.php",
			decision{Kind: routePHP, Script: "/wp-content/plugins/mix/check.php", OK: true, Runs: "check.php"}},
		{"existing file, gate closed", true, "/wp-content/plugins/mix/style.css",
			decision{Kind: routeStatic, File: "wp-content/plugins/mix/style.css", OK: true}},
		{"home, gate closed", true, "/",
			decision{Kind: routePHP, Script: "/index.php", OK: true, Runs: "index.php"}},
		{"permalink, no gate", false, "/hello-world/",
			decision{Kind: routePHP, Script: "/index.php", Missing: true, OK: true, Runs: "index.php"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docroot := gateDocroot(t, tt.withGate)
			a := gateAgent(t, docroot, func() { t.Errorf("decide(%q) waited for the gate", tt.path) })
			if tt.withGate {
				holdGate(t, docroot)
			}
			rt, file, ok := a.decide(context.Background(), tt.path)
			if diff := cmp.Diff(tt.want, decisionOf(rt, file, ok)); diff != "" {
				t.Errorf("decide(%q) (-want +got):\n%s", tt.path, diff)
			}
			if n := a.gateWaits.Load(); n != 0 {
				t.Errorf("gate waits counted: %d, want 0", n)
			}
		})
	}
}

// TestFlockGateBound: a gate that stays closed (a stuck upgrader) holds a
// request gateWait at most, and a request whose client went away no
// longer; the route is then decided anyway.
func TestFlockGateBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		docroot := gateDocroot(t, true)
		holdGate(t, docroot)
		a := gateAgent(t, docroot, nil)
		start := time.Now()
		waited, err := a.gate.pass(context.Background())
		if !waited || err == nil || !strings.Contains(err.Error(), "still closed") || time.Since(start) != gateWait {
			t.Errorf("pass of a gate closed for good: waited %v, %v after %s; want the bound after %s", waited, err, time.Since(start), gateWait)
		}

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start = time.Now()
		if _, err := a.gate.pass(ctx); err == nil || time.Since(start) != time.Second {
			t.Errorf("pass with a request that ends after 1s: %v after %s", err, time.Since(start))
		}

		// Decided anyway: the front controller for the missing path.
		removePlugin(t, docroot)
		rt, _, _ := a.decide(context.Background(), "/wp-content/plugins/mix/check.php")
		if rt.script != "/index.php" {
			t.Errorf("decide after the bound: %+v, want the front controller", rt)
		}
	})
}

// BenchmarkDecide is the route decision of a request: a script that exists,
// and a permalink (no such path: the front controller) with the gate's pass
// (open) and without it (the decision before gate.go).
func BenchmarkDecide(b *testing.B) {
	for _, bb := range []struct {
		name     string
		withGate bool
		path     string
	}{
		{"script", true, "/wp-content/plugins/mix/check.php"},
		{"permalink/pass", true, "/hello-world/"},
		{"permalink/no-pass", false, "/hello-world/"},
	} {
		b.Run(bb.name, func(b *testing.B) {
			docroot := b.TempDir()
			files := []string{"index.php", "wp-content/plugins/mix/check.php", api.SwapStageDir + "/" + api.SwapGateFile}
			for _, name := range files {
				p := filepath.Join(docroot, name)
				os.MkdirAll(filepath.Dir(p), 0o755)
				if err := os.WriteFile(p, []byte("<?php"), 0o644); err != nil {
					b.Fatal(err)
				}
			}
			root, err := os.OpenRoot(docroot)
			if err != nil {
				b.Fatal(err)
			}
			defer root.Close()
			real, _ := filepath.EvalSymlinks(docroot)
			a := &Agent{root: root, realDocroot: real, logger: slog.New(slog.DiscardHandler)}
			if bb.withGate {
				a.gate = &flockGate{root: root, wait: gateWait, poll: gatePoll}
			}
			b.ReportAllocs()
			for b.Loop() {
				a.decide(context.Background(), bb.path)
			}
		})
	}
}
