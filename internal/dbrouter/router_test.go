package dbrouter

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/metrics"
)

// echoServer answers every line with its name and the line.
func echoServer(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				s := bufio.NewScanner(c)
				for s.Scan() {
					io.WriteString(c, name+":"+s.Text()+"\n")
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startRouter(t *testing.T, members []string) (*Router, string) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Addr = freeAddr(t)
	cfg.Members = members
	r, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	for range 100 {
		if c, err := net.Dial("tcp", cfg.Addr); err == nil {
			c.Close()
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return r, cfg.Addr
}

func roundTrip(t *testing.T, c net.Conn, msg string) (string, error) {
	t.Helper()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

func TestRelaysToFirstAnsweringMember(t *testing.T) {
	dead := freeAddr(t) // nothing listens here
	a := echoServer(t, "a")
	_, addr := startRouter(t, []string{dead, a})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := roundTrip(t, c, "hello")
	if err != nil || got != "a:hello" {
		t.Fatalf("got %q, %v; want a:hello", got, err)
	}
}

func TestMemberLeavingClosesItsConnections(t *testing.T) {
	a, b := echoServer(t, "a"), echoServer(t, "b")
	r, addr := startRouter(t, []string{a, b})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, _ := roundTrip(t, c, "1"); got != "a:1" {
		t.Fatalf("first answer %q", got)
	}
	r.Update(api.DBMembers{Members: []string{b}})
	if _, err := roundTrip(t, c, "2"); err == nil {
		t.Fatal("connection to the member that left still works")
	}
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if got, err := roundTrip(t, c2, "3"); got != "b:3" {
		t.Fatalf("new connection got %q, %v; want b:3", got, err)
	}
}

func TestValidate(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "members") {
		t.Errorf("no members: %v", err)
	}
	cfg.Members = []string{"127.0.0.1:1"}
	cfg.Addr = "nope"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "addr") {
		t.Errorf("bad addr: %v", err)
	}
}

func dialRouter(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestSingleWriterIsStickyAndDeterministic(t *testing.T) {
	a, b, c := echoServer(t, "a"), echoServer(t, "b"), echoServer(t, "c")
	r, addr := startRouter(t, []string{a, b, c})
	for i := range 5 {
		if got, err := roundTrip(t, dialRouter(t, addr), "x"); got != "a:x" {
			t.Fatalf("connection %d went to %q (%v), want the first member a", i, got, err)
		}
	}
	// a leaves: the next in the list takes over.
	r.Update(api.DBMembers{Members: []string{b, c}, IDs: []string{"db-2", "db-3"}})
	if got, _ := roundTrip(t, dialRouter(t, addr), "x"); got != "b:x" {
		t.Fatalf("after a left: %q, want b", got)
	}
	// a is back and first again: the writer stays b (no needless move).
	r.Update(api.DBMembers{Members: []string{a, b, c}, IDs: []string{"db-1", "db-2", "db-3"}})
	if got, _ := roundTrip(t, dialRouter(t, addr), "x"); got != "b:x" {
		t.Fatalf("after a returned: %q, want b (sticky)", got)
	}
	s := r.Snapshot()
	if s.Writer != "db-2" || s.Failovers != 1 || s.Mode != ModeSingle {
		t.Errorf("snapshot %+v", s)
	}
}

func TestMultiWriterLeastConnections(t *testing.T) {
	a, b := echoServer(t, "a"), echoServer(t, "b")
	r, addr := startRouter(t, []string{a, b})
	r.Update(api.DBMembers{Members: []string{a, b}, Mode: ModeMulti})
	var got []string
	for range 4 {
		g, err := roundTrip(t, dialRouter(t, addr), "x") // each stays open
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, g)
	}
	slices.Sort(got) // the router's readiness probe may still hold one
	if diff := cmp.Diff([]string{"a:x", "a:x", "b:x", "b:x"}, got); diff != "" {
		t.Errorf("spread (-want +got):\n%s", diff)
	}
	// Back to single: connections not on the writer are closed.
	c := dialRouter(t, addr)
	roundTrip(t, c, "y")
	r.Update(api.DBMembers{Members: []string{a, b}, Mode: ModeSingle})
	time.Sleep(50 * time.Millisecond)
	if s := r.Snapshot(); s.Members[1].Active != 0 || s.Members[0].Active != 3 {
		t.Errorf("after switching to single: %+v", s.Members)
	}
}

func TestNoSyncedMemberRejects(t *testing.T) {
	a := echoServer(t, "a")
	r, addr := startRouter(t, []string{a})
	r.Update(api.DBMembers{Members: []string{}})
	c := dialRouter(t, addr)
	if _, err := roundTrip(t, c, "x"); err == nil {
		t.Fatal("a connection was relayed with no synced member")
	}
	if r.Snapshot().Rejected == 0 {
		t.Error("rejection not counted")
	}
}

func TestMetrics(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Addr, cfg.MetricsAddr = "127.0.0.1:3306", "127.0.0.1:9104"
	cfg.Members, cfg.IDs = []string{"127.0.2.1:3306", "127.0.2.2:3306"}, []string{"db-1", "db-2"}
	r, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	r.perConn["127.0.2.1:3306"], r.perTot["127.0.2.1:3306"] = 2, 9
	r.failovers.Add(1)
	got := scrapeRouter(t, r, "127.0.0.1:9104", http.StatusOK)
	for _, want := range []string{
		`scalepress_dbrouter_writer{addr="127.0.2.1:3306",member="db-1"} 1`,
		`scalepress_dbrouter_writer{addr="127.0.2.2:3306",member="db-2"} 0`,
		`scalepress_dbrouter_connections_active{addr="127.0.2.1:3306",member="db-1"} 2`,
		`scalepress_dbrouter_connections_total{addr="127.0.2.1:3306",member="db-1"} 9`,
		"scalepress_dbrouter_failovers_total 1",
		`scalepress_dbrouter_members{mode="single"} 2`,
	} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, got)
		}
	}
	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := metrics.Documented(doc, "dbrouter")
	if err != nil {
		t.Fatal(err)
	}
	exposed, err := metrics.Parse([]byte(got))
	if err != nil {
		t.Fatal(err)
	}
	if p := metrics.Check(exposed, docs); len(p) > 0 {
		t.Errorf("docs/metrics.md and the router disagree:\n%s", strings.Join(p, "\n"))
	}
}

// TestMetricsHost: the metrics listener answers only requests for its own
// address (a DNS-rebinding page sends its own name).
func TestMetricsHost(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Addr, cfg.MetricsAddr, cfg.Members = "127.0.0.1:3306", "127.0.0.1:9104", []string{"127.0.2.1:3306"}
	r, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	scrapeRouter(t, r, "127.0.0.1:9104", http.StatusOK)
	if body := scrapeRouter(t, r, "evil.example:9104", http.StatusForbidden); strings.Contains(body, "scalepress_") {
		t.Errorf("metrics served to another Host:\n%s", body)
	}
}

func scrapeRouter(t *testing.T, r *Router, host string, want int) string {
	t.Helper()
	req := httptest.NewRequest("GET", "http://"+host+api.RouterPathMetrics, nil)
	w := httptest.NewRecorder()
	r.Handler().ServeHTTP(w, req)
	if w.Code != want {
		t.Fatalf("GET %s Host %s: %d, want %d: %s", api.RouterPathMetrics, host, w.Code, want, w.Body)
	}
	return w.Body.String()
}

func TestConfigFromSpec(t *testing.T) {
	c := ConfigFromSpec(api.RouterSpec{Addr: "127.0.0.1:3306", Members: []string{"127.0.2.1:3306"}, Mode: "multi", MetricsAddr: "127.0.0.1:9104"})
	if c.Mode != ModeMulti || c.MetricsAddr != "127.0.0.1:9104" || c.Validate() != nil {
		t.Errorf("%+v: %v", c, c.Validate())
	}
	c.Mode = "round-robin"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "mode") {
		t.Errorf("bad mode: %v", err)
	}
}

// BenchmarkRoundTrip is one small request and answer, as a short SQL
// statement is: directly to the server, and through the router.
func BenchmarkRoundTrip(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go io.Copy(c, c)
		}
	}()
	run := func(b *testing.B, addr string) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		msg := make([]byte, 64)
		buf := make([]byte, 64)
		b.ResetTimer()
		for range b.N {
			if _, err := c.Write(msg); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(c, buf); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("direct", func(b *testing.B) { run(b, ln.Addr().String()) })
	b.Run("router", func(b *testing.B) {
		cfg := DefaultConfig()
		cfg.Addr = freeAddrB(b)
		cfg.Members = []string{ln.Addr().String()}
		r, err := New(cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { r.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()
		for range 100 {
			if c, err := net.Dial("tcp", cfg.Addr); err == nil {
				c.Close()
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		run(b, cfg.Addr)
	})
}

func freeAddrB(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestMetricsEndpoint(t *testing.T) {
	a := echoServer(t, "a")
	cfg := DefaultConfig()
	cfg.Addr, cfg.MetricsAddr = freeAddr(t), freeAddr(t)
	cfg.Members, cfg.IDs = []string{a}, []string{"db-1"}
	r, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	var body string
	for range 100 {
		resp, err := http.Get("http://" + cfg.MetricsAddr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(body, `scalepress_dbrouter_writer{addr="`+a+`",member="db-1"} 1`) {
		t.Errorf("metrics:\n%s", body)
	}
}

// silentMember is a member that answers one line on each connection and
// keeps it open; stop closes its listener only (new dials are refused, the
// relayed connections stay open, as when its host is cut off).
func silentMember(t *testing.T, name string) (addr string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			go func() {
				s := bufio.NewScanner(c)
				if s.Scan() {
					io.WriteString(c, name+":"+s.Text()+"\n")
				}
			}()
		}
	}()
	return ln.Addr().String(), func() { ln.Close() }
}

// closedByRouter fails t unless the router closes c (within 5 s: a bound
// on a failure, the router does it in about a poll interval).
func closedByRouter(t *testing.T, c net.Conn, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("%s is still open", what)
	}
	if err == nil {
		t.Fatalf("read %d bytes from %s, want it closed", n, what)
	}
}

// TestWriterUnreachableClosesItsConnections: in single mode, a dial to the
// writer fails (its host is cut off; the controller has not noticed yet):
// the router moves new connections to the next member and closes the ones
// it relays to the old writer, which would otherwise hang until TCP gives
// up (WordPress waits on them: the write pause of a cut, issue 12).
func TestWriterUnreachableClosesItsConnections(t *testing.T) {
	a, stop := silentMember(t, "a")
	b := echoServer(t, "b")
	r, addr := startRouter(t, []string{a, b})
	old := dialRouter(t, addr)
	if got, err := roundTrip(t, old, "1"); got != "a:1" {
		t.Fatalf("first answer %q, %v; want a:1", got, err)
	}
	stop()
	if got, err := roundTrip(t, dialRouter(t, addr), "2"); got != "b:2" {
		t.Fatalf("new connection got %q, %v; want b:2", got, err)
	}
	closedByRouter(t, old, "the connection to the replaced writer")
	if s := r.Snapshot(); s.Failovers != 1 {
		t.Errorf("failovers %d, want 1", s.Failovers)
	}
}

// TestWatchFindsUnreachableMember: no new client comes (every PHP worker
// of the host waits on a connection to the cut writer), yet the router's
// own watch finds the writer unreachable, closes its connections and moves
// to the next member; in multi mode too, for a member carrying connections.
func TestWatchFindsUnreachableMember(t *testing.T) {
	for _, mode := range []string{ModeSingle, ModeMulti} {
		t.Run(mode, func(t *testing.T) {
			a, stopA := silentMember(t, "a")
			b, stopB := silentMember(t, "b")
			r, addr := startRouter(t, []string{a, b})
			r.Update(api.DBMembers{Members: []string{a, b}, Mode: mode})
			old := dialRouter(t, addr)
			// Single mode: the writer a. Multi mode: the one with the
			// fewest connections, which the router's start may have moved.
			first, err := roundTrip(t, old, "1")
			stop, other := stopA, "b:2"
			switch {
			case first == "b:1" && mode == ModeMulti:
				stop, other = stopB, "a:2"
			case first != "a:1":
				t.Fatalf("first answer %q, %v; want a:1", first, err)
			}
			stop()
			closedByRouter(t, old, "the connection to the unreachable member")
			if got, err := roundTrip(t, dialRouter(t, addr), "2"); got != other {
				t.Fatalf("new connection got %q, %v; want %s", got, err, other)
			}
		})
	}
}

// TestPollKeepsListUnlessTold: a controller that has not observed the
// members yet (starting, or taking the site over) answers 503; the router
// keeps the member it relays to. A 200 is applied, an empty list too.
func TestPollKeepsListUnlessTold(t *testing.T) {
	answers := []struct {
		code int
		body string
	}{
		{http.StatusServiceUnavailable, "database members not observed yet (the controller is starting): keep the list you have\n"},
		{http.StatusOK, `{"members": [], "mode": "single"}`},
	}
	var i atomic.Int32 // the answer the server gives
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := answers[i.Load()]
		w.WriteHeader(a.code)
		io.WriteString(w, a.body)
	}))
	defer srv.Close()
	a := echoServer(t, "a")
	cfg := DefaultConfig()
	cfg.Members, cfg.MembersURL = []string{a}, srv.URL
	r, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	client := api.NewClient(srv.URL)
	for n, want := range [][]string{{a}, {}} {
		i.Store(int32(n))
		r.pollOnce(context.Background(), client)
		r.mu.Lock()
		got := slices.Clone(r.members)
		r.mu.Unlock()
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("after a %d: members (-want +got):\n%s", answers[n].code, diff)
		}
	}
}
