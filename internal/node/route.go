package node

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/scalepress/scalepress/internal/sitepath"
)

// routeKind is what the agent does with a request path.
type routeKind int

const (
	routePHP      routeKind = iota // run a script through FastCGI
	routeStatic                    // serve a file from the docroot
	routeRedirect                  // directory without trailing slash
	routeNotFound
	routeForbidden
)

// route is the decision for one path.
type route struct {
	kind     routeKind
	script   string // routePHP: docroot-relative script, e.g. /index.php
	pathInfo string // routePHP: what follows the script, e.g. /a/b
	file     string // routeStatic: docroot-relative file
	// missing: the path names nothing that exists (a script, a file, a
	// directory's index), so it went to the front controller; the tree
	// may be half replaced at that moment (gate.go).
	missing bool
}

// resolve maps a request path to a route with WordPress front-controller
// semantics (like try_files $uri $uri/ /index.php?$args): existing PHP
// scripts run, existing files are served, directories run their index.php,
// everything else goes to /index.php. Nothing outside the docroot and
// nothing sitepath denies (dotfiles, PHP source, wp-config.php, dumps,
// logs, backup copies) is ever served: a denied name gets 403 whether or not
// it exists, so the edge never looks for it elsewhere. Nothing under
// uploads runs; runnable checks a script's resolved path too.
func resolve(root *os.Root, urlPath string) route {
	if urlPath == "" || urlPath[0] != '/' || strings.ContainsAny(urlPath, "\x00\\") {
		return route{kind: routeNotFound}
	}
	p := path.Clean(urlPath)
	rel := strings.TrimPrefix(p, "/")

	// /x.php or /x.php/path/info
	if i := phpScriptEnd(p); i > 0 {
		script := p[:i]
		if strings.EqualFold(path.Base(script), "wp-config.php") || sitepath.Denied(path.Dir(script)) ||
			underUploads(script) {
			return route{kind: routeForbidden} // uploaded files never run, whether they exist or not
		}
		if fi, err := root.Stat(strings.TrimPrefix(script, "/")); err == nil && fi.Mode().IsRegular() {
			return route{kind: routePHP, script: script, pathInfo: p[i:]}
		}
		return route{kind: routePHP, script: "/index.php", missing: true}
	}
	if sitepath.Denied(p) {
		return route{kind: routeForbidden}
	}

	if rel == "" {
		return route{kind: routePHP, script: "/index.php"}
	}
	fi, err := root.Stat(rel)
	switch {
	case err == nil && fi.Mode().IsRegular():
		return route{kind: routeStatic, file: rel}
	case err == nil && fi.IsDir():
		if !strings.HasSuffix(urlPath, "/") {
			return route{kind: routeRedirect}
		}
		if ifi, err := root.Stat(rel + "/index.php"); err == nil && ifi.Mode().IsRegular() {
			if underUploads(p + "/") {
				return route{kind: routeForbidden}
			}
			return route{kind: routePHP, script: p + "/index.php"}
		}
		if ifi, err := root.Stat(rel + "/index.html"); err == nil && ifi.Mode().IsRegular() {
			return route{kind: routeStatic, file: rel + "/index.html"}
		}
		return route{kind: routePHP, script: "/index.php", missing: true}
	case err != nil && !isNotExist(err):
		// A symlink escaping the docroot, a permission problem: never serve it.
		return route{kind: routeNotFound}
	}
	return route{kind: routePHP, script: "/index.php", missing: true}
}

// uploadsDir is where WordPress writes uploaded files, relative to the docroot.
const uploadsDir = "wp-content/uploads"

// underUploads reports whether the URL path p is in the uploads directory.
func underUploads(p string) bool {
	return len(p) > len(uploadsDir)+1 && strings.EqualFold(p[1:len(uploadsDir)+2], uploadsDir+"/")
}

// runnable returns the resolved file name of script (a docroot-relative
// URL path from resolve) for SCRIPT_FILENAME, or ok false when it must not
// run: it resolves outside the docroot or into the uploads directory (a
// symlink to an uploaded file, a symlinked directory). php-fpm gets the
// resolved name, so it opens what was checked, not a path it resolves anew.
// realDocroot is the docroot with its own symlinks resolved.
func runnable(realDocroot, script string) (string, bool) {
	file, err := filepath.EvalSymlinks(filepath.Join(realDocroot, filepath.FromSlash(script)))
	if err != nil || !within(realDocroot, file) {
		return "", false
	}
	uploads := filepath.Join(realDocroot, uploadsDir)
	if real, err := filepath.EvalSymlinks(uploads); err == nil {
		uploads = real // uploads may itself be a link (to a shared disk)
	}
	if within(uploads, file) {
		return "", false
	}
	return file, true
}

// within reports whether file is dir or below it.
func within(dir, file string) bool {
	return file == dir || strings.HasPrefix(file, dir+string(filepath.Separator))
}

// phpScriptEnd returns the index just past the first ".php" segment end
// (followed by "/" or the end of the path), or -1.
func phpScriptEnd(p string) int {
	off := 0
	for {
		i := strings.Index(p[off:], ".php")
		if i < 0 {
			return -1
		}
		end := off + i + 4
		if end == len(p) || p[end] == '/' {
			return end
		}
		off = end
	}
}

func isNotExist(err error) bool {
	return err != nil && (os.IsNotExist(err) || errorsIs(err, fs.ErrNotExist))
}
