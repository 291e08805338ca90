package edge

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/balancer"
	"github.com/scalepress/scalepress/internal/metrics"
)

// overloadReportInterval is how often an edge looks at admission control's
// refusals: at most one log line and one event per interval while it
// refuses, so an overload does not flood the log or the event log.
const overloadReportInterval = 10 * time.Second

// admissionConfig reads the spec's admission control (http.queue_*, the
// node's PHP workers) into the balancer's configuration.
func admissionConfig(h api.HTTPSpec, cfg *balancer.Config) error {
	if h.NodeLimit < 0 || h.QueueBacklog < 0 {
		return fmt.Errorf("edge: http.node_limit %d, http.queue_backlog %d: must not be negative", h.NodeLimit, h.QueueBacklog)
	}
	cfg.NodeLimit = h.NodeLimit
	if h.NodeLimit > 0 {
		cfg.QueueBacklog = h.QueueBacklog // 0: nothing waits
	}
	if h.QueueTimeout != "" {
		d, err := time.ParseDuration(h.QueueTimeout)
		if err != nil || d <= 0 {
			return fmt.Errorf("edge: http.queue_timeout %q: must be a positive duration", h.QueueTimeout)
		}
		cfg.QueueTimeout = d
	}
	return nil
}

// admissionLog is what the edge makes of admission control: the queue wait
// histogram, and one warning and one event per overloadReportInterval
// while requests are refused.
type admissionLog struct {
	logger *slog.Logger
	wait   *metrics.Durations
	last   balancer.AdmissionStats // at the previous report
}

func newAdmissionLog(logger *slog.Logger) *admissionLog {
	return &admissionLog{logger: logger, wait: metrics.NewDurations(metrics.FastCGIWaitBuckets)}
}

func (l *admissionLog) observeWait(d time.Duration) { l.wait.Observe(d) }

// since returns the overload of the interval from l.last to now, nil when
// nothing was refused, and makes now the new l.last.
func (l *admissionLog) since(now balancer.AdmissionStats) *api.OverloadReport {
	prev := l.last
	l.last = now
	full, waited := now.RejectedFull-prev.RejectedFull, now.RejectedWait-prev.RejectedWait
	if full == 0 && waited == 0 {
		return nil
	}
	r := &api.OverloadReport{QueueFull: full, QueueTimeout: waited,
		Admitted: now.Admitted - prev.Admitted, Queued: now.Dequeued - prev.Dequeued}
	if r.Queued > 0 {
		r.MeanWaitMs = float64(now.WaitTotal-prev.WaitTotal) / float64(r.Queued) / 1e6
	}
	return r
}

// reportOverload logs (and sends to the controller's event log, when the
// edge has one) the requests admission control refused, every
// overloadReportInterval in which it refused some, until ctx ends.
func (e *Edge) reportOverload(ctx context.Context) {
	var c *api.Client
	if e.spec.EventsURL != "" {
		c = &api.Client{Base: e.spec.EventsURL, HTTP: &http.Client{Timeout: 2 * time.Second}, Token: e.spec.ControlToken}
	}
	t := time.NewTicker(overloadReportInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r := e.admission.since(e.bal.Admission())
		if r == nil {
			continue
		}
		e.logger.Warn("overload: uncached requests refused (stale copy or 503); every node had all its PHP workers busy",
			"queue_full", r.QueueFull, "queue_timeout", r.QueueTimeout, "admitted", r.Admitted, "queued", r.Queued, "mean_wait_ms", r.MeanWaitMs)
		if c == nil {
			continue
		}
		if err := c.Post(ctx, "", api.EdgeEvents{Overload: r}, nil); err != nil && ctx.Err() == nil {
			e.logger.Warn("overload event not delivered to the controller", "err", err)
		}
	}
}
