package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scalepress/scalepress/internal/api"
)

// DNS test timings: the DNS server probes each edge every dnsInterval,
// gives up on one after dnsFall failures of dnsTimeout at most.
const (
	dnsInterval = 500 * time.Millisecond
	dnsTimeout  = 400 * time.Millisecond
	dnsFall     = 2
	dnsRise     = 2
)

// dnsStackConfig is stackConfig with two edges, eu and us, in front of the
// same node group, and the geo DNS server with MaxMind's test database.
func dnsStackConfig(t *testing.T, b int) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	mmdb := filepath.Join(filepath.Dir(file), "..", "..", "internal", "geodns", "testdata", "GeoLite2-Country-Test.mmdb")
	if _, err := os.Stat(mmdb); err != nil {
		t.Fatal(err)
	}
	cfg := stackConfig(b, 1)
	oneEdge := fmt.Sprintf("edges:\n  - id: edge-1\n    region: default\n    addr: 127.%d.0.1:8080\n", b)
	if !strings.Contains(cfg, oneEdge) {
		t.Fatalf("stackConfig changed; update dnsStackConfig:\n%s", cfg)
	}
	cfg = strings.Replace(cfg, oneEdge, fmt.Sprintf(`edges:
  - id: edge-eu
    region: eu
    addr: 127.%[1]d.0.11:8080
  - id: edge-us
    region: us
    addr: 127.%[1]d.0.12:8080
`, b), 1)
	cfg = strings.Replace(cfg, "site:\n", "site:\n  url: http://www.example.test:8080\n", 1)
	return cfg + fmt.Sprintf(`dns:
  enabled: true
  addr: 127.%[1]d.0.53:5353
  zone: example.test.
  geoip: %[2]s
  default_region: eu
  records:
    - {name: mail, type: A, value: 192.0.2.25}
  health: {interval: %[3]s, timeout: %[4]s, rise: %[5]d, fall: %[6]d}
  regions:
    - name: eu
      countries: [GB, SE]
      fallback: [us]
    - name: us
      countries: [US]
      fallback: [eu]
`, b, mmdb, dnsInterval, dnsTimeout, dnsRise, dnsFall)
}

// Client subnets in MaxMind's test database (internal/geodns/testdata/README.md).
const (
	subnetGB      = "81.2.69.142/32"
	subnetUS      = "216.160.83.56/32"
	subnetUnknown = "1.1.1.1/32"
)

// TestDNS is a user of the two-region example: each client is sent to its
// region's edge, to the other region while that edge is frozen, and back;
// junk does not stop the server; TCP and UDP agree.
func TestDNS(t *testing.T) {
	for _, tool := range []string{"dig", "socat"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: run scripts/install-deps.sh (bind9-dnsutils, socat)", tool)
		}
	}
	const block = 49
	s := newStack(t, block, 1)
	if err := os.WriteFile(s.config, []byte(dnsStackConfig(t, block)), 0o644); err != nil {
		t.Fatal(err)
	}
	took := s.up(t)
	t.Logf("up --detach with two edges and dns took %s", took.Round(time.Millisecond))

	st := s.status(t)
	if st.DNS == nil {
		t.Fatalf("status has no dns: %+v", st)
	}
	d := digger{server: fmt.Sprintf("127.%d.0.53", block), port: "5353"}
	eu, us := fmt.Sprintf("127.%d.0.11", block), fmt.Sprintf("127.%d.0.12", block)
	var euPID int

	t.Run("status shows the DNS server and the edges' regions", func(t *testing.T) {
		if st.DNS.Addr != d.server+":5353" || st.DNS.Zone != "example.test." || st.DNS.State != "up" || !alive(st.DNS.PID) {
			t.Errorf("dns %+v", st.DNS)
		}
		if u := userName(procUID(t, st.DNS.PID)); u != "scalepress" {
			t.Errorf("dns runs as %s, want scalepress", u)
		}
		var regions []string
		for _, r := range st.DNS.Regions {
			regions = append(regions, fmt.Sprintf("%s%v", r.Name, r.Edges))
		}
		if want := []string{"eu[edge-eu]", "us[edge-us]"}; !slices.Equal(regions, want) {
			t.Errorf("dns regions %v, want %v", regions, want)
		}
		got := map[string]string{}
		for _, e := range st.Edges {
			got[e.ID] = e.Region + " " + e.Addr
			if e.PID == 0 || !e.Healthy {
				t.Errorf("edge %+v", e)
			}
			if e.ID == "edge-eu" {
				euPID = e.PID
			}
		}
		want := map[string]string{"edge-eu": "eu " + eu + ":8080", "edge-us": "us " + us + ":8080"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("edges %v, want %v", got, want)
		}
	})

	// Before any other geo query: the dashboard counts answers per region,
	// us gets the queries below and eu none.
	t.Run("the dashboard shows answers per region", func(t *testing.T) {
		const n = 5
		// dnsAnswers polls the dashboard until ok(us, eu) holds.
		dnsAnswers := func(what string, ok func(us, eu api.DNSAnswers) bool) []api.DNSAnswers {
			t.Helper()
			deadline := time.Now().Add(15 * time.Second)
			for {
				var doc api.Console
				getJSON(t, s.api+api.APIPathConsole, &doc)
				got := map[string]api.DNSAnswers{}
				for _, a := range doc.DNS {
					got[a.Region] = a
				}
				if len(doc.DNS) == 2 && ok(got["us"], got["eu"]) {
					return doc.DNS
				}
				if time.Now().After(deadline) {
					t.Fatalf("GET %s dns: %+v, want %s", api.APIPathConsole, doc.DNS, what)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
		// The console reads the dns role every second (console.Interval);
		// once it has, both regions show no answers.
		dnsAnswers("both regions read, with no answers", func(us, eu api.DNSAnswers) bool {
			return us.Error == "" && eu.Error == "" && us.Answers == 0 && eu.Answers == 0
		})
		for range n {
			if r := d.query(t, subnetUS, "www.example.test", "A"); !slices.Equal(r.addrs, []string{us}) {
				t.Fatalf("www A for US: %v, want [%s]\n%s", r.addrs, us, r.out)
			}
		}
		rate := 0.0 // the first read after the queries has one
		got := dnsAnswers(fmt.Sprintf("us with %d answers, eu with none", n), func(u, e api.DNSAnswers) bool {
			rate = max(rate, u.Rate)
			if e.Rate != 0 {
				t.Errorf("eu rate %v without a query", e.Rate)
			}
			return u.Error == "" && e.Error == "" && u.Answers == n && e.Answers == 0
		})
		t.Logf("console dns: %+v, us rate seen %.1f/s", got, rate)
		if rate <= 0 {
			t.Errorf("us rate: highest seen %.1f/s, want above 0 on the first read after the queries", rate)
		}
		// The text view (`top --once`) shows the same.
		r := s.cli(t, "top", "--once")
		if r.code != 0 || !regexp.MustCompile(`(?m)^  us .* answers/s, 5 total$`).MatchString(r.stdout) || !regexp.MustCompile(`(?m)^  eu .* 0\.0 answers/s, 0 total$`).MatchString(r.stdout) {
			t.Errorf("top --once: exit %d, lacks the answers per region:\n%s%s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("each client gets its region's edge", func(t *testing.T) {
		tests := []struct {
			name, subnet, want string
		}{
			{name: "GB", subnet: subnetGB, want: eu},
			{name: "SE", subnet: "89.160.20.130/32", want: eu},
			{name: "US", subnet: subnetUS, want: us},
			{name: "unknown gets the default region", subnet: subnetUnknown, want: eu},
			{name: "no subnet: the resolver's address, unknown", want: eu},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := d.query(t, tt.subnet, "www.example.test", "A")
				if r.status != "NOERROR" || !r.aa || !slices.Equal(r.addrs, []string{tt.want}) {
					t.Errorf("www A for %q: %s aa=%v %v, want NOERROR aa [%s]\n%s", tt.subnet, r.status, r.aa, r.addrs, tt.want, r.out)
				}
			})
		}
		// The apex is a geo name too; the ECS answer says which network it holds for.
		r := d.query(t, subnetGB, "example.test", "A")
		if !slices.Equal(r.addrs, []string{eu}) || !strings.Contains(r.out, "CLIENT-SUBNET: 81.2.69.142/32/31") {
			t.Errorf("apex A for GB: %v, want [%s] with ECS scope /31 (the GeoIP network)\n%s", r.addrs, eu, r.out)
		}
	})

	t.Run("the answer is the edge that serves the site", func(t *testing.T) {
		ip := d.query(t, subnetUS, "www.example.test", "A").addrs
		if len(ip) != 1 {
			t.Fatalf("www A: %v", ip)
		}
		req, _ := http.NewRequest("GET", "http://"+ip[0]+":8080/", nil)
		req.Host = "www.example.test:8080"
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Cache") == "" {
			t.Errorf("GET / via %s: %d X-Cache %q", ip[0], resp.StatusCode, resp.Header.Get("X-Cache"))
		}
	})

	t.Run("a frozen edge's clients go to the fallback region, and come back", func(t *testing.T) {
		if euPID == 0 {
			t.Fatal("no pid for edge-eu")
		}
		threshold := dnsInterval*dnsFall + dnsTimeout
		if err := kill(euPID, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		thawed := false
		thaw := func() {
			if !thawed {
				thawed = true
				kill(euPID, syscall.SIGCONT)
			}
		}
		t.Cleanup(thaw) // whatever happens, down must be able to stop it

		// Clients learn of the failure from the DNS server's probes; allow
		// one more interval and some scheduling slack on a loaded machine.
		limit := threshold + dnsInterval + 2*time.Second
		after, ok := d.waitFor(t, subnetGB, us, 10*time.Second)
		if !ok {
			t.Fatalf("GB still not answered with the us edge %s after %s", us, after)
		}
		t.Logf("GB answered with us %s after SIGSTOP (health threshold %s)", after.Round(time.Millisecond), threshold)
		if after > limit {
			t.Errorf("failover took %s, more than the health threshold %s plus slack (%s)", after, threshold, limit)
		}
		if r := d.query(t, subnetUS, "www.example.test", "A"); !slices.Equal(r.addrs, []string{us}) {
			t.Errorf("US during failover: %v", r.addrs)
		}
		if r := d.query(t, subnetUnknown, "www.example.test", "A"); !slices.Equal(r.addrs, []string{us}) {
			t.Errorf("unknown (default eu) during failover: %v, want the fallback %s", r.addrs, us)
		}

		thaw()
		back, ok := d.waitFor(t, subnetGB, eu, 10*time.Second)
		if !ok {
			t.Fatalf("GB not back on the eu edge %s %s after SIGCONT", eu, back)
		}
		t.Logf("GB back on eu %s after SIGCONT (rise %d × interval %s)", back.Round(time.Millisecond), dnsRise, dnsInterval)
	})

	t.Run("garbage and truncated packets do not stop the server", func(t *testing.T) {
		valid := []byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
			3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 4, 't', 'e', 's', 't', 0, 0, 1, 0, 1}
		packets := [][]byte{
			valid[:len(valid)-3],        // truncated in the question
			valid[:12],                  // a header announcing a question that is not there
			valid[:5],                   // shorter than a header
			{0x12, 0x34, 0x81, 0x80, 0}, // a short "response"
		}
		for range 20 {
			junk := make([]byte, 1+len(packets)*37%512)
			rand.Read(junk)
			packets = append(packets, junk)
		}
		for _, p := range packets {
			d.send(t, "UDP", p)
		}
		// Over TCP: junk, a length prefix promising more than comes, a cut message.
		for _, p := range [][]byte{packets[len(packets)-1], {0xff, 0xff, 1, 2, 3}, append([]byte{0, byte(len(valid))}, valid[:20]...)} {
			d.send(t, "TCP", p)
		}
		r := d.query(t, subnetGB, "www.example.test", "A")
		if r.status != "NOERROR" || !slices.Equal(r.addrs, []string{eu}) {
			t.Errorf("after junk: %s %v\n%s", r.status, r.addrs, r.out)
		}
		if now := s.status(t).DNS; now.PID != st.DNS.PID || now.State != "up" {
			t.Errorf("dns process changed: %+v, was pid %d", now, st.DNS.PID)
		}
	})

	t.Run("names outside the zone are refused", func(t *testing.T) {
		for _, name := range []string{"www.example.org", "example", "."} {
			if r := d.query(t, "", name, "A"); r.status != "REFUSED" || len(r.answer) != 0 {
				t.Errorf("%s A: %s %v", name, r.status, r.answer)
			}
		}
		if r := d.query(t, "", "nope.example.test", "A"); r.status != "NXDOMAIN" || !r.aa {
			t.Errorf("nope.example.test A: %s aa=%v", r.status, r.aa)
		}
	})

	t.Run("TCP answers equal UDP answers", func(t *testing.T) {
		for _, q := range [][3]string{
			{subnetGB, "www.example.test", "A"},
			{subnetUS, "example.test", "A"},
			{subnetUnknown, "www.example.test", "AAAA"},
			{"", "example.test", "SOA"},
			{"", "example.test", "NS"},
			{"", "mail.example.test", "A"},
			{"", "example.test", "ANY"},
			{"", "nope.example.test", "A"},
			{"", "www.example.org", "A"},
		} {
			u := d.query(t, q[0], q[1], q[2])
			tc := d.query(t, q[0], q[1], q[2], "+tcp")
			if u.status != tc.status || !slices.Equal(u.answer, tc.answer) || !slices.Equal(u.authority, tc.authority) {
				t.Errorf("%v: UDP %s %q %q, TCP %s %q %q", q, u.status, u.answer, u.authority, tc.status, tc.answer, tc.authority)
			}
		}
	})
}

// digger runs dig against one DNS server.
type digger struct{ server, port string }

type digResult struct {
	out               string
	status            string
	aa                bool
	answer, authority []string // records, whitespace normalised
	addrs             []string // A and AAAA values of the answer
}

var digStatusRE = regexp.MustCompile(`status: ([A-Z]+),`)
var digFlagsRE = regexp.MustCompile(`;; flags: ([a-z ]+);`)

// query asks for name and type; subnet, if set, is sent as EDNS Client Subnet.
func (d digger) query(t *testing.T, subnet, name, qtype string, extra ...string) digResult {
	t.Helper()
	args := []string{"@" + d.server, "-p", d.port, "+time=2", "+tries=2", "+norecurse"}
	if subnet != "" {
		args = append(args, "+subnet="+subnet)
	}
	args = append(append(args, extra...), name, qtype)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "dig", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dig %v: %v\n%s", args, err, out)
	}
	r := digResult{out: string(out)}
	if m := digStatusRE.FindStringSubmatch(r.out); m != nil {
		r.status = m[1]
	}
	if m := digFlagsRE.FindStringSubmatch(r.out); m != nil {
		r.aa = slices.Contains(strings.Fields(m[1]), "aa")
	}
	var section *[]string
	for _, line := range strings.Split(r.out, "\n") {
		switch {
		case strings.HasPrefix(line, ";; ANSWER SECTION:"):
			section = &r.answer
		case strings.HasPrefix(line, ";; AUTHORITY SECTION:"):
			section = &r.authority
		case strings.TrimSpace(line) == "" || strings.HasPrefix(line, ";"):
			section = nil
		case section != nil:
			f := strings.Fields(line)
			*section = append(*section, strings.Join(f, " "))
			if section == &r.answer && len(f) == 5 && (f[3] == "A" || f[3] == "AAAA") {
				r.addrs = append(r.addrs, f[4])
			}
		}
	}
	return r
}

// waitFor polls www A for subnet until the answer is [want], for at most
// limit; it returns the time taken.
func (d digger) waitFor(t *testing.T, subnet, want string, limit time.Duration) (time.Duration, bool) {
	t.Helper()
	t0 := time.Now()
	for time.Since(t0) < limit {
		if r := d.query(t, subnet, "www.example.test", "A"); slices.Equal(r.addrs, []string{want}) {
			return time.Since(t0), true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(t0), false
}

// send writes p to the server with socat over UDP or TCP and does not wait
// for an answer.
func (d digger) send(t *testing.T, proto string, p []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "socat", "-u", "-t", "0.2", "-", proto+":"+net.JoinHostPort(d.server, d.port))
	cmd.Stdin = bytes.NewReader(p)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("socat %s (%d bytes): %v\n%s", proto, len(p), err, out)
	}
}
