package release

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
)

// VersionFile is the core file that names WordPress's version.
const VersionFile = "wp-includes/version.php"

var wpVersionRE = regexp.MustCompile(`(?m)^\s*\$wp_version\s*=\s*['"]([^'"\r\n]{1,64})['"]\s*;`)

// CoreVersion is the $wp_version assigned in the content of
// wp-includes/version.php, "" when there is none.
func CoreVersion(versionPHP []byte) string {
	m := wpVersionRE.FindSubmatch(versionPHP)
	if m == nil {
		return ""
	}
	return string(m[1])
}

// headerBytes is how much of a file WordPress reads for its headers
// (get_file_data reads 8 KiB).
const headerBytes = 8 << 10

// Header is the value of a WordPress file header ("Plugin Name",
// "Version") in the first 8 KiB of data, as get_file_data reads it: a line
// holding "Name:" after optional comment characters; "" when absent.
func Header(data []byte, name string) string {
	if len(data) > headerBytes {
		data = data[:headerBytes]
	}
	data = bytes.ReplaceAll(data, []byte("\r"), []byte("\n"))
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		s := strings.TrimLeft(string(line), " \t/*#@")
		rest, ok := cutFold(s, name)
		if !ok {
			continue
		}
		rest = strings.TrimLeft(rest, " \t")
		if !strings.HasPrefix(rest, ":") {
			continue
		}
		v := strings.TrimSpace(rest[1:])
		v = strings.TrimSpace(strings.TrimSuffix(v, "*/"))
		return v
	}
	return ""
}

func cutFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return "", false
	}
	return s[len(prefix):], true
}

// Compare orders two version strings like PHP's version_compare for the
// forms WordPress and its plugins use ("6.1.9", "6.2", "6.2-RC1",
// "1.0.0-beta"): numeric parts compare as numbers, a missing part is 0, and
// a pre-release suffix sorts before the release. It returns -1, 0 or +1.
func Compare(a, b string) int {
	pa, sa := splitVersion(a)
	pb, sb := splitVersion(b)
	for i := range max(len(pa), len(pb)) {
		var x, y int
		if i < len(pa) {
			x = pa[i]
		}
		if i < len(pb) {
			y = pb[i]
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	switch {
	case sa == sb:
		return 0
	case sa == "":
		return 1 // a release after its pre-releases
	case sb == "":
		return -1
	case sa < sb:
		return -1
	}
	return 1
}

// splitVersion splits "6.2.1-RC1" into [6 2 1] and "rc1".
func splitVersion(v string) ([]int, string) {
	v = strings.TrimSpace(v)
	num, suffix := v, ""
	if i := strings.IndexAny(v, "-+_ "); i >= 0 {
		num, suffix = v[:i], strings.ToLower(v[i+1:])
	}
	var parts []int
	for p := range strings.SplitSeq(num, ".") {
		// a part like "2beta" counts its leading digits; the rest is a suffix
		j := 0
		for j < len(p) && p[j] >= '0' && p[j] <= '9' {
			j++
		}
		n, _ := strconv.Atoi(p[:j])
		parts = append(parts, n)
		if j < len(p) && suffix == "" {
			suffix = strings.ToLower(p[j:])
		}
	}
	return parts, suffix
}

// Major is the major line of a WordPress version: "6.1" for "6.1.9"
// (WordPress's major releases are X.Y; X.Y.Z are minor and security).
func Major(v string) string {
	p, _ := splitVersion(v)
	for len(p) < 2 {
		p = append(p, 0)
	}
	return strconv.Itoa(p[0]) + "." + strconv.Itoa(p[1])
}

var wpDBVersionRE = regexp.MustCompile(`(?m)^\s*\$wp_db_version\s*=\s*([0-9]{1,12})\s*;`)

// DBVersion is the $wp_db_version assigned in wp-includes/version.php, 0
// when there is none.
func DBVersion(versionPHP []byte) int {
	m := wpDBVersionRE.FindSubmatch(versionPHP)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// Line is the major line of version v of a component of kind, the part
// an automatic "minor" update keeps (docs/adr/0023-releases.md):
//
//   - core: X.Y, as Major ("6.1" for "6.1.9"; WordPress's major releases
//     are X.Y, its minor and security releases X.Y.Z);
//   - a plugin or a theme: the first number ("5" for "5.0.2", "22" for
//     "22.1"). Their versions are not semver and follow no common rule;
//     the first number is the one most of them bump for a breaking
//     release, and a plugin that bumps it every release (22.1 → 23.0)
//     only ever updates when asked, which errs on the side of asking.
//
// Versions compare like Compare: "2" and "2.0" are on the same line.
func Line(kind Kind, v string) string {
	if kind == KindCore {
		return Major(v)
	}
	p, _ := splitVersion(v)
	return strconv.Itoa(p[0])
}

// PreRelease says whether v carries a pre-release or build suffix
// ("6.2-RC1", "2.0beta", "1.0-dev"): automatic updates never take one.
func PreRelease(v string) bool {
	_, suffix := splitVersion(v)
	return suffix != ""
}
