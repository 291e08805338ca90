package node

import (
	"io/fs"
	"os"
	"path"
	"strings"
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
}

// staticDenied are extensions never sent as files: PHP source and its cousins,
// and files that commonly hold secrets or logs.
var staticDenied = map[string]bool{
	".php": true, ".phtml": true, ".phar": true, ".php5": true, ".php7": true, ".phps": true, ".inc": true,
	".sql": true, ".log": true, ".ini": true, ".sh": true, ".bak": true, ".swp": true,
}

// resolve maps a request path to a route with WordPress front-controller
// semantics (like try_files $uri $uri/ /index.php?$args): existing PHP
// scripts run, existing files are served, directories run their index.php,
// everything else goes to /index.php. Nothing outside the docroot, no
// dotfile, no PHP source and no wp-config.php is ever served.
func resolve(root *os.Root, urlPath string) route {
	if urlPath == "" || urlPath[0] != '/' || strings.ContainsAny(urlPath, "\x00\\") {
		return route{kind: routeNotFound}
	}
	p := path.Clean(urlPath)
	for seg := range strings.SplitSeq(p[1:], "/") {
		if seg == ".." {
			return route{kind: routeNotFound}
		}
		if strings.HasPrefix(seg, ".") && seg != ".well-known" {
			return route{kind: routeNotFound}
		}
	}
	rel := strings.TrimPrefix(p, "/")

	// /x.php or /x.php/path/info
	if i := phpScriptEnd(p); i > 0 {
		script := p[:i]
		if path.Base(script) == "wp-config.php" {
			return route{kind: routeNotFound}
		}
		if fi, err := root.Stat(strings.TrimPrefix(script, "/")); err == nil && fi.Mode().IsRegular() {
			if strings.HasPrefix(script, "/wp-content/uploads/") {
				return route{kind: routeForbidden} // uploaded files never run
			}
			return route{kind: routePHP, script: script, pathInfo: p[i:]}
		}
		return route{kind: routePHP, script: "/index.php"}
	}

	if rel == "" {
		return route{kind: routePHP, script: "/index.php"}
	}
	fi, err := root.Stat(rel)
	switch {
	case err == nil && fi.Mode().IsRegular():
		if staticDenied[strings.ToLower(path.Ext(p))] {
			return route{kind: routeNotFound}
		}
		return route{kind: routeStatic, file: rel}
	case err == nil && fi.IsDir():
		if !strings.HasSuffix(urlPath, "/") {
			return route{kind: routeRedirect}
		}
		if ifi, err := root.Stat(rel + "/index.php"); err == nil && ifi.Mode().IsRegular() {
			if strings.HasPrefix(p+"/", "/wp-content/uploads/") {
				return route{kind: routeForbidden}
			}
			return route{kind: routePHP, script: p + "/index.php"}
		}
		if ifi, err := root.Stat(rel + "/index.html"); err == nil && ifi.Mode().IsRegular() {
			return route{kind: routeStatic, file: rel + "/index.html"}
		}
		return route{kind: routePHP, script: "/index.php"}
	case err != nil && !isNotExist(err):
		// A symlink escaping the docroot, a permission problem: never serve it.
		return route{kind: routeNotFound}
	}
	return route{kind: routePHP, script: "/index.php"}
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
