// Package rolelog reads the logs the processes of an environment write
// under DIR/logs (one NAME.log per process): which roles have logs, the time
// of each line in the formats those processes use, the lines of several
// logs merged by time, and following them as they grow.
package rolelog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// ErrUnknownRole is Select's answer for a role without logs.
var ErrUnknownRole = errors.New("unknown role")

// Source is one process's log.
type Source struct {
	Name string // the process: controller, edge-1, node-2-php-fpm, db-1
	Role string // its role: controller, edge, php-fpm, db
	Path string
}

var (
	nodePart = regexp.MustCompile(`^node-\d+-(.+)$`) // node-1-php-fpm, node-1-filesync
	numbered = regexp.MustCompile(`^(.+)-\d+$`)      // edge-1, node-1, db-1
)

// RoleOf is the role of the process name.
func RoleOf(name string) string {
	if m := nodePart.FindStringSubmatch(name); m != nil {
		return m[1]
	}
	if m := numbered.FindStringSubmatch(name); m != nil {
		return m[1]
	}
	return name
}

// List returns the logs in dir, by name.
func List(dir string) ([]Source, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		return nil, fmt.Errorf("logs: %w", err)
	}
	var out []Source
	for _, p := range paths {
		if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		name := strings.TrimSuffix(filepath.Base(p), ".log")
		out = append(out, Source{Name: name, Role: RoleOf(name), Path: p})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Roles are the roles of srcs, sorted, each once.
func Roles(srcs []Source) []string {
	var out []string
	for _, s := range srcs {
		if !slices.Contains(out, s.Role) {
			out = append(out, s.Role)
		}
	}
	sort.Strings(out)
	return out
}

// Select returns the logs of role (every process of it), or of the one
// process named so; "" selects all. A name that is neither is
// ErrUnknownRole, with the roles that have logs.
func Select(srcs []Source, role string) ([]Source, error) {
	if role == "" {
		return srcs, nil
	}
	var out []Source
	for _, s := range srcs {
		if s.Role == role || s.Name == role {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		roles := Roles(srcs)
		if len(roles) == 0 {
			return nil, fmt.Errorf("%w %q: no role has logs yet", ErrUnknownRole, role)
		}
		return nil, fmt.Errorf("%w %q; roles with logs: %s", ErrUnknownRole, role, strings.Join(roles, ", "))
	}
	return out, nil
}
