package hosts

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// rootHere is `ip -j addr` / `ip -j route show table all` from the root
// namespace of a CI machine (trimmed), with a default route off the machine.
const (
	addrsHere = `[{"ifname":"lo","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8},{"family":"inet6","local":"::1","prefixlen":128}]},
{"ifname":"eth0","addr_info":[{"family":"inet","local":"192.0.2.2","prefixlen":24},{"family":"inet6","local":"fd00::2","prefixlen":64}]}]`
	routesHere = `[{"dst":"default","gateway":"192.0.2.1","dev":"eth0"},{"dst":"192.0.2.0/24","dev":"eth0"},
{"type":"local","dst":"127.0.0.0/8","dev":"lo","table":"local"},{"type":"local","dst":"127.0.0.1","dev":"lo","table":"local"},
{"type":"broadcast","dst":"192.0.2.255","dev":"eth0","table":"local"}]`
)

func TestCheckSubnet(t *testing.T) {
	subnet := netip.MustParsePrefix("10.77.0.0/24")
	withAddr := func(a string) string {
		return `[{"ifname":"br9","addr_info":[{"family":"inet","local":"` + a + `"` + `,"prefixlen":24}]}]`
	}
	withRoute := func(r string) string { return `[` + r + `]` }
	tests := []struct {
		name          string
		addrs, routes string
		want          string // substring of the error, "" for none
	}{
		{"this machine", addrsHere, routesHere, ""},
		{"empty", `[]`, `[]`, ""},
		{"default route only", `[]`, withRoute(`{"dst":"default","dev":"eth0"}`), ""},
		{"other private range", withAddr("10.78.0.1"), withRoute(`{"dst":"10.78.0.0/24","dev":"br9"}`), ""},
		{"address in subnet", withAddr("10.77.0.1"), `[]`, "address 10.77.0.1/24 on br9"},
		{"address covering subnet", `[{"ifname":"x","addr_info":[{"local":"10.1.2.3","prefixlen":8}]}]`, `[]`, "address 10.1.2.3/8"},
		{"route in main", `[]`, withRoute(`{"dst":"10.77.0.0/24","dev":"br9"}`), "route  10.77.0.0/24 dev br9 table main"},
		{"host route in local table", `[]`, withRoute(`{"type":"local","dst":"10.77.0.11","dev":"x","table":"local"}`), "10.77.0.11 dev x table local"},
		{"route inside subnet", `[]`, withRoute(`{"dst":"10.77.0.128/25","dev":"x"}`), "10.77.0.128/25"},
		{"route covering subnet", `[]`, withRoute(`{"dst":"10.0.0.0/8","gateway":"192.0.2.9","dev":"eth0"}`), "10.0.0.0/8"},
		{"bad json", `{`, `[]`, "ip -j addr"},
		{"bad route", `[]`, withRoute(`{"dst":"nonsense"}`), `route "nonsense"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkSubnet([]byte(tt.addrs), []byte(tt.routes), subnet)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("checkSubnet: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("checkSubnet = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestCheckRootNamespace points the check at a throwaway namespace given an
// address and a route in two documentation prefixes. That namespace has no
// link to anywhere and nothing is sent: the check only reads.
func TestCheckRootNamespace(t *testing.T) {
	prefix := newPrefix()
	ns := prefix + "-chk"
	t.Cleanup(func() { _ = removeByPrefix(prefix) })
	for _, args := range [][]string{
		{"netns", "add", ns},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "addr", "add", "198.51.100.1/24", "dev", "lo"},
	} {
		if err := ipCmd(args...); err != nil {
			t.Fatal(err)
		}
	}
	other := netip.MustParsePrefix("203.0.113.0/24")
	if err := CheckRoot(ns, other); err != nil {
		t.Fatalf("before the route: %v", err)
	}
	if err := CheckRoot(ns, netip.MustParsePrefix("198.51.100.0/24")); !errors.Is(err, ErrSubnetInRoot) {
		t.Fatalf("address in the subnet: %v, want ErrSubnetInRoot", err)
	}
	if err := ipCmd("-n", ns, "route", "add", "203.0.113.0/25", "dev", "lo"); err != nil {
		t.Fatal(err)
	}
	if err := CheckRoot(ns, other); !errors.Is(err, ErrSubnetInRoot) {
		t.Fatalf("route in the subnet: %v, want ErrSubnetInRoot", err)
	}
}

// TestNewRefusesSubnetInRoot: every root namespace has 127.0.0.1/8 on lo, so
// New must refuse 127.0.0.0/24 as a test subnet, before making anything.
func TestNewRefusesSubnetInRoot(t *testing.T) {
	ft := &fakeT{TB: t}
	var made *Net
	panicked := ft.run(func(tb testing.TB) {
		made = New(tb, Config{Hosts: []string{"h1"}, Subnet: netip.MustParsePrefix("127.0.0.0/24")})
	})
	if panicked != errFatal {
		t.Fatalf("New with a subnet the root namespace has: %v, want Fatal; made %+v", panicked, made)
	}
	if msg := ft.messages(); !strings.Contains(msg, ErrSubnetInRoot.Error()) || !strings.Contains(msg, "address 127.0.0.1/8 on lo") {
		t.Fatalf("New failed with %q, want the safety check naming lo", msg)
	}
}

// FuzzCheckSubnet: any `ip -j` output is parsed without panicking, and an
// address inside the subnet is never accepted.
func FuzzCheckSubnet(f *testing.F) {
	f.Add([]byte(addrsHere), []byte(routesHere), "10.77.0.5")
	f.Add([]byte(`[]`), []byte(`[{"dst":"10.77.0.0/24"}]`), "10.77.0.200")
	f.Add([]byte(`[{"addr_info":[{"local":"::1","prefixlen":200}]}]`), []byte(`[{"dst":"x/y"}]`), "1.2.3.4")
	subnet := netip.MustParsePrefix("10.77.0.0/24")
	f.Fuzz(func(t *testing.T, addrs, routes []byte, extra string) {
		_ = checkSubnet(addrs, routes, subnet)
		a, err := netip.ParseAddr(extra)
		if err != nil || !subnet.Contains(a) {
			return
		}
		with := []byte(`[{"ifname":"x","addr_info":[{"local":"` + a.String() + `","prefixlen":32}]}]`)
		if err := checkSubnet(with, []byte(`[]`), subnet); !errors.Is(err, ErrSubnetInRoot) {
			t.Fatalf("address %s in %s accepted: %v", a, subnet, err)
		}
	})
}
