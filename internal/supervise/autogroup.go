package supervise

// The kernel's autogroups (CONFIG_SCHED_AUTOGROUP, on by default in
// Debian's kernels) put every session in a scheduling group of its own:
// the fair scheduler first shares a CPU between the groups that want it,
// equally unless a group's nice says otherwise, then between the tasks of
// a group by their nice. Tasks in a cpu cgroup other than the root one
// (a container, a systemd slice with the cpu controller on, a CI runner)
// are not in autogroups at all: /proc/PID/autogroup reads empty there,
// the cgroup's weight plays the group's part, and a task's nice orders it
// against every other task of that cgroup directly.
//
// A program the supervisor starts in its own session (setsid) is in a new
// autogroup where autogroups apply. Why it matters (docs/adr/0024-capacity.md):
// with PHP in the stack's autogroup at nice 10, the edge did win the CPU
// from PHP inside the group, but the group as a whole had used its share
// (PHP had), so whenever another session wanted the CPU too (the load
// generators, anything else on the host) the edge woke up to wait its
// group's turn: 20–150 ms for a cache hit that costs 0.1 ms. So the edge
// runs in a session of its own (OwnSession), whose autogroup's share it
// barely uses, so its wake-ups preempt. PHP in an autogroup of its own at
// nice 10 was tried and taken back: it made every other session on the
// host ten times all of PHP's weight (ADR 24).
