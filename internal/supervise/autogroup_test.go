package supervise

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// autogroupOf reads pid's autogroup name ("/autogroup-123"), or "" where
// pid is in the kernel's default autogroup (the root task group: a session
// that never had an autogroup of its own, such as a CI runner started by
// init without setsid).
func autogroupOf(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/autogroup")
	if err != nil {
		t.Fatalf("autogroup of pid %d (a kernel with CONFIG_SCHED_AUTOGROUP is needed): %v", pid, err)
	}
	if len(b) == 0 {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) != 3 || f[1] != "nice" || !strings.HasPrefix(f[0], "/autogroup-") {
		t.Fatalf("autogroup of pid %d: unexpected %q", pid, b)
	}
	return f[0]
}

// TestOwnSession: a child with OwnSession runs, with what it forks, in a
// session of its own, so (where the kernel has autogroups for it) in an
// autogroup of its own, and still leads the process group that Stop
// signals; without it, it shares the supervisor's session and autogroup.
func TestOwnSession(t *testing.T) {
	ourGroup := autogroupOf(t, os.Getpid())
	ourSession := sessionOf(t, os.Getpid())
	t.Logf("the test's autogroup: %q (empty: in a cpu cgroup, no autogroups)", ourGroup)
	for _, own := range []bool{true, false} {
		t.Run(fmt.Sprintf("own session %v", own), func(t *testing.T) {
			sv := newTestSupervisor(t)
			// The shell forks a worker, as php-fpm's master does.
			spec := testSpec(t, "grouped", "/bin/sh", "-c", `sleep 60 & echo "worker $!"; wait`)
			spec.OwnSession = own
			p, err := sv.Start(spec)
			if err != nil {
				t.Fatal(err)
			}
			pid := p.Pid()
			killOnCleanup(t, pid)
			out := waitLog(t, spec.LogFile, "worker ")
			worker, err := strconv.Atoi(strings.Fields(out[strings.Index(out, "worker "):])[1])
			if err != nil {
				t.Fatalf("worker pid in %q: %v", out, err)
			}
			group, wgroup := autogroupOf(t, pid), autogroupOf(t, worker)
			sid, wsid := sessionOf(t, pid), sessionOf(t, worker)
			pgid, err := syscall.Getpgid(pid)
			if err != nil {
				t.Fatal(err)
			}
			type view struct {
				OwnSession, SessionLeader, GroupLeader, WorkerInSession bool
				OwnAutogroup, WorkerInAutogroup                         bool
			}
			got := view{
				OwnSession: sid != ourSession, SessionLeader: sid == pid, GroupLeader: pgid == pid, WorkerInSession: wsid == sid,
				OwnAutogroup: group != ourGroup, WorkerInAutogroup: wgroup == group,
			}
			want := view{OwnSession: own, SessionLeader: own, GroupLeader: true, WorkerInSession: true, OwnAutogroup: own, WorkerInAutogroup: true}
			if own && group == "" && ourGroup == "" {
				// A kernel that made no autogroup for a new session: all
				// read "", the same group for all.
				want.OwnAutogroup = false
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("child %d (worker %d; autogroups %q, %q) (-want +got):\n%s", pid, worker, group, wgroup, diff)
			}
			if err := p.Stop(t.Context()); err != nil {
				t.Fatal(err)
			}
			waitDone(t, p, 5*time.Second)
			// The signal reached the worker if it goes (its reaper is init).
			eventually(t, 5*time.Second, "the worker to go with its process group", func() bool { return !Alive(worker) })
		})
	}
}

// sessionOf reads pid's session id (/proc/PID/stat field 6).
func sessionOf(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]) // state ppid pgrp session ...
	sid, err := strconv.Atoi(f[3])
	if err != nil {
		t.Fatalf("session in %q: %v", s, err)
	}
	return sid
}
