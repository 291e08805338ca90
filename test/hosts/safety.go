package hosts

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
)

// ErrSubnetInRoot is returned by CheckRoot when the namespace it checks has
// an address or route in the test subnet.
var ErrSubnetInRoot = errors.New("the test subnet is reachable from the root namespace")

// CheckRoot refuses a namespace that has an address or a route (other than
// the default route) overlapping subnet, in any routing table. ns is the
// namespace to read, "" for the root namespace (the one New checks). It only
// reads `ip -j addr` and `ip -j route show table all`: it sends nothing.
func CheckRoot(ns string, subnet netip.Prefix) error {
	read := func(args ...string) ([]byte, error) {
		if ns != "" {
			args = append([]string{"-n", ns}, args...)
		}
		out, err := exec.Command("ip", append([]string{"-j"}, args...)...).Output()
		if err != nil {
			return nil, fmt.Errorf("check root: ip %s: %w", strings.Join(args, " "), err)
		}
		return out, nil
	}
	addrs, err := read("addr", "show")
	if err != nil {
		return err
	}
	routes, err := read("route", "show", "table", "all")
	if err != nil {
		return err
	}
	return checkSubnet(addrs, routes, subnet)
}

// ipAddr is the part of `ip -j addr` output the check reads.
type ipAddr struct {
	IfName   string `json:"ifname"`
	AddrInfo []struct {
		Local     string `json:"local"`
		PrefixLen int    `json:"prefixlen"`
	} `json:"addr_info"`
}

// ipRoute is the part of `ip -j route` output the check reads.
type ipRoute struct {
	Type  string `json:"type"`
	Dst   string `json:"dst"`
	Dev   string `json:"dev"`
	Table string `json:"table"`
}

// checkSubnet is the pure part of CheckRoot: addrs and routes are the JSON
// output of `ip -j addr show` and `ip -j route show table all`.
func checkSubnet(addrs, routes []byte, subnet netip.Prefix) error {
	var as []ipAddr
	if err := json.Unmarshal(addrs, &as); err != nil {
		return fmt.Errorf("check root: ip -j addr: %w", err)
	}
	var rs []ipRoute
	if err := json.Unmarshal(routes, &rs); err != nil {
		return fmt.Errorf("check root: ip -j route: %w", err)
	}
	var found []string
	for _, a := range as {
		for _, ai := range a.AddrInfo {
			ip, err := netip.ParseAddr(ai.Local)
			if err != nil {
				return fmt.Errorf("check root: address %q on %s: %w", ai.Local, a.IfName, err)
			}
			p, err := ip.Prefix(ai.PrefixLen)
			if err != nil {
				return fmt.Errorf("check root: address %s/%d on %s: %w", ai.Local, ai.PrefixLen, a.IfName, err)
			}
			if p.Overlaps(subnet) {
				found = append(found, fmt.Sprintf("address %s/%d on %s", ai.Local, ai.PrefixLen, a.IfName))
			}
		}
	}
	for _, r := range rs {
		if r.Dst == "default" || r.Dst == "" {
			continue // the default route is why the rule exists; it is expected
		}
		p, err := parseDst(r.Dst)
		if err != nil {
			return fmt.Errorf("check root: route %q: %w", r.Dst, err)
		}
		if p.Bits() > 0 && p.Overlaps(subnet) {
			table := r.Table
			if table == "" {
				table = "main"
			}
			found = append(found, fmt.Sprintf("route %s %s dev %s table %s", r.Type, r.Dst, r.Dev, table))
		}
	}
	if len(found) > 0 {
		return fmt.Errorf("check root: %w: %s has %s; remove them or choose another Config.Subnet",
			ErrSubnetInRoot, subnet, strings.Join(found, ", "))
	}
	return nil
}

// parseDst parses a route destination: a prefix, or an address meaning a
// single host.
func parseDst(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}
