// Package console is the live view of an environment: the dashboard page
// (embedded, no build step, no asset from elsewhere), the document it and
// `scalepress top` read (api.Console), and a server-sent event stream that
// pushes a status update every interval and every event as it is logged.
// The controller mounts its handlers on the control API, behind the same
// Host allowlist; every action the page offers goes through the control
// API's own write routes with the operator's token.
package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/guard"
)

// EventLog is where the events come from (internal/eventlog.Log).
type EventLog interface {
	Since(ctx context.Context, seq uint64, wait time.Duration) api.Events
}

// Config is what a Console reads and how much it keeps.
type Config struct {
	// Status returns the status document (the controller's).
	Status func() api.Status
	// Events is the event log.
	Events EventLog
	// DNSAddr is the dns role's monitoring address (dns.metrics_addr),
	// where the answers per region are read; empty without dns.
	DNSAddr string
	// HTTP reads the edges' and the dns role's status; it should time out
	// within Interval.
	HTTP *http.Client
	// Interval is how often the load is sampled and an update pushed.
	Interval time.Duration
	// History is how much of the load the chart shows.
	History time.Duration
	// MaxClients bounds the dashboards connected at once; ClientBuffer is
	// how many messages one may fall behind before it is dropped.
	MaxClients   int
	ClientBuffer int
	// RecentEvents is how many events a snapshot carries.
	RecentEvents int
	// WriteTimeout bounds one write to a dashboard's connection.
	WriteTimeout time.Duration
	Logger       *slog.Logger
}

// DefaultConfig returns the defaults; Status and Events are to be filled in.
func DefaultConfig() Config {
	return Config{
		HTTP:         &http.Client{Timeout: 800 * time.Millisecond},
		Interval:     time.Second,
		History:      10 * time.Minute,
		MaxClients:   32,
		ClientBuffer: 16,
		RecentEvents: 50,
		WriteTimeout: 10 * time.Second,
		Logger:       slog.New(slog.DiscardHandler),
	}
}

// Validate names the first field that is wrong.
func (c Config) Validate() error {
	switch {
	case c.Status == nil:
		return errors.New("console: Status is required")
	case c.Events == nil:
		return errors.New("console: Events is required")
	case c.HTTP == nil:
		return errors.New("console: HTTP is required")
	case c.Interval <= 0:
		return fmt.Errorf("console: Interval must be positive, got %s", c.Interval)
	case c.History < c.Interval:
		return fmt.Errorf("console: History (%s) must be at least Interval (%s)", c.History, c.Interval)
	case c.MaxClients < 1:
		return fmt.Errorf("console: MaxClients must be at least 1, got %d", c.MaxClients)
	case c.ClientBuffer < 1:
		return fmt.Errorf("console: ClientBuffer must be at least 1, got %d", c.ClientBuffer)
	case c.RecentEvents < 0:
		return fmt.Errorf("console: RecentEvents must not be negative, got %d", c.RecentEvents)
	case c.WriteTimeout <= 0:
		return fmt.Errorf("console: WriteTimeout must be positive, got %s", c.WriteTimeout)
	case c.Logger == nil:
		return errors.New("console: Logger is required")
	}
	return nil
}

// Console samples the environment and serves the dashboard.
type Console struct {
	cfg Config
	hub *Hub
	cpu cpuSampler // used by Run only

	mu      sync.Mutex
	load    []api.LoadSample // oldest first, at most cfg.History/cfg.Interval
	host    api.HostLoad
	dns     []api.DNSAnswers // as of the last tick
	dnsPrev *dnsRead         // the last good read, for the rate
}

// New returns a console for cfg.
func New(cfg Config) (*Console, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Console{cfg: cfg, hub: NewHub(cfg.MaxClients, cfg.ClientBuffer)}, nil
}

// Run samples every Interval and pushes updates and events to the
// connected dashboards until ctx ends; then it disconnects them.
func (c *Console) Run(ctx context.Context) {
	defer c.hub.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { c.followEvents(ctx) })
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	c.tick(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.tick(ctx)
		}
	}
}

// tick takes a load sample, reads the dns role's answers and, when a
// dashboard is connected, pushes an update with the edges' caches.
func (c *Console) tick(ctx context.Context) {
	st := c.cfg.Status()
	host := c.cpu.sample()
	s := sampleOf(time.Now(), st)
	keep := int(c.cfg.History / c.cfg.Interval)
	c.mu.Lock()
	c.load = append(c.load, s)
	if len(c.load) > keep {
		c.load = append(c.load[:0], c.load[len(c.load)-keep:]...)
	}
	c.host = host
	c.mu.Unlock()
	c.readDNS(ctx, s.Time, st)
	if c.hub.Len() == 0 {
		return
	}
	u := api.ConsoleUpdate{Time: s.Time, Status: st, Edges: c.edges(ctx, st), DNS: c.dnsNow(), Host: host, Sample: s}
	b, err := json.Marshal(u)
	if err != nil {
		c.cfg.Logger.Warn("console: encode update", "err", err)
		return
	}
	c.hub.Publish("update", b)
}

func sampleOf(now time.Time, st api.Status) api.LoadSample {
	s := api.LoadSample{Time: now.UTC()}
	if a := st.Autoscaling; a != nil {
		s.Utilization, s.Target, s.Desired = a.Utilization, a.Target, a.Desired
	}
	for _, n := range st.Nodes {
		if n.State == api.NodeInService {
			s.InService++
		}
	}
	return s
}

// followEvents pushes every new event of the log as it is added.
func (c *Console) followEvents(ctx context.Context) {
	since := c.cfg.Events.Since(ctx, 0, 0).Next
	for ctx.Err() == nil {
		page := c.cfg.Events.Since(ctx, since, 30*time.Second)
		since = max(since, page.Next)
		if c.hub.Len() == 0 {
			continue
		}
		for _, e := range page.Events {
			if b, err := json.Marshal(e); err == nil {
				c.hub.Publish("event", b)
			}
		}
	}
}

// Snapshot is the whole document: status, caches, host, the load history
// and the latest events.
func (c *Console) Snapshot(ctx context.Context) api.Console {
	st := c.cfg.Status()
	doc := api.Console{Time: time.Now().UTC(), Status: st, Edges: c.edges(ctx, st), DNS: c.dnsNow()}
	c.mu.Lock()
	doc.Host = c.host
	doc.Load = append([]api.LoadSample{}, c.load...)
	c.mu.Unlock()
	ev := c.cfg.Events.Since(ctx, 0, 0).Events
	doc.Events = ev[max(0, len(ev)-c.cfg.RecentEvents):]
	return doc
}

// Clients is the number of dashboards connected; Dropped counts those
// dropped for falling behind.
func (c *Console) Clients() int    { return c.hub.Len() }
func (c *Console) Dropped() uint64 { return c.hub.Dropped() }

// Handle mounts the page, its assets, the document and the stream on mux.
func (c *Console) Handle(mux *http.ServeMux) {
	mux.Handle("GET "+api.DashboardPath+"{$}", pageHeaders(http.HandlerFunc(servePage)))
	mux.Handle("GET "+api.DashboardAssets+"{file}", pageHeaders(http.HandlerFunc(serveAsset)))
	mux.HandleFunc("GET "+api.APIPathConsole, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(c.Snapshot(r.Context()))
	})
	mux.HandleFunc("GET "+api.APIPathConsoleStream, c.serveStream)
}

// serveStream is the server-sent event stream: a snapshot, then updates
// and events as they come. A dashboard that falls ClientBuffer messages
// behind is disconnected (its browser reconnects and gets a new snapshot);
// no other dashboard and no part of the controller waits for it.
func (c *Console) serveStream(w http.ResponseWriter, r *http.Request) {
	sub, err := c.hub.Subscribe()
	if err != nil {
		w.Header().Set("Retry-After", "10")
		guard.Refuse(w, r, c.cfg.Logger, http.StatusTooManyRequests, "%s: %d dashboards are connected, the most this controller serves; close one", r.URL.Path, c.cfg.MaxClients)
		return
	}
	defer c.hub.Unsubscribe(sub)
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{}) // the server's ReadTimeout would end the stream
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	snap, err := json.Marshal(c.Snapshot(r.Context()))
	if err != nil {
		return
	}
	send := func(name string, data []byte) bool {
		rc.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout))
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, data); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	rc.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout))
	if _, err := fmt.Fprint(w, "retry: 2000\n\n"); err != nil {
		return
	}
	if !send("snapshot", snap) {
		return
	}
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-sub.Gone():
			return
		case m := <-sub.C:
			if !send(m.name, m.data) {
				return
			}
		case <-keepalive.C:
			rc.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout))
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		}
	}
}
