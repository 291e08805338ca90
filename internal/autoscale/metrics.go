package autoscale

import "math"

// NodeMetric is one node's state and load at one tick.
type NodeMetric struct {
	ID string
	// InService: the edges may send it requests.
	InService bool
	// Warming: it is booting or priming its caches; it counts toward the
	// group size but not toward utilisation.
	Warming bool
	// Utilization is busy PHP workers / MaxChildren, 0 to 1.
	Utilization float64
	// ListenQueue is the number of requests waiting for a PHP worker (the
	// node agent's waiting requests plus php-fpm's listen queue).
	ListenQueue int
	// MaxChildren is php-fpm's pm.max_children; a node without it (or with
	// a NaN Utilization) has no usable metrics.
	MaxChildren int
	// Done counts the PHP requests the node completed since it started
	// (api.NodeReport.PHPDone): the served rate a measured step compares.
	Done int64
}

// Inputs is what a Decision was based on.
type Inputs struct {
	// Utilization is the effective utilisation: (busy + queued) / capacity
	// over the measured nodes; above 1 when requests queue.
	Utilization float64
	// Busy is busy workers / capacity, the plain utilisation.
	Busy float64
	// Queue is the total listen queue of the measured nodes.
	Queue int
	// InService is the number of measured nodes: in service, not warming,
	// with MaxChildren.
	InService int
	// Warming is the number of warming nodes.
	Warming int
	// CPUPressure is the host's (Host.CPUPressure); NaN when unknown.
	CPUPressure float64
	// Served is the group's served rate, PHP requests completed per
	// second over the last Policy.StepWindow at the current size; NaN
	// while not measured (the size changed, a node warms).
	Served float64
}

// measure aggregates the metrics of one tick.
func measure(nodes []NodeMetric) Inputs {
	var in Inputs
	var busy, capacity float64
	for _, n := range nodes {
		if n.Warming {
			in.Warming++
			continue
		}
		if !n.InService || n.MaxChildren <= 0 || math.IsNaN(n.Utilization) {
			continue
		}
		in.InService++
		c := float64(n.MaxChildren)
		capacity += c
		busy += min(max(n.Utilization, 0), 1) * c
		in.Queue += max(n.ListenQueue, 0)
	}
	if capacity > 0 {
		in.Busy = busy / capacity
		in.Utilization = (busy + float64(in.Queue)) / capacity
	}
	return in
}
