package multihost

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/statedir"
	"github.com/scalepress/scalepress/test/hosts"
)

// subnet is this benchmark's own: the tests use 10.77.0.0/24 (test/hosts'
// default); 10.78.0.0/24 only appears in a pure parser test.
var subnet = netip.MustParsePrefix("10.79.0.0/24")

// params are the benchmark's knobs, from the environment (bench/multihost.sh).
type params struct {
	reps     int           // REPS: repetitions, each on a fresh topology
	n        int           // N: small files per propagation run
	every    time.Duration // EVERY: time between two small files
	bigMB    int           // BIG: one big file after them, MiB (0: none)
	loadRate int           // LOAD_RATE: requests/s of the load step
	loadFor  time.Duration // LOAD_FOR: how long the step lasts
	settle   time.Duration // SETTLE: pause after the site serves / after scaling, before measuring
	// SPARSE_N files one every SPARSE_EVERY, after the burst: the latency
	// of one upload at a time, where the burst (N every EVERY) also
	// measures how fast a backlog drains.
	sparseN     int
	sparseEvery time.Duration
	// ONLY=propagation: only scalepress's upload propagation (no load
	// step, no memory sample, no lsyncd peer), for before/after pairs.
	propOnly bool
}

func paramsFromEnv(t *testing.T) params {
	t.Helper()
	num := func(name string, def int) int {
		v := os.Getenv(name)
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			t.Fatalf("%s=%q: want a number ≥ 0", name, v)
		}
		return n
	}
	dur := func(name string, def time.Duration) time.Duration {
		v := os.Getenv(name)
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			t.Fatalf("%s=%q: want a duration ≥ 0", name, v)
		}
		return d
	}
	p := params{
		reps: num("REPS", 3), n: num("N", 500), every: dur("EVERY", 5*time.Millisecond), bigMB: num("BIG", 20),
		loadRate: num("LOAD_RATE", 30), loadFor: dur("LOAD_FOR", 30*time.Second), settle: dur("SETTLE", 5*time.Second),
		sparseN: num("SPARSE_N", 100), sparseEvery: dur("SPARSE_EVERY", 50*time.Millisecond),
	}
	switch o := os.Getenv("ONLY"); o {
	case "":
	case "propagation":
		p.propOnly = true
	default:
		t.Fatalf("ONLY=%q: want propagation or nothing", o)
	}
	if p.reps < 1 || p.n < 1 || p.loadRate < 1 || p.loadFor <= 0 {
		t.Fatalf("REPS, N, LOAD_RATE and LOAD_FOR must be positive: %+v", p)
	}
	return p
}

// siteConfig: every role but the nodes on h1 (controller, edge, files,
// redis, db router and one MariaDB member), bound to h1's address where
// another host reaches it; the nodes on Nomad clients h2..h4; the files
// store in a bucket on h4. Autoscaling from 1 node. The CPU budget and
// saturation check are off: with Nomad the controller does not apply them
// anyway (docs/adr/0024-capacity.md), set here so the run does not depend
// on that.
func siteConfig(h1, apiFwd string) string {
	return fmt.Sprintf(`site:
  title: multi-host bench
api:
  addr: %[1]s:9090
  allowed_hosts: [%[2]q]
edges:
  - id: edge-1
    region: default
    addr: %[1]s:8080
nodes:
  count: 1
  php_children: 2
  slow_start: 2s
autoscaling:
  enabled: true
  min: 1
  max: 3
  target: 0.6
  scale_in_window: 5m
  workers_per_core: 0
  cpu_saturated: 0
  cpu_clear: 0
# one load generator stands for many clients: no per-client cap
http:
  client_concurrency: 0
db:
  members: 1
  ip_base: 127.0.2.0
  router: %[1]s:3306
  buffer_pool: 64M
redis:
  addr: %[1]s:6379
wordpress:
  cron_interval: 10s
  block_external_http: true
scheduler:
  kind: nomad
  address: http://%[1]s:4646
  job: sp-mhbench-nodes
  cpu: 100
  memory_mb: 256
files:
  addr: %[1]s:8081
`, h1, apiFwd)
}

// repResult is what one repetition measured.
type repResult struct {
	up       time.Duration // `up` started to the first 200 through the edge
	step     time.Duration // load step started to the first new node in service (0: none)
	stepHost string        // the new node's host
	stepLoad string        // the load generator's summary
	// Propagation outputs, [burst, sparse].
	ours      [2]string     // scalepress
	lsync0    [2]string     // lsyncd delay 0
	lsyncDef  [2]string     // lsyncd default delay
	memory    string        // the memory table
	loadAvg   []string      // /proc/loadavg samples during the rep
	writerTo  string        // "h2 -> h3"
	threeHost time.Duration // scale --min 3 to 3 nodes in service
	build     string        // the scalepress binary
}

// TestMultiHostBench runs REPS repetitions, each on a fresh topology (4
// hosts and a client on their own subnet), and prints every measurement and
// a summary. All HTTP traffic is sent from the client namespace; the files
// are written and watched on the shared filesystem (no packet).
func TestMultiHostBench(t *testing.T) {
	bin := os.Getenv("SCALEPRESS_BIN")
	if bin == "" {
		t.Fatal("SCALEPRESS_BIN must name the scalepress binary (bench/multihost.sh sets it)")
	}
	for _, prog := range []string{"lsyncd", "rsync"} {
		if _, err := exec.LookPath(prog); err != nil {
			t.Fatalf("%s missing: apt-get install lsyncd rsync", prog)
		}
	}
	p := paramsFromEnv(t)
	prop := filepath.Join(t.TempDir(), "propagation")
	if out, err := exec.Command("go", "build", "-o", prop, "github.com/scalepress/scalepress/bench/propagation").CombinedOutput(); err != nil {
		t.Fatalf("building bench/propagation: %v\n%s", err, out)
	}
	hosts.LockE2E(t)
	fmt.Printf("== multi-host bench: REPS=%d N=%d EVERY=%s BIG=%d SPARSE_N=%d SPARSE_EVERY=%s LOAD_RATE=%d LOAD_FOR=%s SETTLE=%s, subnet %s, load average at start %s\n",
		p.reps, p.n, p.every, p.bigMB, p.sparseN, p.sparseEvery, p.loadRate, p.loadFor, p.settle, subnet, loadAvg())
	// BASELINE=PATH: each repetition runs that build first, then this one,
	// each on a fresh topology (a before/after pair in the same conditions).
	bins := []string{bin}
	if b := os.Getenv("BASELINE"); b != "" {
		bins = []string{b, bin}
	}
	var results []repResult
	for rep := 1; rep <= p.reps; rep++ {
		for i, b := range bins {
			// A failed repetition keeps what it measured and the next one runs.
			r := repResult{build: b}
			fmt.Printf("== rep %d: build %s\n", rep, b)
			t.Run(fmt.Sprintf("rep%d-%d", rep, i), func(t *testing.T) { runRep(t, b, prop, p, rep, &r) })
			results = append(results, r)
		}
	}
	printSummary(p, results)
}

// runRep measures one repetition into r, as far as it gets.
func runRep(t *testing.T, bin, prop string, p params, rep int, r *repResult) {
	sample := func(what string) {
		r.loadAvg = append(r.loadAvg, what+" "+loadAvg())
	}
	sample("start")
	n := hosts.New(t, hosts.Config{Hosts: []string{"h1", "h2", "h3", "h4"}, Client: true, Subnet: subnet})
	h1, client := n.Host(t, "h1"), n.Client
	nodeHosts := n.Hosts[1:]
	base, err := os.MkdirTemp("", "sp-mhbench-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	meta := map[string]map[string]string{}
	for _, h := range nodeHosts {
		d := filepath.Join(base, h.Name)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		meta[h.Name] = map[string]string{"scalepress_dir": d}
	}
	tTopo := time.Now()
	hosts.StartNomad(t, n, h1, nodeHosts, hosts.NomadOptions{Meta: meta})
	s3 := hosts.StartVersitygw(t, n.Host(t, "h4"), hosts.VersitygwOptions{})
	dir := filepath.Join(base, "controller")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	store := s3.SiteStore(t, filepath.Join(dir, "s3"))
	apiFwd := client.Forward(t, h1.Addr.String()+":9090")
	cfgPath := filepath.Join(dir, "scalepress.yaml")
	if err := os.WriteFile(cfgPath, []byte(siteConfig(h1.Addr.String(), apiFwd)+store), 0o644); err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := h1.Command(ctx, bin, append(args, "--dir", dir)...).CombinedOutput()
		return string(out), err
	}
	// After the Nomad fixture's cleanup is registered, so it runs first:
	// the controller stops its job and roles whatever happened.
	t.Cleanup(func() {
		if out, err := cli("down"); err != nil {
			t.Logf("down at cleanup: %v: %s", err, out)
		}
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(base, "*", "logs", "*.log"))
			for _, l := range logs {
				t.Logf("---- %s (tail)\n%s", l, tailFile(l, 2000))
			}
		}
	})
	fmt.Printf("== rep %d: topology %s, Nomad (server h1, clients h2..h4) and versitygw (h4) ready in %s\n",
		rep, n.Prefix(), time.Since(tTopo).Round(time.Millisecond))

	// 1. up to serving across the hosts.
	tUp := time.Now()
	up := h1.Start(t, bin, "up", "--config", cfgPath, "--dir", dir)
	site := "http://" + h1.Addr.String() + ":8080"
	web := client.HTTPClient()
	get := func(path string) int {
		resp, err := web.Get(site + path)
		if err != nil {
			return 0
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	for deadline := time.Now().Add(10 * time.Minute); get("/") != http.StatusOK; time.Sleep(200 * time.Millisecond) {
		select {
		case <-up.Done():
			t.Fatalf("up exited before the site answered: %v", up.Err())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the site never answered 200 through the edge")
		}
	}
	r.up = time.Since(tUp)
	sample("after up")
	fmt.Printf("rep %d: up to the first 200 across hosts: %s\n", rep, r.up.Round(time.Millisecond))

	tok, err := os.ReadFile(filepath.Join(dir, "secrets", "api-token"))
	if err != nil {
		t.Fatal(err)
	}
	ctl := api.NewClient("http://" + apiFwd)
	ctl.Token = strings.TrimSpace(string(tok))
	inService := func() map[string]string {
		st, err := ctl.Status(context.Background())
		if err != nil {
			t.Fatalf("status through the forward: %v", err)
		}
		m := map[string]string{}
		for _, nd := range st.Nodes {
			if nd.State == api.NodeInService {
				m[nd.ID] = nd.Host
			}
		}
		return m
	}
	waitNodes := func(want int, within time.Duration) map[string]string {
		var last map[string]string
		for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if last = inService(); len(last) >= want {
				return last
			}
		}
		t.Fatalf("want %d nodes in service, have %v", want, last)
		return nil
	}
	before := waitNodes(1, 3*time.Minute)
	time.Sleep(p.settle)
	before = inService()

	if !p.propOnly {
		loadStep(t, bin, p, rep, r, client, site, inService, before, cli)
	}

	// 3 nodes, one per client, for the memory sample and the writer/reader.
	tScale := time.Now()
	if out, err := cli("scale", "--min", "3"); err != nil {
		t.Fatalf("scale --min 3: %v: %s", err, out)
	}
	three := waitNodes(3, 3*time.Minute)
	r.threeHost = time.Since(tScale)
	fmt.Printf("rep %d: scale --min 3 to 3 in service: %s; nodes %v\n", rep, r.threeHost.Round(time.Millisecond), three)
	time.Sleep(p.settle)

	// 4. Memory per host while serving (a few uncached pages first).
	if !p.propOnly {
		for i := range 6 {
			get(fmt.Sprintf("/?s=mhbench-mem-%d", i))
		}
		r.memory = memoryTable(t, n)
		sample("serving, 3 nodes")
		fmt.Printf("rep %d: memory per host (processes in each host's namespace, by role):\n%s", rep, r.memory)
	}
	propagation(t, n, bin, prop, p, rep, r, base, three, sample)

	tDown := time.Now()
	if out, err := cli("down"); err != nil {
		t.Fatalf("down: %v: %s", err, out)
	}
	select {
	case <-up.Done():
	case <-time.After(2 * time.Minute):
		t.Fatal("the controller still runs after down")
	}
	fmt.Printf("rep %d: down %s; load average samples: %s\n", rep, time.Since(tDown).Round(time.Millisecond), strings.Join(r.loadAvg, "; "))
}

// loadStep is step 2: a load step (uncached searches, from the client
// namespace) to the first new node in service, through the autoscaler and
// Nomad.
func loadStep(t *testing.T, bin string, p params, rep int, r *repResult, client *hosts.Host, site string,
	inService func() map[string]string, before map[string]string, cli func(...string) (string, error)) {
	sample := func(what string) {
		r.loadAvg = append(r.loadAvg, what+" "+loadAvg())
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.loadFor+time.Minute)
	defer cancel()
	load := client.Command(ctx, bin, "load", "--url", site+"/?s=mhbench-step", "--rate", strconv.Itoa(p.loadRate), "--duration", p.loadFor.String())
	var loadOut bytes.Buffer
	load.Stdout, load.Stderr = &loadOut, &loadOut
	tStep := time.Now()
	fmt.Printf("rep %d: load step starts at %s\n", rep, tStep.Format("15:04:05.000"))
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	loadDone := make(chan error, 1)
	go func() { loadDone <- load.Wait() }()
	for deadline := tStep.Add(p.loadFor + 15*time.Second); time.Now().Before(deadline) && r.step == 0; time.Sleep(100 * time.Millisecond) {
		for id, h := range inService() {
			if _, old := before[id]; !old {
				r.step, r.stepHost = time.Since(tStep), h+" ("+id+")"
				break
			}
		}
	}
	sample("during the step")
	if err := <-loadDone; err != nil {
		t.Errorf("load: %v\n%s", err, loadOut.String())
	}
	r.stepLoad = strings.TrimSpace(loadOut.String())
	if r.step > 0 {
		fmt.Printf("rep %d: load step (%d/s uncached search) to the first new node in service: %s, on %s; nodes before: %v\n",
			rep, p.loadRate, r.step.Round(time.Millisecond), r.stepHost, before)
	} else {
		fmt.Printf("rep %d: load step (%d/s uncached search): no new node in service within %s; nodes before: %v\n",
			rep, p.loadRate, p.loadFor+15*time.Second, before)
	}
	fmt.Printf("rep %d: load generator (scalepress load, client namespace):\n%s\n", rep, r.stepLoad)
	if out, err := cli("events"); err == nil {
		fmt.Printf("rep %d: scale events:\n%s", rep, grepLines(out, "scale"))
	}
}

// propagation is step 5: upload propagation, scalepress then (unless
// ONLY=propagation) the lsyncd peer.
func propagation(t *testing.T, n *hosts.Net, bin, prop string, p params, rep int, r *repResult, base string, three map[string]string, sample func(string)) {
	// 3. Upload propagation: a node on h2 -> a node on h3 (through the
	// files role on h1 and the bucket on h4), then lsyncd on h2 pushing to
	// an rsync daemon on h3, over the same bridge, while the site serves.
	byHost := map[string]string{}
	for id, h := range three {
		if _, ok := byHost[h]; !ok || id < byHost[h] {
			byHost[h] = id
		}
	}
	// The writer on one client, the reader on another (h2 and h3 when the
	// spread put a node on each, as it does).
	hs := slices.Sorted(mapKeys(byHost))
	if len(hs) < 2 {
		t.Fatalf("want nodes on two hosts: %v", three)
	}
	wHost, rHost := hs[0], hs[1]
	writer, reader := byHost[wHost], byHost[rHost]
	r.writerTo = fmt.Sprintf("%s on %s -> %s on %s", writer, wHost, reader, rHost)
	docroot := func(host, id string) string {
		return statedir.Layout{Dir: filepath.Join(base, host)}.Docroot(id)
	}
	www, err := user.Lookup("www-data")
	if err != nil {
		t.Fatal(err)
	}
	// propagate runs the burst (N every EVERY, then BIG) and then the
	// sparse run (SPARSE_N every SPARSE_EVERY), written as www-data.
	propagate := func(src, dst string) (out [2]string) {
		runs := [2][]string{
			{"-n", strconv.Itoa(p.n), "-every", p.every.String(), "-big", strconv.Itoa(p.bigMB)},
			{"-n", strconv.Itoa(p.sparseN), "-every", p.sparseEvery.String(), "-big", "0"},
		}
		for i, run := range runs {
			if i == 1 && p.sparseN == 0 {
				break
			}
			if i == 1 {
				// A pause the agents' burst lines (pushstats.go,
				// applystats.go: 100 ms without a change) end the burst in.
				time.Sleep(300 * time.Millisecond)
			}
			args := append([]string{"-src", src, "-dst", dst, "-timeout", "180s", "-uid", www.Uid}, run...)
			b, err := exec.Command(prop, args...).CombinedOutput()
			if err != nil {
				t.Errorf("propagation %s -> %s: %v\n%s", src, dst, err, b)
			}
			out[i] = strings.TrimSpace(string(b))
		}
		return out
	}
	r.ours = propagate(filepath.Join(docroot(wHost, writer), "wp-content", "uploads"), filepath.Join(docroot(rHost, reader), "wp-content", "uploads"))
	sample("after scalepress propagation")
	fmt.Printf("rep %d: scalepress, %s (files role h1, bucket h4):\n%s\n", rep, r.writerTo, strings.Join(r.ours[:], "\n"))
	// Where the reader's applier spent a backlog's time, if it had one
	// (internal/filesync/applystats.go), where each put of a burst spent
	// its time on the reader, and where the writer's pusher spent a
	// burst's (pushstats.go; builds before them log neither).
	time.Sleep(300 * time.Millisecond) // the sparse run's burst lines are logged
	for _, side := range []struct{ host, line string }{{rHost, "applied a backlog"}, {rHost, "applied a burst"}, {wHost, "pushed a burst"}} {
		logs, _ := filepath.Glob(filepath.Join(base, side.host, "*", "*", "*filesync*.log"))
		more, _ := filepath.Glob(filepath.Join(base, side.host, "*", "*filesync*.log"))
		for _, l := range append(logs, more...) {
			if b, err := os.ReadFile(l); err == nil {
				if lines := grepLines(string(b), side.line); lines != "" {
					fmt.Printf("rep %d: %s:\n%s", rep, l, lines)
				}
			}
		}
	}
	if p.propOnly {
		return
	}

	h2, h3 := n.Host(t, wHost), n.Host(t, rHost) // the same two hosts
	peer := filepath.Join(base, "peer")
	a, b := filepath.Join(peer, "a"), filepath.Join(peer, "b")
	for _, d := range []string{a, b} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	rsyncd := filepath.Join(peer, "rsyncd.conf")
	if err := os.WriteFile(rsyncd, []byte(fmt.Sprintf("use chroot = no\npid file = %s/rsyncd.pid\n[bench]\npath = %s\nread only = no\nuid = root\ngid = root\n", peer, b)), 0o644); err != nil {
		t.Fatal(err)
	}
	// The rsync daemon on the reader's host. It once refused connections
	// for 20 s in a run (its log went with the run's directory): it is
	// started up to three times, and its log is shown when it fails.
	rsyncLog := filepath.Join(peer, "rsyncd.log")
	rsyncUp := func(proc *hosts.Proc) error {
		var err error
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			select {
			case <-proc.Done():
				return fmt.Errorf("rsync daemon exited: %v", proc.Err())
			default:
			}
			dctx, dcancel := context.WithTimeout(context.Background(), time.Second)
			var c net.Conn
			c, err = h2.DialContext(dctx, "tcp", h3.Addr.String()+":873")
			dcancel()
			if err == nil {
				c.Close()
				return nil
			}
		}
		return err
	}
	for try := 1; ; try++ {
		proc := h3.Start(t, "rsync", "--daemon", "--no-detach", "--config="+rsyncd, "--address="+h3.Addr.String(), "--port=873", "--log-file="+rsyncLog)
		err := rsyncUp(proc)
		if err == nil {
			break
		}
		fmt.Printf("rep %d: rsync daemon on %s, try %d: %v; its log:\n%s\n", rep, h3.Name, try, err, tailFile(rsyncLog, 1500))
		proc.Stop()
		if try == 3 {
			t.Fatalf("rsync daemon on %s: %v", h3.Name, err)
		}
	}
	lsync := func(delay string) [2]string {
		conf := filepath.Join(peer, "lsyncd.lua")
		logf := filepath.Join(peer, "lsyncd-"+delay+".log")
		d := ""
		if delay != "default" {
			d = ", delay = " + delay
		}
		lua := fmt.Sprintf("settings { nodaemon = true, logfile = %q, statusFile = %q }\nsync { default.rsync, source = %q, target = %q%s }\n",
			logf, filepath.Join(peer, "lsyncd.status"), a, h3.Addr.String()+"::bench/", d)
		if err := os.WriteFile(conf, []byte(lua), 0o644); err != nil {
			t.Fatal(err)
		}
		proc := h2.Start(t, "lsyncd", conf)
		defer proc.Stop()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if b, _ := os.ReadFile(logf); bytes.Contains(b, []byte("finished")) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("lsyncd (delay %s) never finished its start-up sync: %s", delay, tailFile(logf, 1000))
			}
		}
		return propagate(a, b)
	}
	r.lsync0 = lsync("0")
	fmt.Printf("rep %d: lsyncd 0 s delay, %s -> rsync daemon on %s:\n%s\n", rep, wHost, rHost, strings.Join(r.lsync0[:], "\n"))
	r.lsyncDef = lsync("default")
	sample("after lsyncd")
	fmt.Printf("rep %d: lsyncd default delay, %s -> rsync daemon on %s:\n%s\n", rep, wHost, rHost, strings.Join(r.lsyncDef[:], "\n"))
}

var p99re = regexp.MustCompile(`p50 (\S+) p90 \S+ p99 (\S+) max (\S+); missing (\d+)`)
var bigre = regexp.MustCompile(`big file \d+ MiB: (\S+)`)

// short is "p50 / p99 / max, big, missing" of a propagation output.
func short(out string) string {
	m := p99re.FindStringSubmatch(out)
	if m == nil {
		return "(no result)"
	}
	s := fmt.Sprintf("p50 %s, p99 %s, max %s", m[1], m[2], m[3])
	if b := bigre.FindStringSubmatch(out); b != nil {
		s += ", big " + b[1]
	}
	return s + ", missing " + m[4]
}

func printSummary(p params, rs []repResult) {
	fmt.Printf("\n== summary (%d reps; N=%d every %s, big %d MiB; load step %d/s for %s)\n", len(rs), p.n, p.every, p.bigMB, p.loadRate, p.loadFor)
	for i, r := range rs {
		step := "none"
		if r.step > 0 {
			step = r.step.Round(time.Millisecond).String() + " on " + r.stepHost
		}
		fmt.Printf("run %d (%s): up to first 200 %s | step to first new node %s | scale --min 3 %s\n", i+1, r.build, r.up.Round(time.Millisecond), step, r.threeHost.Round(time.Millisecond))
		for k, mode := range []string{fmt.Sprintf("burst %d every %s", p.n, p.every), fmt.Sprintf("sparse %d every %s", p.sparseN, p.sparseEvery)} {
			fmt.Printf("run %d: propagation %s, %s: scalepress %s | lsyncd delay 0: %s | lsyncd default: %s\n",
				i+1, mode, r.writerTo, short(r.ours[k]), short(r.lsync0[k]), short(r.lsyncDef[k]))
		}
	}
	fmt.Printf("load average at end %s\n", loadAvg())
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func grepLines(s, word string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		if strings.Contains(line, word) {
			b.WriteString(line)
		}
	}
	return b.String()
}

func tailFile(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// memUse is what a role's processes in one host use.
type memUse struct {
	procs    int
	rss, pss int64 // kB
}

// memoryTable sums the RSS (and PSS) of every process in each host's
// network namespace, by role, and formats it.
func memoryTable(t *testing.T, n *hosts.Net) string {
	t.Helper()
	byIno := map[uint64]string{}
	for _, h := range n.Hosts {
		var st syscall.Stat_t
		if err := syscall.Stat("/run/netns/"+h.NS, &st); err != nil {
			t.Fatalf("memory: %v", err)
		}
		byIno[st.Ino] = h.Name
	}
	use := map[string]map[string]*memUse{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		link, err := os.Readlink(filepath.Join(d, "ns", "net"))
		if err != nil {
			continue
		}
		ino, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(link, "net:["), "]"), 10, 64)
		if err != nil {
			continue
		}
		host, ok := byIno[ino]
		if !ok {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil || len(cmd) == 0 {
			continue // a kernel thread or gone
		}
		rss := kB(filepath.Join(d, "status"), "VmRSS:")
		pss := kB(filepath.Join(d, "smaps_rollup"), "Pss:")
		role := roleOf(strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00"))
		if use[host] == nil {
			use[host] = map[string]*memUse{}
		}
		u := use[host][role]
		if u == nil {
			u = &memUse{}
			use[host][role] = u
		}
		u.procs++
		u.rss += rss
		u.pss += pss
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-5s %-34s %5s %9s %9s\n", "host", "role (process)", "procs", "RSS MiB", "PSS MiB")
	for _, h := range n.Hosts {
		var tot memUse
		for _, role := range slices.Sorted(mapKeys(use[h.Name])) {
			u := use[h.Name][role]
			fmt.Fprintf(&b, "%-5s %-34s %5d %9.1f %9.1f\n", h.Name, role, u.procs, float64(u.rss)/1024, float64(u.pss)/1024)
			tot.procs += u.procs
			tot.rss += u.rss
			tot.pss += u.pss
		}
		fmt.Fprintf(&b, "%-5s %-34s %5d %9.1f %9.1f\n", h.Name, "TOTAL", tot.procs, float64(tot.rss)/1024, float64(tot.pss)/1024)
	}
	return b.String()
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// roleOf names a process by its command line: the scalepress subcommand
// (up is the controller), Nomad's (agent, logmon, executor), or the
// program's name (php-fpm master and pool workers alike).
func roleOf(args []string) string {
	first := strings.Fields(args[0])
	if len(first) == 0 {
		return "?"
	}
	name := filepath.Base(first[0])
	switch {
	case strings.HasPrefix(args[0], "php-fpm"):
		return "php-fpm"
	case name == "scalepress" && len(args) > 1:
		if args[1] == "up" {
			return "scalepress up (controller)"
		}
		return "scalepress " + args[1]
	case name == "nomad" && len(args) > 1:
		return "nomad " + args[1]
	}
	return strings.TrimSuffix(name, ":")
}

// kB reads a "Key:   123 kB" line of a /proc file.
func kB(path, key string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == key {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	return 0
}
