package throttle

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"path"
	"strings"
)

// MaxPrefix is the most of a login request's body the edge reads to find
// the user name and count the attempts; the rest streams to the node
// unread. A login form is a few hundred bytes; an xmlrpc multicall larger
// than this is refused (ErrTooLarge), so every call it carries is counted.
const MaxPrefix = 64 << 10

// Kind is what sort of login a request is.
type Kind string

const (
	KindNone    Kind = ""
	KindWPLogin Kind = "wp-login" // POST wp-login.php: the login, lost-password and register forms
	KindXMLRPC  Kind = "xmlrpc"   // POST xmlrpc.php
	KindBasic   Kind = "basic"    // any other request with HTTP Basic credentials (application passwords)
)

// Classify says which login, if any, r is. The path is matched on any
// segment, as the node runs /wp-login.php/extra and /blog/xmlrpc.php too.
func Classify(r *http.Request) Kind {
	if r.Method == http.MethodPost {
		if k := loginPath(r.URL.Path); k != KindNone {
			return k
		}
	}
	if auth := r.Header["Authorization"]; len(auth) > 0 && len(auth[0]) > 6 && strings.EqualFold(auth[0][:6], "basic ") {
		return KindBasic
	}
	return KindNone
}

func loginPath(p string) Kind {
	p = path.Clean("/" + p)
	for p != "/" {
		seg := path.Base(p)
		switch {
		case strings.EqualFold(seg, "wp-login.php"):
			return KindWPLogin
		case strings.EqualFold(seg, "xmlrpc.php"):
			return KindXMLRPC
		}
		p = path.Dir(p)
	}
	return KindNone
}

// BasicUser is the user name of the request's HTTP Basic credentials.
func BasicUser(h http.Header) (string, bool) {
	auth := h.Get("Authorization")
	const prefix = "basic "
	if len(auth) < len(prefix) || !strings.EqualFold(auth[:len(prefix)], prefix) {
		return "", false
	}
	dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(auth[len(prefix):]))
	if err != nil {
		return "", true // credentials all the same: WordPress will refuse them
	}
	user, _, _ := strings.Cut(string(dec), ":")
	return user, true
}

// Login is what a login request's body prefix says.
type Login struct {
	User string // the user name tried; "" when not found
	// Calls is the password attempts the request carries: 1 for a form,
	// each call that takes credentials for xmlrpc (0 for a pingback).
	Calls     int
	Multicall bool
}

// ErrTooLarge is an xmlrpc multicall longer than MaxPrefix: its calls
// cannot all be counted.
var ErrTooLarge = errors.New("xmlrpc system.multicall larger than the edge reads")

// ErrUnreadable is an xmlrpc body that is not XML-RPC the edge can read
// within MaxPrefix; WordPress would refuse it too.
var ErrUnreadable = errors.New("xmlrpc body is not a readable XML-RPC call")

// ParseForm reads the user name from a wp-login.php form body prefix
// (truncated: the body went on): log (the login form) or user_login (lost
// password, register). Like PHP, the last of repeated fields wins.
func ParseForm(contentType string, prefix []byte, truncated bool) Login {
	l := Login{Calls: 1}
	mt, params, _ := mime.ParseMediaType(contentType)
	var get func(string) []string
	switch mt {
	case "multipart/form-data":
		get = multipartFields(prefix, params["boundary"])
	default: // PHP reads urlencoded bodies whatever the type says
		s := string(prefix)
		if truncated {
			if i := strings.LastIndexByte(s, '&'); i >= 0 {
				s = s[:i] // the last field may be cut
			} else {
				s = ""
			}
		}
		v, _ := url.ParseQuery(s) // the fields that parse
		get = func(k string) []string { return v[k] }
	}
	for _, k := range []string{"user_login", "log"} {
		if vv := get(k); len(vv) > 0 {
			l.User = vv[len(vv)-1]
		}
	}
	return l
}

// multipartFields reads the small fields of a multipart body prefix.
func multipartFields(prefix []byte, boundary string) func(string) []string {
	fields := map[string][]string{}
	if boundary != "" {
		mr := multipart.NewReader(bytes.NewReader(prefix), boundary)
		for range 64 {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			b, err := io.ReadAll(io.LimitReader(p, 1024))
			if err != nil {
				break
			}
			if name := p.FormName(); name != "" && p.FileName() == "" {
				fields[name] = append(fields[name], string(b))
			}
		}
	}
	return func(k string) []string { return fields[k] }
}
