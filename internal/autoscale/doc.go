// Package autoscale is the scaling policy of the PHP node group: metrics in,
// desired node count out. It does no I/O, starts no goroutines and never
// reads the clock — the caller passes now — so every decision can be
// replayed in a test.
//
// # Scaler: target tracking
//
// Each tick the controller passes the group size and one NodeMetric per
// node. The scaler measures the nodes that are in service and not warming:
//
//	utilisation = Σ (busy workers + queued requests) / Σ max_children
//
// where busy workers = Utilization × MaxChildren. Without a queue this is
// the usual busy share, at most 1; requests waiting for a worker push it
// above 1, so a saturated group asks for as many more nodes as its queue
// needs instead of stopping at "100 % busy". The load asks for
//
//	recommended = ceil(in-service nodes × utilisation / Target)
//
// nodes, or for the current size while |utilisation/Target − 1| ≤
// Tolerance, bounded by Min and Max. Scale-out happens at once, at most
// MaxStepOut nodes per decision. Scale-in happens only when the highest
// recommendation of the last ScaleInWindow is below the current size (the
// stabilisation of Kubernetes' HPA), only once the scaler has had metrics
// for a whole window without a gap, never while a node warms, and at most MaxStepIn nodes per
// decision. Warming nodes count toward the size but not toward utilisation,
// so the group does not scale out a second time while new nodes warm.
//
// # Measured steps on a saturated host
//
// While the host's CPU pressure says saturated, the scaler grows one node
// at a time and judges each step by the group's served rate (PHP requests
// completed per second, NodeMetric.Done) over Policy.StepWindow before the
// step and after the new node serves: kept at a gain of Policy.StepGain,
// stopped below it, stepped back below half of it; a stopped growth holds
// for Policy.StepCooldown (step.go, docs/adr/0032-measured-steps.md).
//
// # Healer: replacing broken nodes
//
// The Healer decides which failed nodes to replace, at most MaxReplacements
// per Window, so that a crash loop does not become a replacement storm.
package autoscale
