package phpfpm

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"golang.org/x/sys/unix"
)

// TestGateScriptNamesTheAgentsFiles: the PHP side of the gate opens the
// files the filesync agent locks.
func TestGateScriptNamesTheAgentsFiles(t *testing.T) {
	for _, s := range []string{
		"'/" + api.SwapStageDir + "/'", "'" + api.SwapGateFile + "'", "'" + api.SwapInUseFile + "'",
	} {
		if !strings.Contains(string(GateScript), s) {
			t.Errorf("gate.php does not name %s", s)
		}
	}
}

// TestGateHoldsRequestsAndSwaps runs the real php-fpm with the gate as its
// auto_prepend_file: a request waits while the agent holds the gate, and
// the agent cannot take the in-use lock while a request runs.
func TestGateHoldsRequestsAndSwaps(t *testing.T) {
	f := renderFPM(t, nil)
	gate := filepath.Join(f.dir, "gate.php")
	writeFile(t, gate, string(GateScript))
	ini := DefaultINI()
	ini.AutoPrependFile = gate
	b, err := RenderINI(ini)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, f.ini, string(b))
	docroot := filepath.Join(f.dir, "docroot")
	stage := filepath.Join(docroot, api.SwapStageDir)
	if err := os.MkdirAll(stage, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(docroot, 0o755)
	lock := func(name string) *os.File {
		fl, err := os.OpenFile(filepath.Join(stage, name), os.O_RDONLY|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { fl.Close() })
		return fl
	}
	gateF, inuseF := lock(api.SwapGateFile), lock(api.SwapInUseFile)
	started := filepath.Join(f.dir, "started")
	writeFile(t, filepath.Join(docroot, "slow.php"), `<?php touch('`+started+`'); usleep(800000); echo 'slow';`)
	writeFile(t, filepath.Join(docroot, "fast.php"), `<?php echo 'fast';`)
	os.Chmod(f.dir, 0o777) // the worker (www-data when root) touches "started"
	c := startFPM(t, f)
	params := func(name string) map[string]string {
		return map[string]string{
			"SCRIPT_FILENAME": filepath.Join(docroot, name), "SCRIPT_NAME": "/" + name,
			"REQUEST_METHOD": "GET", "DOCUMENT_ROOT": docroot,
		}
	}

	// The agent holds the gate: a request waits until it lets go.
	if err := unix.Flock(int(gateF.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	done := make(chan string, 1)
	go func() {
		_, out := do(t, c, params("fast.php"), nil)
		done <- out
	}()
	select {
	case out := <-done:
		t.Errorf("a request ran (%q) while the agent held the gate", out)
		unix.Flock(int(gateF.Fd()), unix.LOCK_UN)
	case <-time.After(500 * time.Millisecond): // absence: the request waits
		unix.Flock(int(gateF.Fd()), unix.LOCK_UN)
		if out := <-done; out != "fast" {
			t.Errorf("the request after the gate opened answered %q", out)
		}
	}

	// A request in flight holds the in-use lock until it ends.
	go func() {
		_, out := do(t, c, params("slow.php"), nil)
		done <- out
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(started); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("slow.php did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := unix.Flock(int(inuseF.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != unix.EWOULDBLOCK {
		t.Errorf("the agent's in-use lock during a request: %v, want EWOULDBLOCK", err)
	}
	if out := <-done; out != "slow" {
		t.Errorf("slow.php answered %q", out)
	}
	if err := unix.Flock(int(inuseF.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Errorf("the agent's in-use lock after the request: %v, want it taken", err)
	}
	unix.Flock(int(inuseF.Fd()), unix.LOCK_UN)

	// Without the agent's files the gate does nothing.
	if err := os.RemoveAll(stage); err != nil {
		t.Fatal(err)
	}
	if _, out := do(t, c, params("fast.php"), nil); out != "fast" {
		t.Errorf("a request without lock files answered %q", out)
	}
}

// BenchmarkIncludes runs a script that requires 200 files through the
// real php-fpm: what opcache's revalidate_freq 0 (a stat per include,
// ADR 26) and the request gate cost per request, against the old
// revalidate_freq 2 without the gate.
func BenchmarkIncludes(b *testing.B) {
	for _, bc := range []struct {
		name       string
		revalidate int
		gate       bool
	}{
		{"revalidate=2", 2, false},
		{"revalidate=0", 0, false},
		{"revalidate=0+gate", 0, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := renderFPM(b, nil)
			ini := DefaultINI()
			ini.RevalidateFreq = bc.revalidate
			docroot := filepath.Join(f.dir, "docroot")
			for _, d := range []string{filepath.Join(docroot, "inc"), filepath.Join(docroot, api.SwapStageDir)} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					b.Fatal(err)
				}
			}
			if bc.gate {
				ini.AutoPrependFile = filepath.Join(f.dir, "gate.php")
				writeFile(b, ini.AutoPrependFile, string(GateScript))
				for _, n := range []string{api.SwapGateFile, api.SwapInUseFile} {
					writeFile(b, filepath.Join(docroot, api.SwapStageDir, n), "")
				}
			}
			out, err := RenderINI(ini)
			if err != nil {
				b.Fatal(err)
			}
			writeFile(b, f.ini, string(out))
			main := "<?php\n"
			for i := range 200 {
				writeFile(b, filepath.Join(docroot, "inc", strconv.Itoa(i)+".php"), "<?php $x[] = "+strconv.Itoa(i)+";\n")
				main += "require __DIR__ . '/inc/" + strconv.Itoa(i) + ".php';\n"
			}
			writeFile(b, filepath.Join(docroot, "main.php"), main+"echo count($x);\n")
			c := startFPM(b, f)
			params := map[string]string{
				"SCRIPT_FILENAME": filepath.Join(docroot, "main.php"), "SCRIPT_NAME": "/main.php",
				"REQUEST_METHOD": "GET", "DOCUMENT_ROOT": docroot,
			}
			if _, out := do(b, c, params, nil); out != "200" {
				b.Fatalf("main.php answered %q", out)
			}
			b.ResetTimer()
			for b.Loop() {
				do(b, c, params, nil)
			}
		})
	}
}
