package multihost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	oexec "os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/test/hosts"
)

// Bounds of the take-over (issue 12, ADR 27) TestServingWithoutController
// ends with.
const (
	// takeoverWithin: from `up` on the standby host to every role adopted
	// and in its status.
	takeoverWithin = 2 * time.Minute
	// scaleWithin: from `scale` to the nodes it asks for in service.
	scaleWithin = 2 * time.Minute
	// staleStandsDown: from the old controller's link healing to its exit.
	staleStandsDown = 90 * time.Second
)

// tally counts a load's answers.
type tally struct {
	mu       sync.Mutex
	ok, fail int
	fails    []string
}

// controllerVIP is the controller's address (api.addr), 10.77.0.200 on h's
// eth0: the edges, the nodes' routers and the CLI reach the controller
// there, so it moves with the controller as a floating address does.
func controllerVIP(t *testing.T, h *hosts.Host) string {
	t.Helper()
	a := h.Addr.As4()
	a[3] = 200
	vip := netip.AddrFrom4(a).String()
	ipIn(t, h, "addr", "add", vip+"/32", "dev", "eth0")
	return vip
}

// ipIn runs `ip -n h args` (h's namespace only).
func ipIn(t *testing.T, h *hosts.Host, args ...string) {
	t.Helper()
	if out, err := oexec.Command("ip", append([]string{"-n", h.NS}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("ip -n %s %s: %v: %s", h.NS, strings.Join(args, " "), err, out)
	}
}

// moveVIP gives h the controller's address and announces it, as a
// floating address's manager would: eth0 goes down and up with arp_notify
// on, which sends a gratuitous ARP for each of its addresses.
func moveVIP(t *testing.T, h *hosts.Host, vip string) {
	t.Helper()
	ipIn(t, h, "addr", "add", vip+"/32", "dev", "eth0")
	if out, err := oexec.Command("ip", "netns", "exec", h.NS, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/conf/eth0/arp_notify").CombinedOutput(); err != nil {
		t.Fatalf("arp_notify in %s: %v: %s", h.Name, err, out)
	}
	ipIn(t, h, "link", "set", "eth0", "down")
	ipIn(t, h, "link", "set", "eth0", "up")
}

// takeover is the standby controller's host and what the test knows of
// the site it takes over.
type takeover struct {
	t         *testing.T
	n         *hosts.Net
	nm        *hosts.Nomad
	bin       string
	host, old *hosts.Host // the standby host, the old controller's
	vip       string
	base      string // the Nomad clients' scalepress_dir parent
	dir       string // the state directory's path (the old controller's)
	etc       string // the config's directory
	cfgPath   string
	job       string
	ctl       *api.Client // the control API at the vip, from the client namespace
	oldUp     *hosts.Proc
	db        string // the DB host's directory: its mariadbd names it

	empty, etcCopy string // the standby host's own directories, mounted at dir and etc
}

// command runs bin args on the standby host as on a machine of its own: an
// empty directory is mounted at the state directory's path, and the
// config's directory holds only what an operator copied (the config and the
// bucket's key files it names).
func (k *takeover) command(ctx context.Context, args ...string) *oexec.Cmd {
	script := `mount --bind "$1" "$2" && mount --bind "$3" "$4" && shift 4 && exec "$@"`
	return k.host.Command(ctx, "unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", script, "sh",
		k.empty, k.dir, k.etcCopy, k.etc, k.bin}, args...)...)
}

// cli runs a scalepress command on the standby host.
func (k *takeover) cli(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if args[0] != "down" { // down reads no config
		args = append(args, "--config", k.cfgPath)
	}
	out, err := k.command(ctx, append(args, "--dir", k.dir)...).CombinedOutput()
	return string(out), err
}

// allocs is every running allocation of the site's jobs, "JOB GROUP ID on
// NODE", sorted.
func (k *takeover) allocs() []string {
	var all []struct{ ID, JobID, TaskGroup, NodeName, ClientStatus, DesiredStatus string }
	if err := k.nm.Get(context.Background(), "/v1/allocations", &all); err != nil {
		k.t.Fatal(err)
	}
	var out []string
	for _, a := range all {
		if (a.JobID == k.job || strings.HasPrefix(a.JobID, k.job+"-")) && a.ClientStatus == "running" && a.DesiredStatus == "run" {
			out = append(out, fmt.Sprintf("%s %s %s on %s", a.JobID, a.TaskGroup, a.ID, a.NodeName))
		}
	}
	slices.Sort(out)
	return out
}

// procs is the pid and start time of the site's processes a take-over must
// not restart: the DB member and the edges (the nodes' php-fpm masters are
// nodeMasters).
func (k *takeover) procs() map[string]fpmMaster {
	out := map[string]fpmMaster{}
	for _, l := range procsUnder(k.db) {
		pid, cmd, _ := strings.Cut(l, " ")
		if f := strings.Fields(cmd); len(f) > 0 && strings.Contains(f[0], "mariadbd") {
			var p int
			fmt.Sscan(pid, &p)
			out["mariadbd"] = fpmMaster{PID: p, Start: procStart(p)}
		}
	}
	for _, e := range []string{"e1", "e2"} {
		h := k.n.Host(k.t, e)
		if p := edgePID(k.t, h.Addr.String()+":8080"); p != 0 {
			out["edge on "+e] = fpmMaster{PID: p, Start: procStart(p)}
		}
	}
	return out
}

// routerChanges is every "members changed" line the routers on the node
// hosts (Nomad task dbrouter) logged since since: the member list they
// took from the controller at the vip.
func (k *takeover) routerChanges(since time.Time) []string {
	var out []string
	for _, c := range k.nm.Clients {
		dataDir := filepath.Dir(c.Cmd.Args[len(c.Cmd.Args)-1])
		logs, _ := filepath.Glob(filepath.Join(dataDir, "data-*", "alloc", "*", "alloc", "logs", "dbrouter.stderr.*"))
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			for line := range strings.Lines(string(b)) {
				ts, _, _ := strings.Cut(strings.TrimPrefix(line, "time="), " ")
				when, err := time.Parse(time.RFC3339Nano, ts)
				if err != nil || when.Before(since) || !strings.Contains(line, `msg="members changed"`) {
					continue
				}
				host, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(l, dataDir+"/"), "data-"), "/")
				out = append(out, host+": "+strings.TrimSpace(line))
			}
		}
		break // every client's data dir is in the same directory
	}
	slices.Sort(out)
	return out
}

// memberWatch is what the controller's address answered a router's poll
// (GET /v1/db/members) while watchMembers ran.
type memberWatch struct {
	answers map[string]int // "no answer", "503", "listed", "empty", ...
	empty   []string       // when it answered an empty list, since the watch began
}

// watchMembers asks the controller's address for the DB member list every
// 20 ms, as the routers beside the nodes do every second, until the
// function it returns is called, which returns what it saw.
func (k *takeover) watchMembers() func() memberWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := memberWatch{answers: map[string]int{}}
	done := make(chan struct{})
	t0 := time.Now()
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			var m api.DBMembers
			rctx, rcancel := context.WithTimeout(ctx, time.Second)
			err := k.ctl.Get(rctx, api.APIPathDBMembers, &m)
			rcancel()
			var he *api.HTTPError
			switch {
			case ctx.Err() != nil:
				return
			case errors.As(err, &he):
				w.answers[strconv.Itoa(he.Code)]++
			case err != nil:
				w.answers["no answer"]++
			case len(m.Members) == 0:
				w.answers["empty"]++
				w.empty = append(w.empty, time.Since(t0).Round(time.Millisecond).String())
			default:
				w.answers["listed"]++
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	k.t.Cleanup(func() { cancel(); <-done }) // a test that ends before the call
	return func() memberWatch {
		cancel()
		<-done
		return w
	}
}

// status asks the controller at the vip, nil when it does not answer.
func (k *takeover) status() *api.Status {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	st, err := k.ctl.Status(ctx)
	if err != nil {
		return nil
	}
	return st
}

func inService(st *api.Status) int {
	n := 0
	for _, nd := range st.Nodes {
		if nd.State == api.NodeInService {
			n++
		}
	}
	return n
}

// run is the take-over, under uncached load (startLoad starts it, the
// function it returns stops it and returns its tally): the old controller's
// host stays cut; a controller on the standby host, from an empty
// directory at the same path and a copy of the config, adopts the site:
// the same allocations, php-fpm masters, DB member and edges; its status
// shows every role; it scales. Then the old controller's link heals
// (healed is told): it stands down, saying why, and changes nothing; the
// new one still scales.
func (k *takeover) run(startLoad func() func() *tally, healed func()) {
	t := k.t
	tStart := time.Now()
	defer func() { t.Logf("take-over and fence: %s in all", time.Since(tStart).Round(100*time.Millisecond)) }()
	// Settle: the edge host cut just before may have had its allocation
	// replaced at the heal.
	var before []string
	eventually(t, time.Minute, "the site's allocations unchanged for 3 s", func() bool {
		a := k.allocs()
		time.Sleep(3 * time.Second)
		before = k.allocs()
		return slices.Equal(a, before)
	})
	masters := nodeMasters(t, k.nm, k.job, k.base)
	procs := k.procs()
	if len(masters) != 2 || len(procs) != 3 {
		t.Fatalf("before the take-over: node masters %v, processes %v: want 2 nodes, the member and 2 edges", masters, procs)
	}
	for a, m := range masters {
		if m.PID == 0 {
			t.Fatalf("before the take-over: allocation %s runs no php-fpm master", a)
		}
	}

	// What an operator copies to the standby host: the config and the
	// files it names (here the bucket's key files). The state directory
	// is empty, at the same path.
	k.empty, k.etcCopy = filepath.Join(k.base, "c2-state"), filepath.Join(k.base, "c2-etc")
	for _, d := range []string{k.empty, k.etcCopy} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := oexec.Command("cp", "-a", k.etc+"/.", k.etcCopy).CombinedOutput(); err != nil {
		t.Fatalf("copy the config: %v: %s", err, out)
	}

	load := startLoad()
	tMove := time.Now()
	moveVIP(t, k.host, k.vip)
	stopWatch := k.watchMembers()
	up := k.host.StartCmd(t, k.command(context.Background(), "up", "--config", k.cfgPath, "--dir", k.dir))
	var st *api.Status
	eventually(t, takeoverWithin, "the controller on c2 ready: 2 nodes in service, 2 edges healthy, the member synced", func() bool {
		select {
		case <-up.Done():
			t.Fatalf("up on c2 exited: %v", up.Err())
		default:
		}
		st = k.status()
		if st == nil || !st.Ready || inService(st) != 2 || st.DB == nil || len(st.DB.Members) != 1 || st.DB.Members[0].State != api.DBSynced {
			return false
		}
		healthy := 0
		for _, e := range st.Edges {
			if e.Healthy {
				healthy++
			}
		}
		return healthy == 2
	})
	t.Logf("take-over: the controller on c2 ready %s after the address moved", time.Since(tMove).Round(time.Millisecond))
	// From its first answer the new controller never tells the routers
	// that no member serves: the member ran and was synced throughout
	// (issue 12: it said so before it had looked, for about 0.1 s).
	mw := stopWatch()
	t.Logf("take-over: the member list at the controller's address, polled every 20 ms from the move to ready: %v", mw.answers)
	if len(mw.empty) > 0 || mw.answers["listed"] == 0 {
		t.Errorf("take-over: the controller's address answered the routers' poll with an empty member list %d times (at %v after the move), listed %d times: want never empty",
			len(mw.empty), mw.empty, mw.answers["listed"])
	}

	// status --json from the new controller's host names every role where
	// it runs.
	out, err := k.cli("status", "--json")
	if err != nil {
		t.Fatalf("status --json on c2: %v: %s", err, out)
	}
	var js api.Status
	if err := json.Unmarshal([]byte(out), &js); err != nil {
		t.Fatalf("status --json on c2: %v: %.500s", err, out)
	}
	var roles []string
	for _, nd := range js.Nodes {
		roles = append(roles, fmt.Sprintf("%s %s", nd.ID, nd.State))
	}
	for _, e := range js.Edges {
		roles = append(roles, fmt.Sprintf("%s on %s healthy %v", e.ID, e.Host, e.Healthy))
	}
	if js.Files != nil {
		roles = append(roles, "files on "+js.Files.Host)
	}
	if js.Redis != nil {
		roles = append(roles, "redis on "+js.Redis.Host)
	}
	if js.DNS != nil {
		roles = append(roles, "dns on "+js.DNS.Host+" "+js.DNS.State)
	}
	if js.DB != nil {
		for _, m := range js.DB.Members {
			roles = append(roles, fmt.Sprintf("%s on %s %s", m.ID, m.Host, m.State))
		}
	}
	slices.Sort(roles)
	want := []string{"db-1 on d1 synced", "dns on r1 up", "edge-1 on e1 healthy true", "edge-2 on e2 healthy true", "files on r1",
		"node-1 in-service", "node-2 in-service", "redis on r1"}
	if diff := cmp.Diff(want, roles); diff != "" {
		t.Errorf("status --json from the controller on c2 (-want +got):\n%s", diff)
	}

	// Adopted, not relaunched.
	if diff := cmp.Diff(before, k.allocs()); diff != "" {
		t.Errorf("allocations after the take-over (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(masters, nodeMasters(t, k.nm, k.job, k.base)); diff != "" {
		t.Errorf("node php-fpm masters after the take-over (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(procs, k.procs()); diff != "" {
		t.Errorf("the member and the edges after the take-over (-before +after):\n%s", diff)
	}
	ev, _ := os.ReadFile(filepath.Join(k.empty, "events.log"))
	for _, w := range []string{"restored from Nomad", "adopted"} {
		if !strings.Contains(string(ev), w) {
			t.Errorf("c2's events.log says nothing %q:\n%s", w, tailFile(filepath.Join(k.empty, "events.log"), 3000))
		}
	}

	// It scales.
	tScale := time.Now()
	if out, err := k.cli("scale", "--min", "3", "--max", "3"); err != nil {
		t.Fatalf("scale --min 3 --max 3 on c2: %v: %s", err, out)
	}
	eventually(t, scaleWithin, "3 nodes in service after the new controller's scale", func() bool {
		st := k.status()
		return st != nil && inService(st) == 3 && len(nodeAllocs(t, k.nm, k.job)) == 3
	})
	t.Logf("take-over: scale to 3 from c2: in service after %s", time.Since(tScale).Round(time.Millisecond))
	grown := k.allocs()
	if added := slices.DeleteFunc(slices.Clone(grown), func(a string) bool { return slices.Contains(before, a) }); len(added) != 1 || len(grown) != len(before)+1 {
		t.Errorf("after scale 3: allocations %v, want %v and one node more", grown, before)
	}
	tl := load()
	// The member ran and was synced throughout: the routers beside the
	// nodes, which follow the member list at the controller's address,
	// must never have been told it is gone (issue 12: the new controller
	// answered an empty list before it had observed the member, and
	// every router that polled then refused all connections for a second).
	changes := k.routerChanges(tMove)
	t.Logf("take-over: the node hosts' routers changed their member list %d times: %q", len(changes), changes)
	for _, c := range changes {
		if strings.Contains(c, " to=[] ") {
			t.Errorf("through the take-over a router on a node host was told no member serves: %s", c)
		}
	}
	t.Logf("through the take-over (address moved, up on c2, scale to 3), through e2: %d answered, %d failed %q", tl.ok, tl.fail, tl.fails)
	if tl.fail > 0 || tl.ok == 0 {
		t.Errorf("through the take-over: %d answered, %d failed: %q", tl.ok, tl.fail, tl.fails)
	}

	// The old controller comes back: its host's link heals (without the
	// address, which moved). It sees the new owner of the site's home
	// variable and stands down, stopping nothing of what runs.
	load = startLoad()
	ipIn(t, k.old, "addr", "del", k.vip+"/32", "dev", "eth0")
	tHeal := time.Now()
	if err := k.n.Heal(k.old); err != nil {
		t.Fatal(err)
	}
	healed()
	select {
	case <-k.oldUp.Done():
		t.Logf("fence: the old controller exited %s after its link healed: %v", time.Since(tHeal).Round(time.Millisecond), k.oldUp.Err())
	case <-time.After(staleStandsDown):
		t.Fatalf("the old controller still runs %s after its link healed: it did not stand down", staleStandsDown)
	}
	if err := k.oldUp.Err(); err == nil || !strings.Contains(tailFile(k.oldUp.Log, 4000), "stood down") {
		t.Errorf("the old controller exited (%v) without saying it stood down:\n%s", err, tailFile(k.oldUp.Log, 2000))
	}
	if ev, _ := os.ReadFile(filepath.Join(k.dir, "events.log")); !strings.Contains(string(ev), "standing down") {
		t.Errorf("the old controller's events.log says nothing of standing down:\n%s", tailFile(filepath.Join(k.dir, "events.log"), 2000))
	}
	if diff := cmp.Diff(grown, k.allocs()); diff != "" {
		t.Errorf("allocations after the old controller came back (-before +after):\n%s", diff)
	}
	now := nodeMasters(t, k.nm, k.job, k.base)
	for a, m := range masters {
		if now[a] != m {
			t.Errorf("node %s: php-fpm master %+v after the old controller came back, was %+v", a, now[a], m)
		}
	}

	// The new controller still drives the site.
	tScale = time.Now()
	if out, err := k.cli("scale", "--min", "2", "--max", "2"); err != nil {
		t.Fatalf("scale --min 2 --max 2 on c2 after the fence: %v: %s", err, out)
	}
	eventually(t, scaleWithin, "2 nodes in service after the new controller's scale back", func() bool {
		st := k.status()
		return st != nil && inService(st) == 2 && len(nodeAllocs(t, k.nm, k.job)) == 2
	})
	t.Logf("fence: scale back to 2 from c2: %s", time.Since(tScale).Round(time.Millisecond))
	if diff := cmp.Diff(masters, nodeMasters(t, k.nm, k.job, k.base)); diff != "" {
		t.Errorf("node php-fpm masters after scaling back to 2 (-first +now):\n%s", diff)
	}
	tl = load()
	t.Logf("through the old controller's return and the scale back, through e2: %d answered, %d failed %q", tl.ok, tl.fail, tl.fails)
	if tl.fail > 0 || tl.ok == 0 {
		t.Errorf("through the old controller's return: %d answered, %d failed: %q", tl.ok, tl.fail, tl.fails)
	}
}
