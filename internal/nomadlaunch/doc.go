// Package nomadlaunch runs the node group as one Nomad job: a
// nodegroup.Slotted launcher. The job's one task group has one task per
// allocation (raw_exec of `scalepress node-host`, which starts the node's
// processes), and its count is the group's size, changed through Nomad's
// job scale API. Node i is the allocation of index i-1 (its name ends in
// "[i-1]"): Nomad's reconciler places a new allocation at the lowest free
// index and stops the highest indices when the count goes down, which the
// group follows (nodegroup.Slotted). A failed allocation is never
// rescheduled by Nomad on its own (the reschedule delay is a year); the
// group orders its replacement, which force-reschedules it into the same
// slot. A lost allocation Nomad 1.6 replaces at once: the group adopts that
// replacement when it orders its own. See docs/adr/0011-nomad-scheduler.md.
//
// The node's spec holds secrets and never appears in the job: it is a
// Nomad Variable at nomad/jobs/JOB, readable by that job's tasks through
// their workload identity, rendered by a template block into the task's
// secrets directory.
package nomadlaunch
