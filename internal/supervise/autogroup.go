package supervise

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// The kernel's autogroups (CONFIG_SCHED_AUTOGROUP, on by default in
// Debian's kernels) put every session in a scheduling group of its own:
// the fair scheduler first shares a CPU between the groups that want it,
// equally unless a group's nice says otherwise, then between the tasks of
// a group by their nice. Tasks in a cpu cgroup other than the root one are
// not in autogroups; their cgroup's weight plays that part.
//
// A program the supervisor starts in its own session (setsid) is in a new
// autogroup. Why it matters for php-fpm (docs/adr/0024-capacity.md): with
// PHP in the stack's autogroup at nice 10, the edge did win the CPU from
// PHP inside the group, but the group as a whole had used its share (PHP
// had), so whenever another session wanted the CPU too (the load
// generators, anything else on the host) the edge woke up to wait its
// group's turn: 20–150 ms for a cache hit that costs 0.1 ms. So the edge
// runs in an autogroup of its own (OwnSession), whose share it barely uses,
// so its wake-ups preempt. PHP in an autogroup of its own at nice 10
// (AutogroupNice) was tried and taken back: it made every other session on
// the host ten times all of PHP's weight (ADR 24); no role sets
// AutogroupNice today.

// autogroupPath is /proc/PID/autogroup: "/autogroup-ID nice N" to read,
// the nice value to write.
func autogroupPath(pid int) string { return "/proc/" + strconv.Itoa(pid) + "/autogroup" }

// setAutogroupNice gives pid's autogroup the nice value n. Without
// CAP_SYS_ADMIN the kernel allows one change per 100 ms machine-wide
// (EAGAIN): it tries again for up to a second.
func setAutogroupNice(pid, n int) error {
	var err error
	for range 10 {
		err = os.WriteFile(autogroupPath(pid), []byte(strconv.Itoa(n)), 0)
		if !errors.Is(err, syscall.EAGAIN) {
			break
		}
		time.Sleep(110 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("supervise: autogroup nice %d for pid %d: %w", n, pid, err)
	}
	return nil
}
