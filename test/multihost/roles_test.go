package multihost

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/statedir"
	"github.com/scalepress/scalepress/test/hosts"
)

// Bounds TestFilesRoleOnNomad asserts.
const (
	// filesMoveWithin: from the cut to the files role answering on another
	// host. Nomad marks a client down after its heartbeat TTL (~18 s here,
	// MULTIHOST.md), replaces the lost allocation at once, the task starts
	// and reads the log from the bucket.
	filesMoveWithin = 90 * time.Second
	// uploadArrivesWithin: from the role answering on its new host to every
	// upload written on one node being on a node on another host: Nomad
	// renders the nodes' file again, node-host copies it (250 ms), the
	// writer's queued pushes go there (its backoff is at most 2 s) and the
	// reader's stream reconnects as soon as it sees the move (250 ms), not
	// after its 30 s StreamTimeout of silence from the lost host.
	uploadArrivesWithin = 15 * time.Second
)

// rolesConfig is TestFilesRoleOnNomad's configuration: as siteConfig (two
// nodes, autoscaling between 2 and 3; the test scales to 3, one per Nomad
// client), with the files role, redis and dns on Nomad.
func rolesConfig(h1, apiFwd, job string) string {
	return fmt.Sprintf(`site:
  title: roles on nomad
api:
  addr: %[1]s:9090
  allowed_hosts: [%[2]q]
edges:
  - id: edge-1
    region: default
    addr: %[1]s:8080
nodes:
  count: 2
  php_children: 2
  slow_start: 2s
autoscaling:
  enabled: true
  min: 2
  max: 3
  target: 0.6
  # Off: after the cut host heals, a rebalance (a spare, then a move)
  # would run while the test counts the node allocations around the
  # controller's kill (5 running, want 3, seen in a fresh-clone run).
  # TestNodeHostCut tests the rebalance.
  rebalance_after: 0s
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
  job: %[3]s
  cpu: 100
  memory_mb: 256
  roles: [files, redis, dns]
dns:
  enabled: true
  addr: %[1]s:5353
  zone: example.test.
  health: {interval: 1s, timeout: 500ms, rise: 1, fall: 2}
files:
  addr: %[1]s:8081
`, h1, apiFwd, job)
}

// TestFilesRoleOnNomad is issue 12's site across hosts and its files role
// on Nomad: h1 runs the Nomad server, the bucket (versitygw) and
// `scalepress up`; h2..h4 are Nomad clients running the WordPress nodes,
// each in its own directory (node meta scalepress_dir), and the files role,
// a job of its own, which keeps the tree in the bucket. First what was
// TestSiteAcrossHosts (the same topology and set-up, merged to pay for them
// once): the home page and an uncached search answer 200 through the edge,
// the bucket holds the store's objects, status shows two nodes in service
// on two different clients, and `scale --min 3` places a third, one node
// per client, which answers searches. Status names the role's host (a
// client). Then the host running the role is cut
// while uploads are written on a node of another host (as PHP writes them,
// into its docroot): Nomad places the role on another client, it resumes
// from the bucket at the sequence number it had, every upload reaches a
// node on a third host, and through the edge. Heal; `down` stops both jobs
// and the edge. All traffic from the client namespace.
func TestFilesRoleOnNomad(t *testing.T) {
	bin := os.Getenv("SCALEPRESS_BIN")
	if bin == "" {
		t.Fatal("SCALEPRESS_BIN must name the scalepress binary (make multihost sets it)")
	}
	hosts.LockE2E(t)
	n := hosts.New(t, hosts.DefaultConfig())
	h1, client := n.Host(t, "h1"), n.Client
	clients := n.Hosts[1:]

	base, err := os.MkdirTemp("", "sp-mh-roles-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	meta := map[string]map[string]string{}
	byName := map[string]*hosts.Host{}
	for _, h := range clients {
		d := filepath.Join(base, h.Name)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		meta[h.Name] = map[string]string{"scalepress_dir": d}
		byName[h.Name] = h
	}
	nm := hosts.StartNomad(t, n, h1, clients, hosts.NomadOptions{Meta: meta})

	dir := filepath.Join(base, "controller")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The bucket on h1, which is never cut: the role must reach it from
	// wherever Nomad places it.
	s3 := hosts.StartVersitygw(t, h1, hosts.VersitygwOptions{})
	store := s3.SiteStore(t, filepath.Join(dir, "s3"))
	const job = "sp-mh-roles"
	filesJob := job + "-files"

	apiFwd := client.Forward(t, h1.Addr.String()+":9090")
	cfgPath := filepath.Join(dir, "scalepress.yaml")
	if err := os.WriteFile(cfgPath, []byte(rolesConfig(h1.Addr.String(), apiFwd, job)+store), 0o644); err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := h1.Command(ctx, bin, append(args, "--dir", dir)...).CombinedOutput()
		return string(out), err
	}
	var cut *hosts.Host // healed at cleanup if the test stops while it is cut
	t.Cleanup(func() {
		if cut != nil {
			n.Heal(cut)
		}
		if out, err := cli("down"); err != nil {
			t.Logf("down at cleanup: %v: %s", err, out)
		}
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(base, "*", "logs", "*.log"))
			for _, c := range nm.Clients {
				cfgDir := filepath.Dir(c.Cmd.Args[len(c.Cmd.Args)-1])
				for _, task := range []string{"node-host", "files"} {
					l, _ := filepath.Glob(filepath.Join(cfgDir, "data-*", "alloc", "*", "alloc", "logs", task+".std*"))
					logs = append(logs, l...)
				}
				break // every client's data dir is in the same directory
			}
			for _, l := range logs {
				t.Logf("---- %s (tail)\n%s", l, tailFile(l, 3000))
			}
		}
	})

	tUp := time.Now()
	up := h1.Start(t, bin, "up", "--config", cfgPath, "--dir", dir)
	site := "http://" + h1.Addr.String() + ":8080"
	web := client.HTTPClient()
	get := func(path string) (int, string) {
		resp, err := web.Get(site + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, string(b)
	}
	for deadline := time.Now().Add(10 * time.Minute); ; {
		if code, _ := get("/"); code == http.StatusOK {
			break
		}
		select {
		case <-up.Done():
			t.Fatalf("up exited before the site answered: %v", up.Err())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the site never answered 200 through the edge")
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("up to the first 200 with the files role on Nomad: %s", time.Since(tUp).Round(time.Millisecond))
	var objects int
	filepath.WalkDir(filepath.Join(s3.Dir, "site", "mh"), func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			objects++
		}
		return nil
	})
	if objects == 0 {
		t.Errorf("no object under site/mh/ in the bucket on h1: the files store is not S3")
	}
	t.Logf("files store: %d objects in the bucket on h1", objects)
	if code, body := get("/?s=multihost-first"); code != http.StatusOK {
		t.Fatalf("uncached search through the edge: %d %.300s", code, body)
	}

	tok, err := os.ReadFile(filepath.Join(dir, "secrets", "api-token"))
	if err != nil {
		t.Fatal(err)
	}
	ctl := api.NewClient("http://" + apiFwd)
	ctl.Token = strings.TrimSpace(string(tok))
	status := func() *api.Status {
		t.Helper()
		st, err := ctl.Status(context.Background())
		if err != nil {
			t.Fatalf("status through the forward: %v", err)
		}
		return st
	}
	// nodes waits until 3 nodes are in service, one per client, and
	// returns their hosts by id.
	nodes := func(within time.Duration, not string) map[string]string {
		t.Helper()
		var last []api.NodeStatus
		for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
			st := status()
			last = st.Nodes
			byNode := map[string]string{}
			for _, nd := range st.Nodes {
				if nd.State == api.NodeInService && nd.Host != not {
					byNode[nd.ID] = nd.Host
				}
			}
			if len(byNode) >= 2 && (not != "" || len(byNode) == 3) {
				return byNode
			}
		}
		t.Fatalf("nodes in service (not on %q): status shows %+v", not, last)
		return nil
	}
	// The site across hosts (was TestSiteAcrossHosts): two nodes on two
	// clients, then `scale --min 3` to one node per client.
	inService := func(want int) map[string]string {
		t.Helper()
		var last []api.NodeStatus
		for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
			st := status()
			last = st.Nodes
			byNode := map[string]string{}
			for _, nd := range st.Nodes {
				if nd.State == api.NodeInService {
					byNode[nd.ID] = nd.Host
				}
			}
			if len(byNode) == want {
				return byNode
			}
		}
		t.Fatalf("want %d nodes in service, status shows %+v", want, last)
		return nil
	}
	distinct := func(byNode map[string]string) []string {
		var hs []string
		for id, h := range byNode {
			if byName[h] == nil {
				t.Errorf("%s: host %q, want one of the Nomad clients", id, h)
			}
			if !slices.Contains(hs, h) {
				hs = append(hs, h)
			}
		}
		slices.Sort(hs)
		return hs
	}
	two := inService(2)
	if hs := distinct(two); len(hs) < 2 {
		t.Errorf("2 nodes on hosts %v, want at least 2 hosts (spread): %v", hs, two)
	}
	t.Logf("nodes: %v", two)
	tScale := time.Now()
	if out, err := cli("scale", "--min", "3"); err != nil {
		t.Fatalf("scale --min 3: %v: %s", err, out)
	}
	three := inService(3)
	t.Logf("scale --min 3 to 3 in service: %s; nodes: %v", time.Since(tScale).Round(time.Millisecond), three)
	if hs := distinct(three); len(hs) != 3 {
		t.Errorf("3 nodes on hosts %v, want one per Nomad client (spread): %v", hs, three)
	}
	logBootstraps(t, base, slices.Sorted(maps.Keys(byName)))
	for i := range 6 {
		if code, body := get(fmt.Sprintf("/?s=multihost-%d", i)); code != http.StatusOK {
			t.Errorf("uncached search with 3 nodes: %d %.300s", code, body)
		}
	}

	byNode := nodes(3*time.Minute, "")
	st := status()
	if st.Files == nil || st.Files.State != "up" || byName[st.Files.Host] == nil {
		t.Fatalf("status files %+v: want up on one of the Nomad clients", st.Files)
	}
	if st.Files.PID != 0 {
		t.Errorf("files role has a pid of the controller's (%d): it should run on Nomad", st.Files.PID)
	}
	// Started as root by raw_exec, the files role runs as the role user
	// once it has read its spec.
	if uids := filesRoleUIDs(t); len(uids) == 0 {
		t.Errorf("no files role process found")
	} else if role, err := user.Lookup("scalepress"); err != nil {
		t.Fatal(err)
	} else {
		for pid, uid := range uids {
			if uid != role.Uid {
				t.Errorf("files role pid %d runs as uid %s, want scalepress (%s)", pid, uid, role.Uid)
			}
		}
	}
	filesHost, seq0 := byName[st.Files.Host], st.Files.Seq
	t.Logf("files role on %s at %s (seq %d); nodes %v", filesHost.Name, st.Files.Addr, seq0, byNode)
	// Redis on Nomad too, and the nodes' PHP uses it (through each node's
	// socket, relayed by node-host): its keyspace fills.
	if st.Redis == nil || st.Redis.State != "up" || byName[st.Redis.Host] == nil || st.Redis.PID != 0 {
		t.Fatalf("status redis %+v: want up on one of the Nomad clients, no pid of the controller's", st.Redis)
	}
	redisPassword := wpDefine(t, filepath.Join(dir, "site", "wp-config.php"), "WP_REDIS_PASSWORD")
	cacheFills := func(what string) {
		t.Helper()
		r := status().Redis
		for i := range 20 {
			if code, body := get(fmt.Sprintf("/?s=redis-%s-%d", what, i)); code != http.StatusOK {
				t.Fatalf("%s: uncached search: %d %.300s", what, code, body)
			}
			if i >= 3 && redisKeys(t, client, r.Addr, redisPassword) > 0 {
				t.Logf("%s: redis on %s at %s holds keys after %d uncached pages", what, r.Host, r.Addr, i+1)
				return
			}
		}
		t.Fatalf("%s: redis on %s at %s holds no key after 20 uncached pages: the nodes do not use it", what, r.Host, r.Addr)
	}
	cacheFills("first")
	// The dns role on Nomad answers for the zone, with the edge's address.
	if st.DNS == nil || st.DNS.State != "up" || byName[st.DNS.Host] == nil || st.DNS.PID != 0 {
		t.Fatalf("status dns %+v: want up on one of the Nomad clients, no pid of the controller's", st.DNS)
	}
	if want := byName[st.DNS.Host].Addr.String() + ":5353"; st.DNS.Addr != want {
		t.Errorf("status dns addr %s, want %s (dns.addr's port on its host)", st.DNS.Addr, want)
	}
	if got := lookupA(t, client, st.DNS.Addr, "example.test."); !slices.Equal(got, []string{h1.Addr.String()}) {
		t.Errorf("A example.test. from the dns role on %s: %v, want the edge's [%s]", st.DNS.Host, got, h1.Addr)
	}

	// Writer and reader: nodes on the two other hosts.
	var writer, reader string
	for _, id := range slices.Sorted(func(yield func(string) bool) {
		for id := range byNode {
			if !yield(id) {
				return
			}
		}
	}) {
		switch h := byNode[id]; {
		case h == filesHost.Name:
		case writer == "":
			writer = id
		case reader == "" && h != byNode[writer]:
			reader = id
		}
	}
	if writer == "" || reader == "" {
		t.Fatalf("no two nodes off the files role's host %s: %v", filesHost.Name, byNode)
	}
	docroot := func(id string) string {
		return statedir.Layout{Dir: filepath.Join(base, byNode[id])}.Docroot(id)
	}
	www, err := user.Lookup("www-data")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(www.Uid)
	gid, _ := strconv.Atoi(www.Gid)
	uploads := filepath.Join(docroot(writer), "wp-content", "uploads", "mh")
	if err := os.MkdirAll(uploads, 0o775); err != nil {
		t.Fatal(err)
	}
	os.Chown(uploads, uid, gid)
	// upload writes file i as PHP would (www-data, in the docroot).
	var mu sync.Mutex
	var written []string
	upload := func(i int) {
		name := fmt.Sprintf("up-%03d.txt", i)
		p := filepath.Join(uploads, name)
		if err := os.WriteFile(p+".tmp", []byte("upload "+name+"\n"), 0o644); err != nil {
			t.Error(err)
			return
		}
		os.Chown(p+".tmp", uid, gid)
		if err := os.Rename(p+".tmp", p); err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		written = append(written, name)
		mu.Unlock()
	}
	arrived := func(name string) bool {
		_, err := os.Stat(filepath.Join(docroot(reader), "wp-content", "uploads", "mh", name))
		return err == nil
	}
	// Before the cut: an upload goes from writer to reader through the role.
	upload(0)
	for deadline := time.Now().Add(30 * time.Second); !arrived("up-000.txt"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("before the cut, up-000.txt written on %s (%s) never reached %s (%s)", writer, byNode[writer], reader, byNode[reader])
		}
	}

	// Uploads go on during the cut, one every 250 ms.
	stopUploads := make(chan struct{})
	uploadsDone := make(chan struct{})
	go func() {
		defer close(uploadsDone)
		for i := 1; ; i++ {
			select {
			case <-stopUploads:
				return
			case <-time.After(250 * time.Millisecond):
			}
			upload(i)
		}
	}()
	tCut := time.Now()
	if err := n.Cut(filesHost); err != nil {
		close(stopUploads)
		t.Fatal(err)
	}
	cut = filesHost
	var moved *api.FilesStatus
	for deadline := tCut.Add(filesMoveWithin); moved == nil; time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			close(stopUploads)
			t.Fatalf("the files role did not move off %s within %s: %+v", filesHost.Name, filesMoveWithin, status().Files)
		}
		if f := status().Files; f != nil && f.State == "up" && f.Host != filesHost.Name && f.Host != "" {
			moved = f
		}
	}
	tMoved := time.Now()
	t.Logf("files role moved to %s at %s %s after the cut (seq %d, was %d)", moved.Host, moved.Addr, tMoved.Sub(tCut).Round(time.Millisecond), moved.Seq, seq0)
	if moved.Seq < seq0 {
		t.Errorf("the files role on %s resumed at seq %d, behind %d before the cut: it did not resume from the bucket", moved.Host, moved.Seq, seq0)
	}
	// A few more uploads after the move, then stop.
	time.Sleep(2 * time.Second)
	close(stopUploads)
	<-uploadsDone
	mu.Lock()
	all := slices.Clone(written)
	mu.Unlock()
	last := all[len(all)-1]
	var missing []string
	for deadline := tMoved.Add(uploadArrivesWithin); ; time.Sleep(200 * time.Millisecond) {
		missing = missing[:0]
		for _, name := range all {
			if !arrived(name) {
				missing = append(missing, name)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d of %d uploads written on %s (%s) never reached %s (%s) within %s of the move: %v",
			len(missing), len(all), writer, byNode[writer], reader, byNode[reader], uploadArrivesWithin, missing)
	}
	t.Logf("%d uploads (%d during the outage) all on %s, %s after the move", len(all), len(all)-1, reader, time.Since(tMoved).Round(time.Millisecond))
	// Through the edge: whichever node answers has it (the replacement of
	// the lost node bootstraps from the moved role).
	for deadline := time.Now().Add(uploadArrivesWithin); ; time.Sleep(500 * time.Millisecond) {
		ok := 0
		for range 4 {
			if code, _ := get("/wp-content/uploads/mh/" + last); code == http.StatusOK {
				ok++
			}
		}
		if ok == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s through the edge: %d of 4 answered 200", last, ok)
		}
	}
	if code, body := get("/?s=files-moved"); code != http.StatusOK {
		t.Errorf("uncached search after the move: %d %.300s", code, body)
	}

	if err := n.Heal(filesHost); err != nil {
		t.Fatal(err)
	}
	cut = nil
	// Back, the host's client stops its lost allocation: one files role.
	running := func(j string) int {
		var allocs []struct{ ClientStatus, NodeName string }
		if err := nm.Get(context.Background(), "/v1/job/"+j+"/allocations", &allocs); err != nil {
			t.Fatal(err)
		}
		k := 0
		for _, a := range allocs {
			if a.ClientStatus == "running" {
				k++
			}
		}
		return k
	}
	for deadline := time.Now().Add(60 * time.Second); running(filesJob) != 1; time.Sleep(time.Second) {
		if time.Now().After(deadline) {
			t.Fatalf("after the heal, %d allocations of %s run, want 1", running(filesJob), filesJob)
		}
	}
	if f := status().Files; f == nil || f.State != "up" || f.Host != moved.Host {
		t.Errorf("after the heal, status files %+v: want up on %s", f, moved.Host)
	}

	// Redis's host cut: Nomad moves it, it starts empty, the site answers
	// throughout (the object cache is only a cache) and the nodes' sockets
	// reach the new one.
	redisHost := byName[status().Redis.Host]
	if redisHost == nil {
		t.Fatalf("status redis %+v: not on a Nomad client", status().Redis)
	}
	tCut = time.Now()
	if err := n.Cut(redisHost); err != nil {
		t.Fatal(err)
	}
	cut = redisHost
	failed, asked := 0, 0
	var rmoved *api.RedisStatus
	for deadline := tCut.Add(filesMoveWithin); rmoved == nil; time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("redis did not move off %s within %s: %+v", redisHost.Name, filesMoveWithin, status().Redis)
		}
		asked++
		if code, _ := get("/"); code != http.StatusOK {
			failed++
		}
		if r := status().Redis; r != nil && r.State == "up" && r.Host != redisHost.Name && r.Host != "" {
			rmoved = r
		}
	}
	t.Logf("redis moved to %s at %s %s after its host was cut; home page meanwhile: %d of %d failed",
		rmoved.Host, rmoved.Addr, time.Since(tCut).Round(time.Millisecond), failed, asked)
	if failed > 0 {
		t.Errorf("the home page failed %d of %d times while redis moved", failed, asked)
	}
	cacheFills("after-redis-moved")
	if err := n.Heal(redisHost); err != nil {
		t.Fatal(err)
	}
	cut = nil

	// The controller killed (SIGKILL): what Nomad runs goes on. The files
	// role, redis and dns answer where they ran and the nodes' allocations
	// run (the edge, the router and the member are its children and end
	// with it: not there yet, docs/multi-host.md).
	before := status()
	preAllocs, preFPM := nodeAllocs(t, nm, job), nodeMasters(t, nm, job, base)
	if err := syscall.Kill(up.Cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-up.Done()
	for i := range 5 {
		if i > 0 {
			time.Sleep(time.Second)
		}
		resp, err := web.Get("http://" + before.Files.Addr + api.FilesPathHealth)
		if err != nil {
			t.Fatalf("%d s after the controller's kill, the files role on %s: %v", i, before.Files.Host, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%d s after the controller's kill, the files role on %s: %s", i, before.Files.Host, resp.Status)
		}
		redisKeys(t, client, before.Redis.Addr, redisPassword) // fails the test unless redis answers
		if r := query(t, client, before.DNS.Addr, "example.test.", dns.TypeSOA); len(r.Answer) != 1 {
			t.Fatalf("%d s after the controller's kill, SOA from the dns role: %d answers", i, len(r.Answer))
		}
		if k := running(job); k != 3 {
			t.Fatalf("%d s after the controller's kill, %d node allocations run, want 3", i, k)
		}
	}
	// A new up re-registers the role jobs unchanged: Nomad keeps them where
	// they run (same addresses), and the site answers again.
	tReup := time.Now()
	up = h1.Start(t, bin, "up", "--config", cfgPath, "--dir", dir)
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(500 * time.Millisecond) {
		if code, _ := get("/"); code == http.StatusOK {
			break
		}
		select {
		case <-up.Done():
			t.Fatalf("the second up exited before the site answered: %v", up.Err())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("after the second up the site never answered 200")
		}
	}
	after := status()
	t.Logf("second up to the first 200: %s", time.Since(tReup).Round(time.Millisecond))
	for _, r := range []struct{ role, before, after string }{
		{"files", before.Files.Addr, after.Files.Addr},
		{"redis", before.Redis.Addr, after.Redis.Addr},
		{"dns", before.DNS.Addr, after.DNS.Addr},
	} {
		if r.before != r.after {
			t.Errorf("%s: at %s before the controller's kill, at %s after the second up: Nomad replaced it", r.role, r.before, r.after)
		}
	}
	if code, body := get("/?s=after-second-up"); code != http.StatusOK {
		t.Errorf("uncached search after the second up: %d %.300s", code, body)
	}
	// The second up adopted the node job (ADR 27): the same allocations,
	// the same php-fpm masters (pid and start time), each node in service
	// on its host; nothing was restarted.
	if len(preAllocs) != 3 || len(preFPM) != 3 || slices.Contains(slices.Collect(maps.Values(preFPM)), fpmMaster{}) {
		t.Errorf("before the kill: node allocations %v, php-fpm masters %v: want 3 of each, each running", preAllocs, preFPM)
	}
	if got := nodeAllocs(t, nm, job); !slices.Equal(got, preAllocs) {
		t.Errorf("node allocations before the kill %v, after the second up %v: want the same (adopted)", preAllocs, got)
	}
	if got := nodeMasters(t, nm, job, base); !maps.Equal(got, preFPM) {
		t.Errorf("php-fpm masters before the kill %v, after the second up %v: want the same (no restart)", preFPM, got)
	}
	var adopted []string
	for _, nd := range after.Nodes {
		if nd.State == api.NodeInService && byName[nd.Host] != nil {
			adopted = append(adopted, nd.ID)
		}
	}
	if len(adopted) != 3 {
		t.Errorf("after the second up, in service on a Nomad client: %v; status nodes %+v", adopted, after.Nodes)
	}
	for i := range 10 {
		if code, body := get(fmt.Sprintf("/?s=adopted-%d", i)); code != http.StatusOK {
			t.Errorf("uncached search %d on the adopted nodes: %d %.300s", i, code, body)
		}
	}

	// The controller's state is in Nomad too (ADR 27), yet an `up` in an
	// empty directory on another host refuses to take this site over: its
	// database member ran in the first controller's directory (db.hosts is
	// empty), so it would make an empty site over the running nodes. It
	// changes nothing that runs and writes no secret.
	fresh := filepath.Join(base, "controller-2")
	if err := os.Mkdir(fresh, 0o755); err != nil {
		t.Fatal(err)
	}
	fctx, fcancel := context.WithTimeout(context.Background(), 2*time.Minute)
	out, err := clients[0].Command(fctx, bin, "up", "--config", cfgPath, "--dir", fresh).CombinedOutput()
	fcancel()
	if err == nil || !strings.Contains(string(out), "db.hosts is empty") {
		t.Errorf("up --dir %s (empty) on %s: %v, want a refusal naming db.hosts: %.600s", fresh, clients[0].Name, err, out)
	}
	if _, err := os.Stat(filepath.Join(fresh, "secrets", "root-key")); err == nil {
		t.Errorf("the refused up wrote %s/secrets/root-key", fresh)
	}
	if got := nodeAllocs(t, nm, job); !slices.Equal(got, preAllocs) {
		t.Errorf("node allocations after the refused up %v, want %v", got, preAllocs)
	}

	if out, err := cli("down"); err != nil {
		t.Fatalf("down: %v: %s", err, out)
	}
	select {
	case <-up.Done():
	case <-time.After(2 * time.Minute):
		t.Fatal("the controller still runs after down")
	}
	for _, j := range []string{job, filesJob} {
		for deadline := time.Now().Add(30 * time.Second); running(j) != 0; time.Sleep(500 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Errorf("30 s after down, %d allocations of %s still run", running(j), j)
				break
			}
		}
	}
	if code, _ := get("/"); code != 0 {
		t.Errorf("the edge still answers after down: %d", code)
	}
	// down stops what was adopted as it stops what it launched: no
	// process of the site is left on any host.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		left := procsUnder(base)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("30 s after down, processes of the site still run:\n%s", strings.Join(left, "\n"))
			break
		}
	}
}

// wpDefine is the string constant name defined in a rendered wp-config.php.
func wpDefine(t *testing.T, path, name string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`define\('` + regexp.QuoteMeta(name) + `', '([^'\\]*)'\);`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("%s: no %s", path, name)
	}
	return string(m[1])
}

// redisKeys asks redis at addr (from the client namespace) how many keys it
// holds.
func redisKeys(t *testing.T, from *hosts.Host, addr, password string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := from.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Logf("redis %s: %v", addr, err)
		return 0
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	fmt.Fprintf(c, "AUTH %s\r\nDBSIZE\r\n", password)
	r := bufio.NewReader(c)
	if l, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "+OK") {
		t.Fatalf("redis %s: AUTH: %q %v", addr, l, err)
	}
	l, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(l, ":") {
		t.Fatalf("redis %s: DBSIZE: %q %v", addr, l, err)
	}
	k, _ := strconv.Atoi(strings.TrimSpace(l[1:]))
	return k
}

// lookupA asks the DNS server at addr for name's A records, which must be
// an authoritative answer.
func lookupA(t *testing.T, from *hosts.Host, addr, name string) []string {
	t.Helper()
	var out []string
	for _, rr := range query(t, from, addr, name, dns.TypeA).Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	return out
}

// query asks the DNS server at addr (from the client namespace, UDP) and
// wants an authoritative answer without error.
func query(t *testing.T, from *hosts.Host, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := from.DialContext(ctx, "udp", addr)
	if err != nil {
		t.Fatalf("dns %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	conn := &dns.Conn{Conn: c}
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	if err := conn.WriteMsg(q); err != nil {
		t.Fatalf("dns %s: %v", addr, err)
	}
	r, err := conn.ReadMsg()
	if err != nil {
		t.Fatalf("dns %s: %v", addr, err)
	}
	if r.Rcode != dns.RcodeSuccess || !r.Authoritative {
		t.Fatalf("dns %s: %s %s: %s, authoritative %v", addr, dns.TypeToString[qtype], name, dns.RcodeToString[r.Rcode], r.Authoritative)
	}
	return r
}

// filesRoleUIDs is the effective uid of every files role a Nomad task runs
// (`scalepress files --spec .../secrets/role.json`), by pid.
func filesRoleUIDs(t *testing.T) map[int]string { return roleUIDs(t, "files") }

// roleUIDs is the effective uid of every role a Nomad task runs
// (`scalepress ROLE --spec .../secrets/role.json`), by pid.
func roleUIDs(t *testing.T, role string) map[int]string {
	out := map[int]string{}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), "\x00"+role+"\x00--spec\x00") || !strings.Contains(string(b), "secrets/role.json") {
			continue
		}
		st, err := os.ReadFile(filepath.Join(filepath.Dir(p), "status"))
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(st)) {
			if f := strings.Fields(line); len(f) >= 3 && f[0] == "Uid:" {
				pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
				out[pid] = f[2] // effective
			}
		}
	}
	return out
}
