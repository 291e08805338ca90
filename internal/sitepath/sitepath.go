// Package sitepath decides which URL paths of a site are never served as
// files (docs/adr/0009-trust-model.md, "One deny rule"). The node agent, the
// edge's upload fallback and the files role's ServeFile all ask Denied, so
// that no way to a file serves what another way refuses.
package sitepath

import (
	"path"
	"strings"
)

// deniedExt are extensions (of the last path segment, lower case) never
// served as files: PHP source and its cousins, and files that commonly hold
// secrets, dumps, logs or server configuration.
var deniedExt = map[string]bool{
	".php": true, ".phtml": true, ".phar": true, ".phps": true, ".inc": true,
	".php3": true, ".php4": true, ".php5": true, ".php6": true, ".php7": true, ".php8": true,
	".sql": true, ".log": true, ".ini": true, ".sh": true, ".htaccess": true, ".htpasswd": true,
	// Editor and backup copies: wp-config.php.bak is wp-config.php in clear.
	".save": true, ".old": true, ".orig": true, ".bak": true, ".swp": true, ".swo": true,
}

// Denied reports whether the URL path p (as decoded by net/http) must never
// be served as a file. It decides on the cleaned path and ignores case:
//   - a segment starting with "." (dotfiles, .git/, .htaccess), except .well-known;
//   - a last segment named wp-config.php, with any extension in the list
//     above, ending in "~" (editor backups) or written #name# (autosaves).
//
// A PHP script path is denied too: PHP runs scripts, it never sends their
// source; whoever may run one decides that before asking Denied.
func Denied(p string) bool {
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	p = path.Clean(p) // no allocation when p is clean already
	if p == "/" {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] == '/' && p[i+1] == '.' {
			seg := p[i+1:]
			if j := strings.IndexByte(seg, '/'); j >= 0 {
				seg = seg[:j]
			}
			if !strings.EqualFold(seg, ".well-known") {
				return true
			}
		}
	}
	last := p[strings.LastIndexByte(p, '/')+1:]
	if strings.HasSuffix(last, "~") || len(last) > 1 && last[0] == '#' && last[len(last)-1] == '#' {
		return true
	}
	if strings.EqualFold(last, "wp-config.php") {
		return true
	}
	i := strings.LastIndexByte(last, '.')
	if i < 0 || len(last)-i > len(".htaccess")+1 {
		return false
	}
	var b [16]byte // extensions are short: lower-case without allocating
	ext := b[:0]
	for j := i; j < len(last); j++ {
		c := last[j]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		ext = append(ext, c)
	}
	return deniedExt[string(ext)]
}
