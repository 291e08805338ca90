// Package fileperm says which mode every file and directory of a site tree
// has (docs/adr/0009-trust-model.md, "Least privilege"). The tree belongs to
// the sync agent's user; PHP, in the tree's group, may write only the
// writable parts (uploads, and plugins and themes while installs from
// wp-admin are allowed): those are group-writable, everything else is not.
// The same policy is applied where a tree is prepared, where a change is
// pushed, in the store and where a change is applied, so a mode never
// ping-pongs between nodes.
package fileperm

import (
	"io/fs"
	"strings"
)

// Writable are the parts of a WordPress tree PHP writes by default.
var Writable = []string{
	"wp-content/uploads", "wp-content/plugins", "wp-content/themes",
	"wp-content/upgrade", "wp-content/languages", "wp-content/cache",
}

// Locked are the only parts PHP writes when code is deployed another way
// (wordpress.lock_code).
var Locked = []string{"wp-content/uploads", "wp-content/cache"}

// Policy decides modes for one tree.
type Policy struct {
	// Writable are slash-separated, tree-relative paths PHP may write below
	// (the path itself included).
	Writable []string
}

// IsWritable reports whether PHP may write rel.
func (p Policy) IsWritable(rel string) bool {
	rel = strings.Trim(rel, "/")
	for _, w := range p.Writable {
		if rel == w || strings.HasPrefix(rel, w+"/") {
			return true
		}
	}
	return false
}

// Mode is the permission bits rel gets: directories 0775 where PHP writes,
// else 0755; files 0664 or 0644, with the execute bits kept when the owner
// has one (0775 / 0755). Nothing is ever writable by others, and no
// setuid, setgid or sticky bit is set.
func (p Policy) Mode(rel string, dir bool, perm fs.FileMode) fs.FileMode {
	w := p.IsWritable(rel)
	switch {
	case dir && w:
		return 0o775
	case dir:
		return 0o755
	case perm&0o100 != 0 && w:
		return 0o775
	case perm&0o100 != 0:
		return 0o755
	case w:
		return 0o664
	}
	return 0o644
}
