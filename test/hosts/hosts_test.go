package hosts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error, "" for none
	}{
		{"default", DefaultConfig(), ""},
		{"no subnet means the default", Config{Hosts: []string{"a"}}, ""},
		{"no hosts", Config{}, "Hosts is empty"},
		{"bad name", Config{Hosts: []string{"H1"}}, `"H1" is not`},
		{"reserved", Config{Hosts: []string{"sw"}}, "reserved"},
		{"twice", Config{Hosts: []string{"a", "a"}}, "twice"},
		{"ipv6", Config{Hosts: []string{"a"}, Subnet: netip.MustParsePrefix("fd00::/64")}, "IPv4"},
		{"too small", Config{Hosts: []string{"a"}, Subnet: netip.MustParsePrefix("10.77.0.0/25")}, "/24"},
		{"host bits", Config{Hosts: []string{"a"}, Subnet: netip.MustParsePrefix("10.77.0.1/24")}, "host bits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

// namespacesWith lists the namespaces whose names start with prefix.
func namespacesWith(t testing.TB, prefix string) []string {
	t.Helper()
	entries, err := os.ReadDir(netnsDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names
}

// rootLinks lists the root namespace's interfaces.
func rootLinks(t testing.TB) []string {
	t.Helper()
	out, err := exec.Command("ip", "-j", "link", "show").Output()
	if err != nil {
		t.Fatal(err)
	}
	var links []struct {
		IfName string `json:"ifname"`
	}
	if err := json.Unmarshal(out, &links); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range links {
		names = append(names, l.IfName)
	}
	return names
}

func TestTopology(t *testing.T) {
	before := rootLinks(t)
	n := New(t, DefaultConfig())

	p := n.Prefix()
	want := []string{p + "-client", p + "-h1", p + "-h2", p + "-h3", p + "-h4", p + "-sw"}
	if diff := cmp.Diff(want, namespacesWith(t, p+"-")); diff != "" {
		t.Errorf("namespaces (-want +got):\n%s", diff)
	}
	type iface struct{ NS, Addr string }
	var gotAddrs []iface
	for _, h := range append(slices.Clone(n.Hosts), n.Client) {
		out, err := exec.Command("ip", "-n", h.NS, "-j", "addr", "show", "dev", "eth0").Output()
		if err != nil {
			t.Fatal(err)
		}
		var as []ipAddr
		if err := json.Unmarshal(out, &as); err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			for _, ai := range a.AddrInfo {
				if strings.Contains(ai.Local, ".") {
					gotAddrs = append(gotAddrs, iface{h.NS, fmt.Sprintf("%s/%d", ai.Local, ai.PrefixLen)})
				}
			}
		}
	}
	wantAddrs := []iface{
		{p + "-h1", "10.77.0.11/24"}, {p + "-h2", "10.77.0.12/24"}, {p + "-h3", "10.77.0.13/24"},
		{p + "-h4", "10.77.0.14/24"}, {p + "-client", "10.77.0.100/24"},
	}
	if diff := cmp.Diff(wantAddrs, gotAddrs); diff != "" {
		t.Errorf("eth0 addresses (-want +got):\n%s", diff)
	}
	// Nothing was added to the root namespace.
	if diff := cmp.Diff(before, rootLinks(t)); diff != "" {
		t.Errorf("root namespace links changed (-before +after):\n%s", diff)
	}
	if err := CheckRoot("", n.Subnet); err != nil {
		t.Errorf("after New: %v", err)
	}
}

// TestReachCutHeal: h1 serves on its address; h2 and the client reach it,
// the root namespace reaches it through Forward; Cut(h1) makes it
// unreachable and Heal(h1) brings it back.
func TestReachCutHeal(t *testing.T) {
	n := New(t, DefaultConfig())
	h1, h2 := n.Host(t, "h1"), n.Host(t, "h2")
	target := netipPort(h1.Addr, 8000)
	serve(t, h1, target, "served-by-h1")
	url := "http://" + target + "/"

	if got := waitGet(t, h2.HTTPClient(), url, 10*time.Second); got != "served-by-h1" {
		t.Fatalf("from h2: %q", got)
	}
	if got := waitGet(t, n.Client.HTTPClient(), url, 10*time.Second); got != "served-by-h1" {
		t.Fatalf("from client: %q", got)
	}
	fwd := n.Client.Forward(t, target)
	root := &http.Client{Transport: &http.Transport{Proxy: nil}}
	if got := waitGet(t, root, "http://"+fwd+"/", 10*time.Second); got != "served-by-h1" {
		t.Fatalf("through the forward from the root namespace: %q", got)
	}

	if err := n.Cut(h1); err != nil {
		t.Fatal(err)
	}
	for _, from := range []*Host{h2, n.Client} {
		c := &http.Client{Transport: &http.Transport{Proxy: nil, DialContext: from.DialContext, DisableKeepAlives: true}}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		body, err := get(ctx, c, url)
		cancel()
		if err == nil {
			t.Errorf("from %s with h1 cut: got %q, want no answer", from.Name, body)
		}
	}

	if err := n.Heal(h1); err != nil {
		t.Fatal(err)
	}
	if got := waitGet(t, n.Client.HTTPClient(), url, 10*time.Second); got != "served-by-h1" {
		t.Fatalf("from client after Heal: %q", got)
	}
}

func netipPort(a netip.Addr, port uint16) string { return netip.AddrPortFrom(a, port).String() }

// alivePids returns those of pids that still exist.
func alivePids(pids []int) []int {
	var out []int
	for _, p := range pids {
		if alive(p) {
			out = append(out, p)
		}
	}
	return out
}

// TestCleanup: after a test that fails, or panics, with a server started by
// Start and an orphan outside any tracked process group, no namespace and no
// process is left.
func TestCleanup(t *testing.T) {
	for _, end := range []string{"fatal", "panic", "pass"} {
		t.Run(end, func(t *testing.T) {
			ft := &fakeT{TB: t}
			var prefix string
			var pids []int
			panicked := ft.run(func(tb testing.TB) {
				n := New(tb, Config{Hosts: []string{"h1", "h2"}, Client: true})
				prefix = n.Prefix()
				h1 := n.Hosts[0]
				serve(tb, h1, netipPort(h1.Addr, 8000), "x")
				// An orphan in its own session: only the namespace scan finds it.
				if err := h1.Command(context.Background(), "setsid", "-f", "sleep", "300").Run(); err != nil {
					tb.Fatalf("setsid: %v", err)
				}
				var st syscall.Stat_t
				if err := syscall.Stat(h1.nsPath(), &st); err != nil {
					tb.Fatal(err)
				}
				// The server and the orphan.
				deadline := time.Now().Add(5 * time.Second)
				for len(pids) < 2 && time.Now().Before(deadline) {
					pids = pidsIn(map[uint64]bool{st.Ino: true})
					time.Sleep(20 * time.Millisecond)
				}
				switch end {
				case "fatal":
					tb.Fatal("failing on purpose")
				case "panic":
					panic("panicking on purpose")
				}
			})
			if end == "pass" && panicked != nil || end != "pass" && panicked == nil {
				t.Fatalf("body ended with %v; messages: %s", panicked, ft.messages())
			}
			if len(pids) < 2 {
				t.Fatalf("processes in h1 before cleanup: %v, want the server and the orphan", pids)
			}
			if left := namespacesWith(t, prefix+"-"); len(left) > 0 {
				t.Errorf("namespaces left: %v", left)
			}
			if left := alivePids(pids); len(left) > 0 {
				t.Errorf("processes left: %v", left)
			}
		})
	}
}

// TestSweep: a namespace (with a process in it) and a cgroup directory named
// for an owner that is gone are removed; the ones of a live owner are not.
func TestSweep(t *testing.T) {
	n := New(t, Config{Hosts: []string{"h1"}})

	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	pid := dead.Process.Pid
	if alive(pid) {
		t.Fatalf("pid %d reused already", pid)
	}
	prefix := "sph" + strconv.FormatInt(int64(pid), 36) + "n0"
	ns := prefix + "-h1"
	cg := filepath.Join(cgroupRoot, "cpuset", "nomad-"+prefix+"-h1")
	t.Cleanup(func() { _ = removeByPrefix(prefix) })
	if err := ipCmd("netns", "add", ns); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("ip", "netns", "exec", ns, "setsid", "-f", "sleep", "300").Run(); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(cg, "shared"), 0o755); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(netnsDir, ns), &st); err != nil {
		t.Fatal(err)
	}
	var orphans []int
	for deadline := time.Now().Add(5 * time.Second); len(orphans) == 0 && time.Now().Before(deadline); {
		orphans = pidsIn(map[uint64]bool{st.Ino: true})
		time.Sleep(20 * time.Millisecond)
	}
	if len(orphans) == 0 {
		t.Fatal("the leftover's process did not start")
	}

	if err := Sweep(); err != nil {
		t.Fatal(err)
	}
	if left := namespacesWith(t, prefix+"-"); len(left) > 0 {
		t.Errorf("leftover namespaces: %v", left)
	}
	if left := alivePids(orphans); len(left) > 0 {
		t.Errorf("leftover processes: %v", left)
	}
	if _, err := os.Stat(cg); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("leftover cgroup %s: %v", cg, err)
	}
	// The live owner's topology is untouched.
	if got := namespacesWith(t, n.Prefix()+"-"); len(got) != 2 {
		t.Errorf("live topology's namespaces after Sweep: %v", got)
	}
}
