// Package hosts builds "hosts" for the multi-host tests out of Linux network
// namespaces on one machine, following /work/shared/MULTIHOST.md: a switch
// namespace holding a bridge, one namespace per host with eth0 on the test
// subnet, and a client namespace to send test traffic from.
//
// Safety rule (docs/adr/0015-test-hosts-in-namespaces.md): the test subnet
// exists only inside namespaces this package made. The root namespace has a
// default route off the machine, so a packet sent there to a test address
// would leave it. New refuses to run when the root namespace has an address
// or route in the subnet, and every connection this package opens is made
// from a socket created inside a host's namespace (Host.DialContext checks
// the socket's namespace before it connects).
//
// Everything New makes (processes, namespaces, Nomad's cgroup directories)
// is removed by t.Cleanup, also when the test fails or panics; what a killed
// test binary leaves behind is removed by Sweep, which New runs first.
package hosts

import (
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Config describes a topology.
type Config struct {
	// Hosts names the hosts, in order: Hosts[i] gets the address
	// Subnet.base + 10 + i + 1 (10.77.0.11, .12, ...).
	Hosts []string
	// Client adds a client namespace (address Subnet.base + 100) to send
	// test traffic from.
	Client bool
	// Subnet is the test subnet, IPv4, at most /24. The zero value means
	// 10.77.0.0/24.
	Subnet netip.Prefix
}

// DefaultSubnet is the test subnet when Config.Subnet is not set.
var DefaultSubnet = netip.MustParsePrefix("10.77.0.0/24")

// DefaultConfig is four hosts h1..h4 and a client.
func DefaultConfig() Config {
	return Config{Hosts: []string{"h1", "h2", "h3", "h4"}, Client: true, Subnet: DefaultSubnet}
}

// maxHosts keeps host addresses (base+11 ...) below the client's (base+100).
const maxHosts = 80

var hostName = regexp.MustCompile(`^[a-z][a-z0-9]{0,15}$`)

// Validate reports the first field that is wrong.
func (c Config) Validate() error {
	if len(c.Hosts) == 0 {
		return fmt.Errorf("hosts: Hosts is empty")
	}
	if len(c.Hosts) > maxHosts {
		return fmt.Errorf("hosts: Hosts has %d names, at most %d", len(c.Hosts), maxHosts)
	}
	seen := map[string]bool{}
	for _, h := range c.Hosts {
		if !hostName.MatchString(h) {
			return fmt.Errorf("hosts: Hosts: %q is not a short lowercase name ([a-z][a-z0-9]{0,15})", h)
		}
		if h == "sw" || h == "client" {
			return fmt.Errorf("hosts: Hosts: %q is reserved", h)
		}
		if seen[h] {
			return fmt.Errorf("hosts: Hosts: %q appears twice", h)
		}
		seen[h] = true
	}
	if c.Subnet.IsValid() {
		if !c.Subnet.Addr().Is4() || c.Subnet.Bits() > 24 || c.Subnet.Bits() < 8 {
			return fmt.Errorf("hosts: Subnet %s: want an IPv4 prefix between /8 and /24", c.Subnet)
		}
		if c.Subnet.Masked() != c.Subnet {
			return fmt.Errorf("hosts: Subnet %s: host bits set (want %s)", c.Subnet, c.Subnet.Masked())
		}
	}
	return nil
}

// Net is a running topology.
type Net struct {
	Subnet netip.Prefix
	Hosts  []*Host
	// Client is the client namespace, nil unless Config.Client.
	Client *Host

	prefix string // unique per New: namespace and interface names start with it
	sw     string // the switch namespace

	mu    sync.Mutex
	procs []*Proc // started by Host.Start, stopped first at cleanup
}

// Host is one network namespace on the test bridge.
type Host struct {
	Name string
	// Addr is the host's address on eth0.
	Addr netip.Addr
	// NS is the namespace name (ip netns).
	NS string

	net  *Net
	port string // the host's bridge port in the switch namespace

	clientOnce sync.Once
	client     *http.Client
}

// Host returns the host called name, failing t when there is none.
func (n *Net) Host(t testing.TB, name string) *Host {
	t.Helper()
	for _, h := range n.Hosts {
		if h.Name == name {
			return h
		}
	}
	t.Fatalf("hosts: no host %q", name)
	return nil
}

// Prefix is the unique prefix of this topology's namespace names.
func (n *Net) Prefix() string { return n.prefix }

var seq atomic.Uint32

// newPrefix returns "sph<pid base36>n<seq base36>": unique per New on the
// machine, short enough that prefix+"p"+index fits an interface name (15
// bytes), and it names its owner so that Sweep can tell a leftover.
func newPrefix() string {
	return "sph" + strconv.FormatInt(int64(os.Getpid()), 36) + "n" + strconv.FormatUint(uint64(seq.Add(1)-1), 36)
}

// New builds the topology described by cfg and registers its removal with
// t.Cleanup. It fails t (never skips) when it cannot: not root, the root
// namespace has an address or route in the subnet, or a command fails.
func New(t testing.TB, cfg Config) *Net {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		t.Fatal("hosts: network namespaces need root (CI runs the multi-host tests as root)")
	}
	subnet := cfg.Subnet
	if !subnet.IsValid() {
		subnet = DefaultSubnet
	}
	if err := CheckRoot("", subnet); err != nil {
		t.Fatal(err)
	}
	if err := Sweep(); err != nil {
		t.Logf("hosts: sweeping leftovers of earlier runs: %v", err)
	}

	start := time.Now()
	n := &Net{Subnet: subnet, prefix: newPrefix()}
	n.sw = n.prefix + "-sw"
	// Registered before anything exists, so a failure half-way is cleaned too.
	t.Cleanup(func() { n.cleanup(t) })

	run := func(args ...string) {
		t.Helper()
		if err := ipCmd(args...); err != nil {
			t.Fatal(err)
		}
	}
	run("netns", "add", n.sw)
	run("-n", n.sw, "link", "add", "br0", "type", "bridge")
	run("-n", n.sw, "link", "set", "br0", "up")
	run("-n", n.sw, "link", "set", "lo", "up")

	base := subnet.Addr().As4()
	addr := func(last int) netip.Addr {
		a := base
		a[3] += byte(last)
		return netip.AddrFrom4(a)
	}
	names := cfg.Hosts
	if cfg.Client {
		names = append(names[:len(names):len(names)], "client")
	}
	for i, name := range names {
		h := &Host{Name: name, NS: n.prefix + "-" + name, net: n}
		if name == "client" && i == len(cfg.Hosts) {
			h.Addr = addr(100)
		} else {
			h.Addr = addr(10 + i + 1)
		}
		// Both veth ends are created in place: nothing ever exists in the root namespace.
		in, out := fmt.Sprintf("%sa%d", n.prefix, i), fmt.Sprintf("%sp%d", n.prefix, i)
		h.port = out
		run("netns", "add", h.NS)
		run("link", "add", in, "netns", h.NS, "type", "veth", "peer", "name", out, "netns", n.sw)
		run("-n", h.NS, "link", "set", in, "name", "eth0")
		run("-n", h.NS, "addr", "add", netip.PrefixFrom(h.Addr, subnet.Bits()).String(), "dev", "eth0")
		run("-n", h.NS, "link", "set", "eth0", "up")
		run("-n", h.NS, "link", "set", "lo", "up")
		run("-n", n.sw, "link", "set", out, "master", "br0")
		run("-n", n.sw, "link", "set", out, "up")
		if name == "client" && i == len(cfg.Hosts) {
			n.Client = h
		} else {
			n.Hosts = append(n.Hosts, h)
		}
	}
	t.Logf("hosts: %s: %d hosts, client %v, subnet %s, up in %v", n.prefix, len(n.Hosts), cfg.Client, subnet, time.Since(start).Round(time.Millisecond))
	return n
}

// Cut takes h's bridge port down: h loses its link (a partition, not a
// crash; its processes keep running).
func (n *Net) Cut(h *Host) error {
	if err := ipCmd("-n", n.sw, "link", "set", h.port, "down"); err != nil {
		return fmt.Errorf("cut %s: %w", h.Name, err)
	}
	return nil
}

// Heal brings h's bridge port back up.
func (n *Net) Heal(h *Host) error {
	if err := ipCmd("-n", n.sw, "link", "set", h.port, "up"); err != nil {
		return fmt.Errorf("heal %s: %w", h.Name, err)
	}
	return nil
}

// cleanup removes what New made: processes started by Start (their whole
// process groups), then every other process left in the namespaces, then the
// namespaces, then the cgroup directories named for this topology.
func (n *Net) cleanup(t testing.TB) {
	start := time.Now()
	n.mu.Lock()
	procs := n.procs
	n.procs = nil
	n.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].stop()
	}
	// Idle keep-alive sockets would hold the namespaces alive in the kernel.
	for _, h := range append(slices.Clone(n.Hosts), n.Client) {
		if h != nil && h.client != nil {
			h.client.CloseIdleConnections()
		}
	}
	if err := removeByPrefix(n.prefix); err != nil {
		t.Errorf("hosts: cleanup %s: %v", n.prefix, err)
	}
	t.Logf("hosts: %s: removed in %v", n.prefix, time.Since(start).Round(time.Millisecond))
}
