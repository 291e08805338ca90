package hosts

import (
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// E2ELock is the machine-wide lock every test that starts Galera, php-fpm
// or a Nomad cluster holds (COMMON.md): one such run at a time.
const E2ELock = "/tmp/scalepress-e2e.lock"

// LockE2E takes E2ELock (waiting for it) until the test ends. Do not run a
// test that calls it under `flock E2ELock`: it would wait for itself.
func LockE2E(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(E2ELock, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		t.Fatalf("hosts: e2e lock: %v", err)
	}
	start := time.Now()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("hosts: e2e lock: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Logf("hosts: waited %v for %s", d.Round(time.Second), E2ELock)
	}
	t.Cleanup(func() { f.Close() }) // closing the only descriptor releases the lock
}
