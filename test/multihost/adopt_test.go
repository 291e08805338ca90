package multihost

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/scalepress/scalepress/test/hosts"
)

// nodeAllocs is the ids of the running allocations of job's node group,
// sorted.
func nodeAllocs(t *testing.T, nm *hosts.Nomad, job string) []string {
	t.Helper()
	var out []string
	for _, a := range runningNodes(t, nm, job) {
		out = append(out, a.ID)
	}
	slices.Sort(out)
	return out
}

// nodeAlloc is a running allocation of the node group.
type nodeAlloc struct {
	ID, Name, NodeName, TaskGroup, ClientStatus, DesiredStatus string
}

func runningNodes(t *testing.T, nm *hosts.Nomad, job string) []nodeAlloc {
	t.Helper()
	var allocs []nodeAlloc
	if err := nm.Get(context.Background(), "/v1/job/"+job+"/allocations", &allocs); err != nil {
		t.Fatal(err)
	}
	var out []nodeAlloc
	for _, a := range allocs {
		if a.TaskGroup == "node" && a.ClientStatus == "running" && a.DesiredStatus == "run" {
			out = append(out, a)
		}
	}
	return out
}

// nodeMasters is the php-fpm master of each running allocation of job's
// node group, by "alloc id: pid file": the pid file of node-N (allocation
// JOB.node[N-1]) under its host's scalepress_dir (base/HOST). A node still
// running on a host whose allocation Nomad replaced (lost in a cut) is not
// one of them.
func nodeMasters(t *testing.T, nm *hosts.Nomad, job, base string) map[string]fpmMaster {
	t.Helper()
	out := map[string]fpmMaster{}
	for _, a := range runningNodes(t, nm, job) {
		open := strings.LastIndexByte(a.Name, '[')
		if open < 0 {
			t.Fatalf("allocation name %q: not JOB.node[N]", a.Name)
		}
		slot, err := strconv.Atoi(strings.TrimSuffix(a.Name[open+1:], "]"))
		if err != nil {
			t.Fatalf("allocation name %q: not JOB.node[N]", a.Name)
		}
		rel := filepath.Join(a.NodeName, "nodes", fmt.Sprintf("node-%d", slot+1), "run", "php-fpm.pid")
		out[a.ID+": "+rel] = fpmMasters(t, base)[rel] // the zero master when none runs
	}
	return out
}

// fpmMaster is a running php-fpm master: its pid and its start time (in
// clock ticks after boot: a pid reused by another process has another).
type fpmMaster struct {
	PID   int
	Start string
}

// fpmMasters is every running php-fpm master of the nodes under base (the
// Nomad clients' scalepress_dir: base/HOST/nodes/ID/run/php-fpm.pid), by
// pid file. A pid file of a node that moved away names no running master
// and is left out.
func fpmMasters(t *testing.T, base string) map[string]fpmMaster {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(base, "*", "nodes", "*", "run", "php-fpm.pid"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]fpmMaster{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		if err != nil || !strings.Contains(string(cmd), "php-fpm: master") {
			continue
		}
		if start := procStart(pid); start != "" {
			rel, _ := filepath.Rel(base, f)
			out[rel] = fpmMaster{PID: pid, Start: start}
		}
	}
	return out
}

// procStart is field 22 of /proc/PID/stat (starttime), "" when it is gone.
func procStart(pid int) string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command may hold spaces
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return ""
	}
	return f[19] // fields 3.. follow the command: starttime is the 22nd
}

// procsUnder lists "pid cmdline" of every process whose command line names
// a path under dir.
func procsUnder(dir string) []string {
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), dir+string(filepath.Separator)) {
			continue
		}
		out = append(out, filepath.Base(filepath.Dir(p))+" "+strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " "))
	}
	return out
}
