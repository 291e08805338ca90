package geodns

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// errOutOfZone marks an absolute name outside the zone; allowed for name
// servers, the SOA and CNAME targets, not for owner names.
var errOutOfZone = errors.New("outside the zone")

// canonicalZone returns z lower-cased and fully qualified.
func canonicalZone(z string) (string, error) {
	if z == "" {
		return "", errors.New(`is empty; set the zone served, e.g. "example.test."`)
	}
	if z == "." {
		return "", errors.New("the root zone cannot be served")
	}
	fq := strings.ToLower(dns.Fqdn(z))
	if err := checkName(fq); err != nil {
		return "", fmt.Errorf("%q: %w", z, err)
	}
	return fq, nil
}

// absName turns a name relative to zone ("www", "@") or absolute into a
// lower-case fully qualified name. An absolute name outside the zone is
// returned with an error wrapping errOutOfZone.
func absName(name, zone string) (string, error) {
	var fq string
	switch {
	case name == "" || name == "@":
		return zone, nil
	case strings.HasSuffix(name, "."):
		fq = strings.ToLower(name)
	default:
		fq = strings.ToLower(name) + "." + zone
	}
	if err := checkName(fq); err != nil {
		return "", fmt.Errorf("%q: %w", name, err)
	}
	if !dns.IsSubDomain(zone, fq) {
		return fq, fmt.Errorf("%q is %w %s", name, errOutOfZone, zone)
	}
	return fq, nil
}

// checkName accepts host-like names: letters, digits, '-' and '_' in labels
// of 1 to 63 bytes, 255 bytes in all.
func checkName(fq string) error {
	if _, ok := dns.IsDomainName(fq); !ok || len(fq) > 255 {
		return errors.New("is not a valid domain name")
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(fq, "."), ".") {
		if label == "" || len(label) > 63 {
			return errors.New("has an empty or too long label")
		}
		if label == "*" {
			return errors.New("wildcards are not supported")
		}
		for i := 0; i < len(label); i++ {
			b := label[i]
			if !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '-' || b == '_') {
				return fmt.Errorf("has the character %q; use letters, digits, '-' and '_'", b)
			}
		}
	}
	return nil
}

// recordValue checks and canonicalises a record's value for its type.
func recordValue(rtype, value, zone string) (string, error) {
	switch rtype {
	case "A":
		ip, err := netip.ParseAddr(value)
		if err != nil || !ip.Is4() {
			return "", fmt.Errorf("%q is not an IPv4 address", value)
		}
		return ip.String(), nil
	case "AAAA":
		ip, err := netip.ParseAddr(value)
		if err != nil || !ip.Is6() || ip.Is4In6() || ip.Zone() != "" {
			return "", fmt.Errorf("%q is not an IPv6 address", value)
		}
		return ip.String(), nil
	case "CNAME":
		if value == "" {
			return "", errors.New("is empty; give the target name")
		}
		target, err := absName(value, zone)
		if err != nil && !errors.Is(err, errOutOfZone) {
			return "", err
		}
		return target, nil
	case "TXT":
		if len(value) > 4000 {
			return "", fmt.Errorf("is %d bytes; at most 4000 are supported", len(value))
		}
		return value, nil
	default:
		return "", fmt.Errorf("type %q is not supported", rtype)
	}
}
