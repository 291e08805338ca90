package release

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// ErrBadSource marks a release source refused for what it holds (the
// caller answers 400; nothing was changed).
var ErrBadSource = errors.New("bad release source")

// errNotKind marks Load's refusal of a source that is not the kind asked
// for (Identify then tries the next kind); it adds nothing to the message.
var errNotKind = errors.New("")

// Limits bound what a release source may unpack to (zip bombs).
type Limits struct {
	MaxFiles int   // entries
	MaxBytes int64 // uncompressed bytes, summed
}

// DefaultLimits fit WordPress core (about 3,000 files, 60 MB) many times over.
func DefaultLimits() Limits { return Limits{MaxFiles: 100_000, MaxBytes: 1 << 30} }

// Put stores one file's content and returns its SHA-256 (lowercase hex) and size.
type Put func(r io.Reader) (hash string, size int64, err error)

// Staged is a release source read into the store: its files as they go into
// the docroot and the header content Inspect needs.
type Staged struct {
	Files   []File
	Content map[string][]byte // HeaderFiles' first 8 KiB, by docroot path
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// CheckName refuses a plugin or theme name that is not one directory name.
func CheckName(kind Kind, name string) error {
	if kind == KindCore {
		if name != "" {
			return fmt.Errorf("%w: core takes no name", ErrBadSource)
		}
		return nil
	}
	if !nameRE.MatchString(name) || strings.Contains(name, "..") {
		return fmt.Errorf("%w: %s name %q: use the directory name under wp-content/%ss (letters, digits, '.', '_', '-')", ErrBadSource, kind, name, kind)
	}
	return nil
}

// entry is one file or directory of a source, by its path in the source.
type entry struct {
	name string
	dir  bool
	open func() (io.ReadCloser, error)
}

// Load reads the release source from (a directory, a .zip, a .tar.gz,
// .tgz or .tar) for an update of kind and name, stores every file with put,
// and returns the files as they go into the docroot. It refuses, with an
// error matching ErrBadSource that names the entry: paths that are absolute
// or climb out (zip-slip), symlinks, hard links and device files, more
// than lim, a core source without wp-includes/version.php, a plugin
// without a PHP file carrying a "Plugin Name" header, a theme without a
// style.css carrying "Theme Name". A single directory holding everything
// (wordpress/, akismet/) is stripped. Modes are normalised: 0755 for
// directories, 0644 for files.
func Load(from string, kind Kind, name string, lim Limits, put Put) (Staged, error) {
	if err := CheckName(kind, name); err != nil {
		return Staged{}, err
	}
	entries, closeSrc, err := list(from)
	if err != nil {
		return Staged{}, err
	}
	defer closeSrc()
	if len(entries) > lim.MaxFiles {
		return Staged{}, fmt.Errorf("%w: %s has more than %d entries", ErrBadSource, from, lim.MaxFiles)
	}
	seen := map[string]bool{}
	for _, e := range entries {
		if seen[e.name] {
			return Staged{}, fmt.Errorf("%w: %s holds %q twice", ErrBadSource, from, e.name)
		}
		seen[e.name] = true
	}
	strip := commonDir(entries)
	var prefix string
	switch kind {
	case KindCore:
		if !seen[VersionFile] && (strip == "" || !seen[strip+"/"+VersionFile]) {
			return Staged{}, fmt.Errorf("%w: %s is not WordPress: it has no %s", ErrBadSource, from, VersionFile)
		}
		if seen[VersionFile] {
			strip = ""
		}
	case KindPlugin:
		prefix = PluginsDir + "/" + name
	case KindTheme:
		prefix = ThemesDir + "/" + name
	}
	st := Staged{Content: map[string][]byte{}}
	var total int64
	for _, e := range entries {
		rel := e.name
		if strip != "" {
			if rel == strip {
				continue
			}
			rel = strings.TrimPrefix(rel, strip+"/")
		}
		dst := rel
		if prefix != "" {
			dst = prefix + "/" + rel
		}
		if kind == KindCore && !IsCore(dst) {
			continue // wp-content, wp-config.php, extras: not core's
		}
		if e.dir {
			st.Files = append(st.Files, File{Path: dst, Dir: true, Mode: 0o755})
			continue
		}
		f, err := storeEntry(e, put, lim.MaxBytes-total)
		if err != nil {
			return Staged{}, fmt.Errorf("%s: %s: %w", from, e.name, err)
		}
		total += f.Size
		f.Path = dst
		st.Files = append(st.Files, f)
	}
	if prefix != "" {
		st.Files = append(st.Files, File{Path: prefix, Dir: true, Mode: 0o755})
	}
	st.Files = withParents(st.Files)
	for _, f := range HeaderFiles(st.Files) {
		data, err := readHead(entries, f.Path, strip, prefix)
		if err != nil {
			return Staged{}, fmt.Errorf("%s: %w", from, err)
		}
		st.Content[f.Path] = data
	}
	inv := Inspect(st.Files, st.Content)
	switch {
	case kind == KindCore && inv.Core == "":
		return Staged{}, fmt.Errorf("%w: %s: %s assigns no $wp_version", ErrBadSource, from, VersionFile)
	case kind == KindPlugin:
		if _, ok := Find(inv.Plugins, name); !ok {
			return Staged{}, fmt.Errorf("%w%w: %s is not a WordPress plugin: no PHP file at its top carries a \"Plugin Name:\" header", ErrBadSource, errNotKind, from)
		}
	case kind == KindTheme:
		if _, ok := Find(inv.Themes, name); !ok {
			return Staged{}, fmt.Errorf("%w%w: %s is not a WordPress theme: it has no style.css with a \"Theme Name:\" header", ErrBadSource, errNotKind, from)
		}
	}
	return st, nil
}

// withParents adds the directories the files imply, and sorts.
func withParents(files []File) []File {
	have := map[string]bool{}
	for _, f := range files {
		have[f.Path] = true
	}
	for _, f := range files {
		for d := path.Dir(f.Path); d != "." && !have[d]; d = path.Dir(d) {
			if !Managed(d) {
				break // wp-content/plugins itself is not a release's
			}
			have[d] = true
			files = append(files, File{Path: d, Dir: true, Mode: 0o755})
		}
	}
	sortTree(files)
	return files
}

// readHead reads the first 8 KiB of the entry that went to docroot path p.
func readHead(entries []entry, p, strip, prefix string) ([]byte, error) {
	name := p
	if prefix != "" {
		name = strings.TrimPrefix(p, prefix+"/")
	}
	if strip != "" {
		name = strip + "/" + name
	}
	for _, e := range entries {
		if e.name != name {
			continue
		}
		rc, err := e.open()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(io.LimitReader(rc, headerBytes))
	}
	return nil, fmt.Errorf("%s: not found", name)
}

// storeEntry copies one file into the store, at most room bytes.
func storeEntry(e entry, put Put, room int64) (File, error) {
	rc, err := e.open()
	if err != nil {
		return File{}, err
	}
	defer rc.Close()
	lr := &io.LimitedReader{R: rc, N: room + 1}
	hash, size, err := put(lr)
	if err != nil {
		return File{}, err
	}
	if lr.N <= 0 {
		return File{}, fmt.Errorf("%w: the source unpacks to more than the limit", ErrBadSource)
	}
	return File{Mode: 0o644, Size: size, Hash: hash}, nil
}

// commonDir is the one directory everything lies in, "" when there is none
// or when a file lies at the top.
func commonDir(entries []entry) string {
	top := ""
	for _, e := range entries {
		first, _, nested := strings.Cut(e.name, "/")
		if !nested && !e.dir {
			return ""
		}
		if top == "" {
			top = first
		} else if top != first {
			return ""
		}
	}
	return top
}

// checkEntryName refuses a path that is absolute, climbs out, or is not
// clean: what an archive names is never trusted to stay in its directory.
func checkEntryName(name string) (string, error) {
	n := strings.TrimSuffix(name, "/")
	switch {
	case n == "" || n == ".":
		return "", fmt.Errorf("%w: an entry with an empty name", ErrBadSource)
	case strings.HasPrefix(n, "/"):
		return "", fmt.Errorf("%w: %q is an absolute path", ErrBadSource, name)
	case strings.ContainsAny(n, "\\\x00"):
		return "", fmt.Errorf("%w: %q has a backslash or NUL", ErrBadSource, name)
	case n == ".." || strings.HasPrefix(n, "../") || strings.Contains(n, "/../") || strings.HasSuffix(n, "/.."):
		return "", fmt.Errorf("%w: %q climbs out of the directory", ErrBadSource, name)
	case path.Clean(n) != n:
		return "", fmt.Errorf("%w: %q is not a clean path", ErrBadSource, name)
	}
	return n, nil
}

// list reads the entries of a directory or an archive.
func list(from string) ([]entry, func(), error) {
	fi, err := os.Stat(from)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBadSource, err)
	}
	if fi.IsDir() {
		es, err := listDir(from)
		return es, func() {}, err
	}
	lower := strings.ToLower(from)
	switch {
	case strings.HasSuffix(lower, ".zip"):
		return listZip(from)
	case strings.HasSuffix(lower, ".tar.gz"), strings.HasSuffix(lower, ".tgz"), strings.HasSuffix(lower, ".tar"):
		es, err := listTar(from)
		return es, func() {}, err
	}
	return nil, nil, fmt.Errorf("%w: %s is neither a directory nor a .zip, .tar.gz, .tgz or .tar", ErrBadSource, from)
}

func listDir(root string) ([]entry, error) {
	var out []entry
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch t := d.Type(); {
		case t&fs.ModeSymlink != 0:
			return fmt.Errorf("%w: %s is a symlink: copy the tree with its links resolved (cp -rL)", ErrBadSource, rel)
		case d.IsDir():
			out = append(out, entry{name: rel, dir: true})
		case t.IsRegular():
			out = append(out, entry{name: rel, open: func() (io.ReadCloser, error) { return os.Open(p) }})
		default:
			return fmt.Errorf("%w: %s is not a regular file or a directory", ErrBadSource, rel)
		}
		return nil
	})
	return out, err
}

func listZip(from string) ([]entry, func(), error) {
	zr, err := zip.OpenReader(from)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v", ErrBadSource, from, err)
	}
	var out []entry
	for _, f := range zr.File {
		name, err := checkEntryName(f.Name)
		if err != nil {
			zr.Close()
			return nil, nil, err
		}
		switch m := f.Mode(); {
		case m.IsDir():
			out = append(out, entry{name: name, dir: true})
		case m.IsRegular():
			out = append(out, entry{name: name, open: f.Open})
		default:
			zr.Close()
			return nil, nil, fmt.Errorf("%w: %q is a %s, not a regular file or a directory", ErrBadSource, f.Name, typeName(m))
		}
	}
	return out, func() { zr.Close() }, nil
}

// listTar reads a tarball's entries into memory up front (a tar stream
// cannot be reopened per entry); DefaultLimits bound it.
func listTar(from string) ([]entry, error) {
	f, err := os.Open(from)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSource, err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrBadSource, from, err)
		}
		r = gz
	}
	tr := tar.NewReader(r)
	lim := DefaultLimits()
	var out []entry
	var total int64
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrBadSource, from, err)
		}
		name, err := checkEntryName(h.Name)
		if err != nil {
			return nil, err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			out = append(out, entry{name: name, dir: true})
		case tar.TypeReg:
			total += h.Size
			if total > lim.MaxBytes || len(out) > lim.MaxFiles {
				return nil, fmt.Errorf("%w: %s unpacks to more than %d bytes or %d entries", ErrBadSource, from, lim.MaxBytes, lim.MaxFiles)
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %s: %v", ErrBadSource, from, h.Name, err)
			}
			out = append(out, entry{name: name, open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }})
		case tar.TypeLink:
			return nil, fmt.Errorf("%w: %q is a hard link, not a regular file or a directory", ErrBadSource, h.Name)
		default:
			return nil, fmt.Errorf("%w: %q is a %s, not a regular file or a directory", ErrBadSource, h.Name, typeName(h.FileInfo().Mode()))
		}
	}
	return out, nil
}

func typeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m&fs.ModeDevice != 0, m&fs.ModeCharDevice != 0:
		return "device"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	}
	return "special file (" + m.String() + ")"
}

// Identity is what a release archive holds: WordPress core, or the plugin
// or theme called Name, at Version.
type Identity struct {
	Kind    Kind
	Name    string
	Version string
}

// Discard is a Put that keeps nothing (it hashes): reading a source for
// what it is stores none of it.
func Discard(r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil)), n, err
}

// Identify reads the source from as Load would, storing nothing, and
// says what it is: core when it holds wp-includes/version.php (at its top
// or in its one directory); else a plugin or a theme named by the one
// directory everything lies in (as wordpress.org ships them:
// akismet.5.3.zip holds akismet/). Load's refusals apply (paths that
// escape, symlinks, limits, a plugin without a "Plugin Name:" header); a
// source that is none of the three is refused with ErrBadSource saying so.
func Identify(from string, lim Limits) (Identity, error) {
	entries, closeSrc, err := list(from)
	if err != nil {
		return Identity{}, err
	}
	top := commonDir(entries)
	core := false
	for _, e := range entries {
		core = core || e.name == VersionFile || top != "" && e.name == top+"/"+VersionFile
	}
	closeSrc()
	if core {
		st, err := Load(from, KindCore, "", lim, Discard)
		if err != nil {
			return Identity{}, err
		}
		return Identity{Kind: KindCore, Version: Inspect(st.Files, st.Content).Core}, nil
	}
	if top == "" {
		return Identity{}, fmt.Errorf("%w: %s is neither WordPress core (no %s) nor a plugin or a theme (everything in one directory named after it)", ErrBadSource, from, VersionFile)
	}
	if err := CheckName(KindPlugin, top); err != nil {
		return Identity{}, fmt.Errorf("%s: %w", from, err)
	}
	for _, kind := range []Kind{KindPlugin, KindTheme} {
		st, err := Load(from, kind, top, lim, Discard)
		if err != nil {
			if errors.Is(err, errNotKind) {
				continue // perhaps the other kind
			}
			return Identity{}, err
		}
		inv := Inspect(st.Files, st.Content)
		cs := inv.Plugins
		if kind == KindTheme {
			cs = inv.Themes
		}
		c, _ := Find(cs, top)
		return Identity{Kind: kind, Name: top, Version: c.Version}, nil
	}
	return Identity{}, fmt.Errorf("%w: %s is neither WordPress core (no %s), a plugin (no PHP file at the top of %s/ with a \"Plugin Name:\" header) nor a theme (no %s/style.css with a \"Theme Name:\" header)", ErrBadSource, from, VersionFile, top, top)
}
