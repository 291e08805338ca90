package supervise

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// autogroupOf reads pid's autogroup: its name ("/autogroup-123") and nice.
func autogroupOf(t *testing.T, pid int) (name string, nice int) {
	t.Helper()
	b, err := os.ReadFile(autogroupPath(pid))
	if err != nil {
		t.Fatalf("autogroup of pid %d (a kernel with CONFIG_SCHED_AUTOGROUP is needed): %v", pid, err)
	}
	f := strings.Fields(string(b))
	if len(f) != 3 || f[1] != "nice" {
		t.Fatalf("autogroup of pid %d: unexpected %q", pid, b)
	}
	nice, err = strconv.Atoi(f[2])
	if err != nil {
		t.Fatalf("autogroup of pid %d: unexpected %q", pid, b)
	}
	return f[0], nice
}

// TestAutogroupNice: a child with AutogroupNice runs, with what it forks,
// in an autogroup of its own at that nice, and still leads the process
// group that Stop signals; without it, it shares the supervisor's.
func TestAutogroupNice(t *testing.T) {
	ourGroup, ourNice := autogroupOf(t, os.Getpid())
	tests := []struct {
		name     string
		own      bool
		nice     int
		wantNice int
	}{
		{name: "own session and autogroup at nice 10", own: true, nice: 10, wantNice: 10},
		{name: "own session and autogroup, nice unchanged", own: true, wantNice: 0},
		{name: "default: the supervisor's autogroup", wantNice: ourNice},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sv := newTestSupervisor(t)
			// The shell forks a worker, as php-fpm's master does.
			spec := testSpec(t, "grouped", "/bin/sh", "-c", `sleep 60 & echo "worker $!"; wait`)
			spec.OwnSession, spec.AutogroupNice = tt.own, tt.nice
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
			group, nice := autogroupOf(t, pid)
			wgroup, wnice := autogroupOf(t, worker)
			sid := sessionOf(t, pid)
			pgid, err := syscall.Getpgid(pid)
			if err != nil {
				t.Fatal(err)
			}
			type view struct {
				OwnGroup, WorkerInGroup, SessionLeader, GroupLeader bool
				Nice, WorkerNice                                    int
			}
			got := view{OwnGroup: group != ourGroup, WorkerInGroup: wgroup == group, SessionLeader: sid == pid, GroupLeader: pgid == pid, Nice: nice, WorkerNice: wnice}
			want := view{OwnGroup: tt.own, WorkerInGroup: true, SessionLeader: tt.own, GroupLeader: true, Nice: tt.wantNice, WorkerNice: tt.wantNice}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("child %d (worker %d) (-want +got):\n%s", pid, worker, diff)
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
