package phpfpm

import (
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ErrNotInstalled means no php-fpm binary was found.
var ErrNotInstalled = errors.New("phpfpm: php-fpm not installed: run scripts/install-deps.sh (Debian package php-fpm)")

// Binary finds php-fpm: php-fpm8.2 on PATH, else the highest-versioned
// /usr/sbin/php-fpm* (e.g. php-fpm8.3 over php-fpm8.2 over php-fpm).
func Binary() (string, error) {
	return findBinary(exec.LookPath, filepath.Glob)
}

func findBinary(lookPath func(string) (string, error), glob func(string) ([]string, error)) (string, error) {
	if p, err := lookPath("php-fpm8.2"); err == nil {
		return p, nil
	}
	matches, _ := glob("/usr/sbin/php-fpm*") // the pattern is valid
	best, bestVer := "", []int(nil)
	for _, m := range matches {
		ver, ok := parseVersion(strings.TrimPrefix(filepath.Base(m), "php-fpm"))
		if !ok {
			continue // php-fpm8.2.dpkg-dist and the like
		}
		if best == "" || slices.Compare(ver, bestVer) > 0 {
			best, bestVer = m, ver
		}
	}
	if best == "" {
		return "", ErrNotInstalled
	}
	return best, nil
}

// parseVersion parses "", "8", "8.2", ...; "" is the unversioned name.
func parseVersion(s string) ([]int, bool) {
	if s == "" {
		return []int{}, true
	}
	var v []int
	for _, part := range strings.Split(s, ".") {
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 || part == "" || part[0] == '+' {
			return nil, false
		}
		v = append(v, n)
	}
	return v, true
}
