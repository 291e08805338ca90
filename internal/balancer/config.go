package balancer

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// Config tunes a Balancer. The zero value is not valid; start from
// DefaultConfig.
type Config struct {
	// HealthInterval is the time between two active checks of a node.
	HealthInterval time.Duration
	// HealthTimeout bounds one active check; at most HealthInterval.
	HealthTimeout time.Duration
	// Rise is how many good checks in a row make an unhealthy node healthy.
	Rise int
	// Fall is how many failed checks in a row make a healthy node unhealthy.
	Fall int

	// ErrorThreshold is how many connection errors or node-generated 5xx in
	// a row eject a node.
	ErrorThreshold int
	// SaturationThreshold is how many saturation signals in a row eject a
	// node; 0, the default, never ejects for saturation. A saturated node is
	// busy, not broken: Pick already avoids it while it has more requests
	// in flight, and a refused request is retried on another node, whereas
	// an ejection of fixed length idles its workers once they have worked
	// off its queue, while the other nodes shed load.
	SaturationThreshold int
	// SaturationQueue is the listen queue (ReportLoad) from which a report
	// counts as a saturation signal; 0 disables the signal, reported queues
	// then only weigh in Pick.
	SaturationQueue int
	// EjectBase is the first error ejection of a node.
	EjectBase time.Duration
	// EjectMax caps the doubling of repeated error ejections.
	EjectMax time.Duration
	// EjectWindow: a node ejected again less than EjectWindow after its
	// previous ejection ended is ejected for twice as long; after
	// EjectWindow in service it starts again at EjectBase.
	EjectWindow time.Duration
	// SaturationEjection is how long a saturation signal ejects a node; it
	// does not escalate.
	SaturationEjection time.Duration
	// MaxEjectedPercent caps the share of non-draining nodes ejected at
	// once; one node may always be ejected when another stays in service.
	MaxEjectedPercent int

	// SlowStart is how long a new or recovered node takes to ramp from 10 %
	// to 100 % of its weight; 0 disables slow start.
	SlowStart time.Duration
	// DeregistrationDelay is how long Run waits for a node dropped by
	// Update to drain before it forgets the node anyway. Requests still in
	// flight then are not cut: the caller holds their *Node.
	DeregistrationDelay time.Duration

	// NodeLimit is how many requests Acquire lets each node have in flight:
	// its PHP workers. 0 disables admission control (Acquire is Pick).
	NodeLimit int
	// QueueBacklog is how many requests may wait in Acquire per node in
	// service once every node has NodeLimit in flight; beyond it Acquire
	// refuses at once (ErrOverloaded).
	QueueBacklog int
	// QueueTimeout is the longest wait in Acquire's queue.
	QueueTimeout time.Duration

	// Retry is the edge's retry policy; see Retryable.
	Retry RetryPolicy

	// NewConns, when set, makes the caller's per-node state when a node
	// joins the set (the edge's pool of keep-alive connections to it), so
	// that it lives on the same object as the node's in-flight count; the
	// balancer closes it when it forgets the node. See Node.Conns.
	NewConns func(addr string) io.Closer
}

// DefaultConfig returns the defaults: HAProxy's check timing (2 s, 1 s,
// rise 2, fall 3), ejection after 5 errors for 5 s doubling to 60 s, none
// for saturation, 30 s slow start and deregistration delay, 2 retries;
// admission control off (NodeLimit 0), and once on, 16 waiting places per
// node for at most 3 s.
func DefaultConfig() Config {
	return Config{
		HealthInterval:      2 * time.Second,
		HealthTimeout:       time.Second,
		Rise:                2,
		Fall:                3,
		ErrorThreshold:      5,
		SaturationThreshold: 0,
		SaturationQueue:     8,
		EjectBase:           5 * time.Second,
		EjectMax:            60 * time.Second,
		EjectWindow:         2 * time.Minute,
		SaturationEjection:  5 * time.Second,
		MaxEjectedPercent:   50,
		SlowStart:           30 * time.Second,
		DeregistrationDelay: 30 * time.Second,
		QueueBacklog:        16,
		QueueTimeout:        3 * time.Second,
		Retry:               DefaultRetryPolicy(),
	}
}

// Validate reports every invalid field, each by name.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("balancer: config: %s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.HealthInterval <= 0 {
		bad("HealthInterval", "must be positive, got %s", c.HealthInterval)
	}
	if c.HealthTimeout <= 0 || c.HealthTimeout > c.HealthInterval {
		bad("HealthTimeout", "must be positive and at most HealthInterval (%s), got %s", c.HealthInterval, c.HealthTimeout)
	}
	if c.Rise < 1 {
		bad("Rise", "must be at least 1, got %d", c.Rise)
	}
	if c.Fall < 1 {
		bad("Fall", "must be at least 1, got %d", c.Fall)
	}
	if c.ErrorThreshold < 1 {
		bad("ErrorThreshold", "must be at least 1, got %d", c.ErrorThreshold)
	}
	if c.SaturationThreshold < 0 {
		bad("SaturationThreshold", "must not be negative (0 disables), got %d", c.SaturationThreshold)
	}
	if c.SaturationQueue < 0 {
		bad("SaturationQueue", "must not be negative (0 disables), got %d", c.SaturationQueue)
	}
	if c.EjectBase <= 0 {
		bad("EjectBase", "must be positive, got %s", c.EjectBase)
	}
	if c.EjectMax < c.EjectBase {
		bad("EjectMax", "must be at least EjectBase (%s), got %s", c.EjectBase, c.EjectMax)
	}
	if c.EjectWindow < 0 {
		bad("EjectWindow", "must not be negative, got %s", c.EjectWindow)
	}
	if c.SaturationEjection <= 0 {
		bad("SaturationEjection", "must be positive, got %s", c.SaturationEjection)
	}
	if c.MaxEjectedPercent < 1 || c.MaxEjectedPercent > 100 {
		bad("MaxEjectedPercent", "must be between 1 and 100, got %d", c.MaxEjectedPercent)
	}
	if c.SlowStart < 0 {
		bad("SlowStart", "must not be negative (0 disables), got %s", c.SlowStart)
	}
	if c.DeregistrationDelay < 0 {
		bad("DeregistrationDelay", "must not be negative, got %s", c.DeregistrationDelay)
	}
	if c.NodeLimit < 0 {
		bad("NodeLimit", "must not be negative (0 disables admission control), got %d", c.NodeLimit)
	}
	if c.QueueBacklog < 0 {
		bad("QueueBacklog", "must not be negative, got %d", c.QueueBacklog)
	}
	if c.NodeLimit > 0 && c.QueueTimeout <= 0 {
		bad("QueueTimeout", "must be positive with a NodeLimit, got %s", c.QueueTimeout)
	}
	if err := c.Retry.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
