package balancer

// weight is n's share during slow start at clock now: it ramps linearly from
// minWeight when slow start begins to 1 when it ends, slowStart ns later.
func (n *Node) weight(slowStart, now int64) float64 {
	end := n.slowStartEnd.Load()
	if end == 0 || now >= end || slowStart <= 0 {
		return 1
	}
	done := 1 - float64(end-now)/float64(slowStart)
	return minWeight + (1-minWeight)*max(done, 0)
}
