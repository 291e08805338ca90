package supervise

import (
	"errors"
	"math"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestBackoffDelay(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		name           string
		initial, limit time.Duration
		n              int
		want           time.Duration
	}{
		{"first", 200 * ms, 10 * time.Second, 0, 200 * ms},
		{"second doubles", 200 * ms, 10 * time.Second, 1, 400 * ms},
		{"fifth", 200 * ms, 10 * time.Second, 5, 6400 * ms},
		{"capped", 200 * ms, 10 * time.Second, 6, 10 * time.Second},
		{"stays capped", 200 * ms, 10 * time.Second, 50, 10 * time.Second},
		{"huge n does not overflow", time.Nanosecond, time.Duration(math.MaxInt64), 1000, time.Duration(math.MaxInt64)},
		{"exactly reaches cap", 250 * ms, time.Second, 2, time.Second},
		{"initial above cap", 2 * time.Second, time.Second, 0, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := backoffDelay(tt.initial, tt.limit, tt.n); got != tt.want {
				t.Errorf("backoffDelay(%s, %s, %d) = %s, want %s", tt.initial, tt.limit, tt.n, got, tt.want)
			}
		})
	}
}

func TestRestartTracker(t *testing.T) {
	const ms = time.Millisecond
	type step struct {
		at        time.Duration // since t0
		ranFor    time.Duration
		wantDelay time.Duration
		wantExits int
		giveUp    bool
	}
	tests := []struct {
		name   string
		policy RestartPolicy
		steps  []step
	}{
		{
			name:   "defaults give up on the sixth exit within a minute",
			policy: RestartPolicy{},
			steps: []step{
				{0, 0, 200 * ms, 1, false},
				{1 * time.Second, 0, 400 * ms, 2, false},
				{2 * time.Second, 0, 800 * ms, 3, false},
				{3 * time.Second, 0, 1600 * ms, 4, false},
				{4 * time.Second, 0, 3200 * ms, 5, false},
				{5 * time.Second, 0, 0, 6, true},
			},
		},
		{
			name:   "exits older than the window are forgotten",
			policy: RestartPolicy{MaxRestarts: 2, Window: 10 * time.Second},
			steps: []step{
				{0, 0, 200 * ms, 1, false},
				{5 * time.Second, 0, 400 * ms, 2, false},
				{10 * time.Second, 0, 800 * ms, 2, false}, // the exit at 0 is exactly Window old
				{12 * time.Second, 0, 0, 3, true},
			},
		},
		{
			name:   "a long run resets the backoff but not the window",
			policy: RestartPolicy{MaxRestarts: 3, ResetAfter: 30 * time.Second, Window: time.Hour},
			steps: []step{
				{0, 0, 200 * ms, 1, false},
				{1 * time.Second, 0, 400 * ms, 2, false},
				{40 * time.Second, 31 * time.Second, 200 * ms, 3, false},
				{41 * time.Second, 0, 0, 4, true},
			},
		},
		{
			name:   "a run of exactly ResetAfter does not reset",
			policy: RestartPolicy{ResetAfter: 30 * time.Second},
			steps: []step{
				{0, 0, 200 * ms, 1, false},
				{30 * time.Second, 30 * time.Second, 400 * ms, 2, false},
			},
		},
		{
			name:   "negative MaxRestarts never gives up",
			policy: RestartPolicy{MaxRestarts: -1, MaxBackoff: time.Second},
			steps: []step{
				{0, 0, 200 * ms, 0, false},
				{1 * time.Second, 0, 400 * ms, 0, false},
				{2 * time.Second, 0, 800 * ms, 0, false},
				{3 * time.Second, 0, time.Second, 0, false},
				{4 * time.Second, 0, time.Second, 0, false},
				{5 * time.Second, 0, time.Second, 0, false},
				{6 * time.Second, 0, time.Second, 0, false},
			},
		},
	}
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newRestartTracker(tt.policy)
			for i, s := range tt.steps {
				delay, exits, giveUp := tr.exited(t0.Add(s.at), s.ranFor)
				if delay != s.wantDelay || exits != s.wantExits || giveUp != s.giveUp {
					t.Fatalf("step %d: exited(+%s, %s) = (%s, %d, %v), want (%s, %d, %v)",
						i, s.at, s.ranFor, delay, exits, giveUp, s.wantDelay, s.wantExits, s.giveUp)
				}
			}
		})
	}
}

// TestCrashLoopVirtualTime runs a real crash-looping process with the default
// policy in a synctest bubble: the 200ms..3.2s backoffs elapse in virtual
// time, so the test checks the real supervision loop's timing without
// sleeping. (Time in the bubble stands still while a goroutine is in a
// syscall such as waitid, so each run takes zero virtual time.)
func TestCrashLoopVirtualTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sv := New(nil)
		defer sv.Close()
		rec := record(sv)
		spec := testSpec(t, "db-1", "/bin/sh", "-c", "exit 1")
		spec.Restart = RestartPolicy{} // defaults: 200ms doubling, 5 restarts in 60s

		start := time.Now()
		p, err := sv.Start(spec)
		if err != nil {
			t.Fatal(err)
		}
		<-p.Done()
		elapsed := time.Since(start)

		if want := (200 + 400 + 800 + 1600 + 3200) * time.Millisecond; elapsed != want {
			t.Errorf("gave up after %s of virtual time, want %s", elapsed, want)
		}
		if p.State() != Failed || p.Restarts() != 5 {
			t.Errorf("state %s restarts %d, want failed after 5", p.State(), p.Restarts())
		}
		want := "supervise: db-1 exited 6 times in 1m0s (last: exit status 1); giving up — see " + spec.LogFile
		if p.Err() == nil || p.Err().Error() != want {
			t.Errorf("Err() = %v\nwant    %s", p.Err(), want)
		}
		wantKinds := append(repeatKinds(5, EventStarted, EventExited, EventRestarting), EventStarted, EventExited, EventFailed)
		if got := rec.kinds("db-1"); !slices.Equal(got, wantKinds) {
			t.Errorf("events = %v\nwant     %v", got, wantKinds)
		}
	})
}

func TestCrashLoopGivesUp(t *testing.T) {
	sv := newTestSupervisor(t)
	rec := record(sv)
	spec := testSpec(t, "crash", "/bin/sh", "-c", "echo boom >&2; exit 1")
	spec.Restart.MaxRestarts = 2

	p, err := sv.Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, p, 5*time.Second)

	if p.State() != Failed {
		t.Fatalf("state = %s, want failed", p.State())
	}
	if p.Restarts() != 2 {
		t.Errorf("Restarts() = %d, want 2", p.Restarts())
	}
	if p.Pid() != 0 {
		t.Errorf("Pid() = %d after giving up", p.Pid())
	}
	err = p.Err()
	want := "supervise: crash exited 3 times in 1m0s (last: exit status 1); giving up — see " + spec.LogFile
	if err == nil || err.Error() != want {
		t.Fatalf("Err() = %v\nwant    %s", err, want)
	}
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
		t.Errorf("Err() does not wrap the last *exec.ExitError: %#v", err)
	}
	wantKinds := append(repeatKinds(2, EventStarted, EventExited, EventRestarting), EventStarted, EventExited, EventFailed)
	if got := rec.kinds("crash"); !slices.Equal(got, wantKinds) {
		t.Errorf("events = %v\nwant     %v", got, wantKinds)
	}
	if log := waitLog(t, spec.LogFile, "boom"); strings.Count(log, "boom") != 3 {
		t.Errorf("log has %d boom lines, want 3:\n%s", strings.Count(log, "boom"), log)
	}
}
