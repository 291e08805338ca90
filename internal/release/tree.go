// Package release models the releases of a site's code (docs/adr/0023-releases.md):
// which files a release covers (WordPress core, plugins, themes), what it
// holds (core version, plugins and themes with their versions), how a
// release source (a directory, a zip or a tarball) is read safely, how a
// rollout is cut into units of file sync, and where releases are kept.
package release

import (
	"cmp"
	"path"
	"slices"
	"strings"
)

// File is one entry of a release's tree, its path relative to the docroot.
type File struct {
	Path string `json:"path"`
	Dir  bool   `json:"dir,omitempty"`
	Mode uint32 `json:"mode"`
	Size int64  `json:"size,omitempty"`
	Hash string `json:"hash,omitempty"`
}

// The places of a docroot that releases cover.
const (
	PluginsDir = "wp-content/plugins"
	ThemesDir  = "wp-content/themes"
)

// Kind is what an update replaces.
type Kind string

// The kinds of update.
const (
	KindCore   Kind = "core"
	KindPlugin Kind = "plugin"
	KindTheme  Kind = "theme"
)

// isRootCoreFile says whether a file at the top of the docroot is one of
// WordPress's own (index.php, license.txt, readme.html, xmlrpc.php,
// wp-*.php): other files there (a site verification file, robots.txt) are
// the operator's and no release touches them. wp-config.php is never part
// of a release.
func isRootCoreFile(name string) bool {
	switch {
	case name == "wp-config.php":
		return false
	case name == "index.php", name == "license.txt", name == "readme.html", name == "xmlrpc.php":
		return true
	}
	return strings.HasPrefix(name, "wp-") && strings.HasSuffix(name, ".php")
}

// IsCore says whether p is part of WordPress core as a release replaces it:
// wp-admin/, wp-includes/ and the core files at the top. wp-content is not
// (WordPress's own core update leaves it too).
func IsCore(p string) bool {
	top, _, nested := strings.Cut(p, "/")
	if top == "wp-admin" || top == "wp-includes" {
		return true
	}
	return !nested && isRootCoreFile(top)
}

// Managed says whether p belongs to a release: core, or under the plugins
// or themes directories (not the directories themselves).
func Managed(p string) bool {
	return IsCore(p) || under(p, PluginsDir) || under(p, ThemesDir)
}

// under says whether p lies strictly below dir.
func under(p, dir string) bool { return strings.HasPrefix(p, dir+"/") }

// within says whether p is dir or lies below it.
func within(p, dir string) bool { return p == dir || under(p, dir) }

// UnitOf is the unit of file sync p is replaced with: "wp-admin",
// "wp-includes", a plugin's or a theme's directory; "" for a file that is
// a unit of its own (a core file at the top, a single-file plugin).
func UnitOf(p string) string {
	top, _, _ := strings.Cut(p, "/")
	if top == "wp-admin" || top == "wp-includes" {
		return top
	}
	for _, d := range []string{PluginsDir, ThemesDir} {
		if rest, ok := strings.CutPrefix(p, d+"/"); ok {
			name, _, nested := strings.Cut(rest, "/")
			if nested || !strings.Contains(name, ".") {
				return d + "/" + name
			}
			// a file directly in plugins/ (hello.php, index.php)
			return ""
		}
	}
	return ""
}

// Scope is the part of the tree an update of kind and name replaces.
func Scope(kind Kind, name string) func(p string) bool {
	switch kind {
	case KindCore:
		return IsCore
	case KindPlugin:
		return func(p string) bool { return within(p, PluginsDir+"/"+name) }
	case KindTheme:
		return func(p string) bool { return within(p, ThemesDir+"/"+name) }
	}
	return func(string) bool { return false }
}

// Filter returns the files of tree that keep says to keep.
func Filter(tree []File, keep func(p string) bool) []File {
	var out []File
	for _, f := range tree {
		if keep(f.Path) {
			out = append(out, f)
		}
	}
	return out
}

// Replace returns tree with the files in scope replaced by staged.
func Replace(tree []File, scope func(p string) bool, staged []File) []File {
	out := Filter(tree, func(p string) bool { return !scope(p) })
	out = append(out, staged...)
	sortTree(out)
	return out
}

func sortTree(t []File) {
	slices.SortFunc(t, func(a, b File) int { return cmp.Compare(a.Path, b.Path) })
}

// Step is one push of a rollout: Unit's tree as it must be afterwards (Put
// holds all of it; the directory Unit itself first), and the paths to
// remove, deepest first. For Unit "" the step holds single files: Put only
// those that change.
type Step struct {
	Unit   string
	Put    []File
	Remove []string
}

// unitOrder puts core's units first (wp-includes, then wp-admin, then the
// files at the top), then plugins and themes by path.
func unitOrder(a, b string) int {
	rank := func(u string) int {
		switch {
		case u == "wp-includes":
			return 0
		case u == "wp-admin":
			return 1
		case u == "":
			return 2
		}
		return 3
	}
	if c := cmp.Compare(rank(a), rank(b)); c != 0 {
		return c
	}
	return cmp.Compare(a, b)
}

// Plan is the steps that turn the managed tree from into to: one per unit
// whose content differs, plus one for the single files that differ.
func Plan(from, to []File) []Step {
	type pair struct{ from, to map[string]File }
	units := map[string]*pair{}
	get := func(u string) *pair {
		p := units[u]
		if p == nil {
			p = &pair{map[string]File{}, map[string]File{}}
			units[u] = p
		}
		return p
	}
	for _, f := range from {
		get(UnitOf(f.Path)).from[f.Path] = f
	}
	for _, f := range to {
		get(UnitOf(f.Path)).to[f.Path] = f
	}
	var steps []Step
	for u, p := range units {
		st := Step{Unit: u}
		changed := false
		for path, f := range p.to {
			old, ok := p.from[path]
			same := ok && old == f
			if !same {
				changed = true
			}
			if u != "" || !same {
				st.Put = append(st.Put, f)
			}
		}
		for path := range p.from {
			if _, ok := p.to[path]; !ok {
				st.Remove = append(st.Remove, path)
				changed = true
			}
		}
		if !changed {
			continue
		}
		sortTree(st.Put)
		slices.SortFunc(st.Remove, func(a, b string) int { return cmp.Compare(b, a) }) // children before parents
		if u != "" && len(st.Put) > 0 && st.Put[0].Path != u {
			st.Put = slices.Insert(st.Put, 0, File{Path: u, Dir: true, Mode: 0o755})
		}
		steps = append(steps, st)
	}
	slices.SortFunc(steps, func(a, b Step) int { return unitOrder(a.Unit, b.Unit) })
	return steps
}

// Component is a plugin or a theme as a release lists it.
type Component struct {
	Name    string `json:"name"` // directory (or file) name under plugins/ or themes/
	Title   string `json:"title,omitempty"`
	Version string `json:"version,omitempty"`
}

// Inventory is what a release holds.
type Inventory struct {
	Core    string      `json:"core"`
	Plugins []Component `json:"plugins"`
	Themes  []Component `json:"themes"`
}

// HeaderFiles are the files of tree whose content Inspect reads: the core
// version file, the PHP files at the top of each plugin (or a single-file
// plugin) and each theme's style.css.
func HeaderFiles(tree []File) []File {
	var out []File
	for _, f := range tree {
		if f.Dir {
			continue
		}
		switch {
		case f.Path == VersionFile:
		case under(f.Path, PluginsDir) && path.Ext(f.Path) == ".php" && strings.Count(f.Path, "/") <= 3:
		case under(f.Path, ThemesDir) && path.Base(f.Path) == "style.css" && strings.Count(f.Path, "/") == 3:
		default:
			continue
		}
		out = append(out, f)
	}
	return out
}

// Inspect lists what tree holds, reading the content of its HeaderFiles
// (by path) from content.
func Inspect(tree []File, content map[string][]byte) Inventory {
	inv := Inventory{Plugins: []Component{}, Themes: []Component{}}
	inv.Core = CoreVersion(content[VersionFile])
	plugins := map[string]Component{}
	for _, f := range HeaderFiles(tree) {
		data := content[f.Path]
		switch {
		case under(f.Path, PluginsDir):
			rest := strings.TrimPrefix(f.Path, PluginsDir+"/")
			name, _, _ := strings.Cut(rest, "/")
			title := Header(data, "Plugin Name")
			if title == "" {
				continue
			}
			if _, seen := plugins[name]; !seen { // the first file with a header, by path
				plugins[name] = Component{Name: name, Title: title, Version: Header(data, "Version")}
			}
		case under(f.Path, ThemesDir):
			title := Header(data, "Theme Name")
			if title == "" {
				continue
			}
			name := strings.Split(f.Path, "/")[2]
			inv.Themes = append(inv.Themes, Component{Name: name, Title: title, Version: Header(data, "Version")})
		}
	}
	for _, c := range plugins {
		inv.Plugins = append(inv.Plugins, c)
	}
	slices.SortFunc(inv.Plugins, func(a, b Component) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(inv.Themes, func(a, b Component) int { return cmp.Compare(a.Name, b.Name) })
	return inv
}

// Find is the component called name, and whether there is one.
func Find(cs []Component, name string) (Component, bool) {
	for _, c := range cs {
		if c.Name == name {
			return c, true
		}
	}
	return Component{}, false
}
