package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/statedir"
	"github.com/scalepress/scalepress/internal/token"
)

const consoleBlock = 73

// chrome is headless Debian chromium (scripts/install-deps.sh) driven over
// the DevTools protocol; errs collects what the page reports as errors.
type chrome struct {
	ctx  context.Context
	mu   sync.Mutex
	errs []string
}

func newChromium(t *testing.T) *chrome {
	t.Helper()
	const chromium = "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("the dashboard test needs Debian's chromium (scripts/install-deps.sh installs it): %v", err)
	}
	// Not t.TempDir: chromium's helpers may still write its profile while
	// the browser exits, and TempDir's single RemoveAll then fails the test
	// (seen once in CI). The cleanup below retries for up to 5 s.
	dataDir, err := os.MkdirTemp("", "scalepress-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.UserDataDir(dataDir),
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-quic", true), chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.WindowSize(1400, 1800),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		for i := 0; ; i++ {
			err := os.RemoveAll(dataDir)
			if err == nil {
				return
			}
			if i == 50 {
				t.Errorf("remove chromium's profile %s: %v", dataDir, err)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	b := &chrome{ctx: ctx}
	chromedp.ListenTarget(ctx, func(ev any) {
		var msg string
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.APITypeError || e.Type == runtime.APITypeWarning {
				var args []string
				for _, a := range e.Args {
					args = append(args, string(a.Value))
				}
				msg = fmt.Sprintf("console.%s: %s", e.Type, strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			msg = "exception: " + e.ExceptionDetails.Error()
		case *log.EventEntryAdded:
			if e.Entry.Level == log.LevelError || e.Entry.Level == log.LevelWarning {
				msg = fmt.Sprintf("log %s (%s): %s %s", e.Entry.Level, e.Entry.Source, e.Entry.Text, e.Entry.URL)
			}
		}
		if msg != "" {
			b.mu.Lock()
			b.errs = append(b.errs, msg)
			b.mu.Unlock()
		}
	})
	if err := chromedp.Run(ctx, log.Enable(), runtime.Enable()); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return b
}

func (b *chrome) errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string{}, b.errs...)
}

// run runs actions with a timeout.
func (b *chrome) run(t *testing.T, timeout time.Duration, what string, actions ...chromedp.Action) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		t.Fatalf("%s: %v (page errors: %v)", what, err, b.errors())
	}
}

// nodeIDs are the node ids the page lists.
const nodeIDsJS = `Array.from(document.querySelectorAll('#nodes tbody tr')).map(r => r.dataset.node)`

// TestConsole: `up` prints a line per step, the dashboard shows what
// status --json shows and follows a scale without a reload, its actions
// need the operator's token, `events -f` follows the scale, and `logs`
// and `top` answer as the contract says.
func TestConsole(t *testing.T) {
	s := newStack(t, consoleBlock, 1)
	cfg := strings.Replace(stackConfig(consoleBlock, 1), "autoscaling:\n  enabled: false\n", "autoscaling:\n  enabled: true\n  min: 1\n  max: 3\n  target: 0.6\n", 1)
	if err := os.WriteFile(s.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("up on a fresh dir prints a line per step and the site last", func(t *testing.T) {
		r := s.cli(t, "up", "--detach")
		if r.code != 0 {
			t.Fatalf("up --detach: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		out := strings.TrimRight(r.stdout+r.stderr, "\n")
		lines := strings.Split(out, "\n")
		t.Logf("up printed %d lines:\n%s", len(lines), out)
		if len(lines) > 15 {
			t.Errorf("up printed %d lines, want at most 15", len(lines))
		}
		for _, step := range []string{"checks", "database", "wordpress", "nodes", "edges", "site"} {
			if !slices.ContainsFunc(lines, func(l string) bool {
				f := strings.Fields(l)
				return len(f) == 2 && f[0] == step && strings.HasSuffix(f[1], "s")
			}) {
				t.Errorf("no line for step %q", step)
			}
		}
		last := lines[len(lines)-1]
		for _, want := range []string{"ready in", s.site, "admin admin", "dashboard " + s.api + "/"} {
			if !strings.Contains(last, want) {
				t.Errorf("last line %q does not say %q", last, want)
			}
		}
	})

	st := s.status(t)
	if st.DashboardURL != s.api+"/" {
		t.Fatalf("dashboard_url %q, want %s/", st.DashboardURL, s.api)
	}
	b := newChromium(t)
	var statusIDs []string
	for _, n := range st.Nodes {
		statusIDs = append(statusIDs, n.ID)
	}

	t.Run("the page shows the nodes of status --json without errors", func(t *testing.T) {
		var ids []string
		b.run(t, 30*time.Second, "load the dashboard",
			chromedp.Navigate(st.DashboardURL),
			chromedp.WaitVisible(`#nodes tbody tr`, chromedp.ByQuery),
			chromedp.Evaluate(nodeIDsJS, &ids),
			chromedp.Evaluate(`window.__noReload = true`, nil),
		)
		if d := cmpStrings(statusIDs, ids); d != "" {
			t.Errorf("nodes on the page vs status --json: %s", d)
		}
		if errs := b.errors(); len(errs) > 0 {
			t.Errorf("the page reported errors: %q", errs)
		}
	})

	// events -f runs from before the scale to see it arrive.
	evctx, stopEvents := context.WithCancel(context.Background())
	defer stopEvents()
	ev := exec.CommandContext(evctx, bin, "events", "-f", "--dir", s.dir)
	evout, _ := ev.StdoutPipe()
	if err := ev.Start(); err != nil {
		t.Fatal(err)
	}
	evLines := make(chan string, 256)
	go func() {
		sc := bufio.NewScanner(evout)
		for sc.Scan() {
			evLines <- sc.Text()
		}
		close(evLines)
	}()
	defer func() { stopEvents(); ev.Wait() }()
	time.Sleep(time.Second) // events -f has printed the history and waits

	t.Run("after scale the new count appears without a reload", func(t *testing.T) {
		if r := s.cli(t, "scale", "--min", "2"); r.code != 0 {
			t.Fatalf("scale: %d %s", r.code, r.stderr)
		}
		var ids []string
		var same bool
		b.run(t, 90*time.Second, "wait for two nodes on the page",
			chromedp.Poll(`document.querySelectorAll('#nodes tbody tr[data-node]').length === 2 && document.querySelector('#nodes tbody').textContent.includes('in-service') && !document.querySelector('#nodes tbody').textContent.match(/pending|warming/)`, nil, chromedp.WithPollingTimeout(85*time.Second)),
			chromedp.Evaluate(nodeIDsJS, &ids),
			chromedp.Evaluate(`window.__noReload === true`, &same),
		)
		if !same {
			t.Error("the page was reloaded")
		}
		st := s.status(t)
		var want []string
		for _, n := range st.Nodes {
			want = append(want, n.ID)
		}
		if d := cmpStrings(want, ids); d != "" {
			t.Errorf("after the scale, nodes on the page vs status --json: %s", d)
		}
		var shot []byte
		b.run(t, 20*time.Second, "screenshot", chromedp.FullScreenshot(&shot, 100))
		dir := os.Getenv("SCALEPRESS_E2E_ARTIFACTS")
		if dir == "" {
			dir = filepath.Join(os.TempDir(), "scalepress-e2e-artifacts")
		}
		os.MkdirAll(dir, 0o755)
		path := filepath.Join(dir, "dashboard.png")
		if err := os.WriteFile(path, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot of the dashboard: %s (%d bytes)", path, len(shot))
		if errs := b.errors(); len(errs) > 0 {
			t.Errorf("the page reported errors: %q", errs)
		}
	})

	t.Run("events -f follows the scale", func(t *testing.T) {
		deadline := time.After(30 * time.Second)
		for {
			select {
			case l, ok := <-evLines:
				if !ok {
					t.Fatal("events -f ended")
				}
				if f := strings.Fields(l); len(f) > 2 && f[1] == "scale" {
					t.Logf("events -f: %s", l)
					return
				}
			case <-deadline:
				t.Fatal("events -f printed no scale event within 30 s of the scale")
			}
		}
	})

	t.Run("a dashboard action without the token is refused and changes nothing", func(t *testing.T) {
		before := s.status(t).Autoscaling
		for _, tok := range []string{"", "operator.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"} {
			var result string
			b.run(t, 20*time.Second, "scale from the page",
				chromedp.Evaluate(fmt.Sprintf(`document.getElementById('token').value = %q; document.getElementById('scale-min').value = '3'; document.getElementById('result').textContent = ''`, tok), nil),
				chromedp.Click(`#scale-go`, chromedp.ByID),
				chromedp.Poll(`document.getElementById('result').textContent !== ''`, nil, chromedp.WithPollingTimeout(15*time.Second)),
				chromedp.Text(`#result`, &result, chromedp.ByID),
			)
			if !strings.Contains(result, "401") {
				t.Errorf("token %q: the page says %q, want a 401", tok, result)
			}
		}
		// The same request as the page's, from outside the page: 401.
		req, _ := http.NewRequest("POST", s.api+api.APIPathScale, strings.NewReader(`{"min":3}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", s.api)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("POST /v1/scale without a token: %d, want 401", resp.StatusCode)
		}
		if after := s.status(t).Autoscaling; after.Min != before.Min || after.Max != before.Max || after.Target != before.Target {
			t.Errorf("autoscaling changed by refused actions: %+v → %+v", before, after)
		}
	})

	t.Run("a dashboard action with the token says what it did", func(t *testing.T) {
		tok, err := os.ReadFile(filepath.Join(s.dir, "secrets", "api-token"))
		if err != nil {
			t.Fatal(err)
		}
		var result string
		b.run(t, 20*time.Second, "purge from the page",
			chromedp.Evaluate(fmt.Sprintf(`document.getElementById('token').value = %q; document.getElementById('result').textContent = ''`, strings.TrimSpace(string(tok))), nil),
			chromedp.Click(`#purge-all`, chromedp.ByID),
			chromedp.Click(`#purge-go`, chromedp.ByID),
			chromedp.Poll(`document.getElementById('result').textContent !== ''`, nil, chromedp.WithPollingTimeout(15*time.Second)),
			chromedp.Text(`#result`, &result, chromedp.ByID),
		)
		if !strings.Contains(result, "purged") || !strings.Contains(result, "on 1 edges") {
			t.Errorf("the page says %q after a purge with the token", result)
		}
	})

	t.Run("markup in an event is shown as text", func(t *testing.T) {
		// A login throttling event names the user name a stranger typed.
		secrets, err := statedir.LoadSecrets(statedir.Layout{Dir: s.dir})
		if err != nil {
			t.Fatal(err)
		}
		const name = `<img src=/x id=xss onerror="window.__xss=1">`
		body := fmt.Sprintf(`{"login_blocks":[{"time":%q,"by":"user","address":"127.0.0.9","user":%q,"count":11,"until":%q}]}`,
			time.Now().UTC().Format(time.RFC3339), name, time.Now().Add(time.Minute).UTC().Format(time.RFC3339))
		req, _ := http.NewRequest("POST", s.api+api.APIPathEdgeEvents, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		token.SetBearer(req.Header, secrets.Key(token.Control).Issue("edge-1"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("edge events: %d", resp.StatusCode)
		}
		var shown, injected bool
		b.run(t, 20*time.Second, "wait for the event",
			chromedp.Poll(`document.getElementById('events').textContent.includes('<img src=/x id=xss')`, nil, chromedp.WithPollingTimeout(15*time.Second)),
			chromedp.Evaluate(`document.getElementById('events').textContent.includes('onerror')`, &shown),
			chromedp.Evaluate(`document.getElementById('xss') !== null || window.__xss === 1`, &injected),
		)
		if !shown || injected {
			t.Errorf("the user name was not shown as text: shown %v, became an element %v", shown, injected)
		}
	})

	t.Run("logs", func(t *testing.T) {
		r := s.cli(t, "logs", "nginx")
		if r.code != 2 || !strings.Contains(r.stderr, `unknown role "nginx"`) || !strings.Contains(r.stderr, "edge") || !strings.Contains(r.stderr, "php-fpm") {
			t.Errorf("logs nginx: exit %d, stderr %q", r.code, r.stderr)
		}
		r = s.cli(t, "logs", "edge")
		if r.code != 0 || !regexp.MustCompile(`(?m)^edge-1 +\| `).MatchString(r.stdout) || regexp.MustCompile(`(?m)^node-1 +\| `).MatchString(r.stdout) {
			t.Errorf("logs edge: exit %d, %d bytes: %.300s", r.code, len(r.stdout), r.stdout)
		}
	})

	t.Run("top", func(t *testing.T) {
		if r := s.cli(t, "top"); r.code != 2 || !strings.Contains(r.stderr, "--once") {
			t.Errorf("top without a terminal: exit %d, stderr %q", r.code, r.stderr)
		}
		r := s.cli(t, "top", "--once")
		if r.code != 0 || !strings.Contains(r.stdout, "NODES  2, 2 in service") || !strings.Contains(r.stdout, "edge-1") {
			t.Errorf("top --once: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
}

// cmpStrings is "" when a and b hold the same strings in any order.
func cmpStrings(a, b []string) string {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	if slices.Equal(a, b) {
		return ""
	}
	return fmt.Sprintf("want %v, got %v", a, b)
}
