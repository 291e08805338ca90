package hosts

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// netnsDir is where `ip netns` keeps its namespaces.
const netnsDir = "/run/netns"

// cgroupRoot holds the cgroup v1 hierarchies (cpuset, freezer, ...).
const cgroupRoot = "/sys/fs/cgroup"

// ownedName matches a namespace or cgroup name this package made and gives
// its prefix and the owner's pid in base 36.
var ownedName = regexp.MustCompile(`^(?:nomad-)?(sph([0-9a-z]{1,6})n[0-9a-z]{1,3})-`)

// ownerPrefix returns the prefix in name and the pid of the process that
// made it, ok false when name is not this package's.
func ownerPrefix(name string) (prefix string, pid int, ok bool) {
	m := ownedName.FindStringSubmatch(name)
	if m == nil {
		return "", 0, false
	}
	p, err := strconv.ParseInt(m[2], 36, 32)
	if err != nil || p <= 0 {
		return "", 0, false
	}
	return m[1], int(p), true
}

// alive reports whether a process with this pid exists and has not exited:
// a zombie (which an init that does not reap leaves forever) is dead.
func alive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// "pid (comm) S ...": comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	state := b[i+2]
	return state != 'Z' && state != 'X'
}

// Sweep removes what earlier runs left behind (a test binary killed by a
// timeout runs no cleanup): namespaces and Nomad cgroup directories named by
// this package whose owner process is gone, and every process inside those
// namespaces. What belongs to a live process, and anything not named by this
// package, is left alone.
func Sweep() error {
	prefixes := map[string]bool{}
	collect := func(names []string) {
		for _, name := range names {
			if prefix, pid, ok := ownerPrefix(name); ok && !alive(pid) {
				prefixes[prefix] = true
			}
		}
	}
	entries, err := os.ReadDir(netnsDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("sweep: %w", err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	collect(names)
	dirs, _ := filepath.Glob(filepath.Join(cgroupRoot, "*", "nomad-sph*"))
	names = names[:0]
	for _, d := range dirs {
		names = append(names, filepath.Base(d))
	}
	collect(names)

	var errs []error
	for _, p := range slices.Sorted(maps.Keys(prefixes)) {
		errs = append(errs, removeByPrefix(p))
	}
	return errors.Join(errs...)
}

// removeByPrefix removes every process in the namespaces named prefix-*,
// those namespaces, and the cgroup directories named nomad-prefix-*.
func removeByPrefix(prefix string) error {
	entries, err := os.ReadDir(netnsDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", prefix, err)
	}
	var namespaces []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix+"-") {
			namespaces = append(namespaces, e.Name())
		}
	}
	var errs []error
	if err := killInNamespaces(namespaces); err != nil {
		errs = append(errs, err)
	}
	for _, ns := range namespaces {
		if err := ipCmd("netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	if err := removeCgroups(prefix); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// killInNamespaces sends SIGTERM to every process whose network namespace is
// one of namespaces, waits up to 5 s, then SIGKILLs what is left and waits
// for it to go.
func killInNamespaces(namespaces []string) error {
	if len(namespaces) == 0 {
		return nil
	}
	inodes := map[uint64]bool{}
	for _, ns := range namespaces {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(netnsDir, ns), &st); err == nil {
			inodes[st.Ino] = true
		}
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		pids := pidsIn(inodes)
		if len(pids) == 0 {
			return nil
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, sig)
		}
		deadline := time.Now().Add(5 * time.Second)
		for len(pids) > 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			pids = pidsIn(inodes)
		}
	}
	if pids := pidsIn(inodes); len(pids) > 0 {
		return fmt.Errorf("kill: processes %v survived SIGKILL in %v", pids, namespaces)
	}
	return nil
}

// pidsIn lists the processes whose network namespace has one of inodes (the
// inode of /run/netns/NAME is the namespace's).
func pidsIn(inodes map[uint64]bool) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat(filepath.Join("/proc", e.Name(), "ns", "net"), &st) != nil {
			continue // gone, or a zombie that already left its namespaces
		}
		if inodes[st.Ino] {
			pids = append(pids, pid)
		}
	}
	return pids
}

// removeCgroups removes /sys/fs/cgroup/*/nomad-prefix-* (the cgroup parents
// StartNomad gives its clients), deepest directories first. A cgroup
// directory is removed with rmdir once no process is in it; the processes
// were killed just before, so a few retries cover the kernel catching up.
func removeCgroups(prefix string) error {
	tops, _ := filepath.Glob(filepath.Join(cgroupRoot, "*", "nomad-"+prefix+"-*"))
	var dirs []string
	for _, top := range tops {
		_ = filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
	}
	// Deepest first.
	slices.SortFunc(dirs, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	var errs []error
	for _, d := range dirs {
		var err error
		for range 50 {
			if err = syscall.Rmdir(d); err == nil || errors.Is(err, syscall.ENOENT) {
				err = nil
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("rmdir %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

// ipCmd runs ip(8) with args, returning its output in the error.
func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
