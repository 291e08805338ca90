package throttle

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// ErrMixedUsers is an xmlrpc multicall whose calls name more than one user:
// each would have to be counted against its own name. No client needs it.
var ErrMixedUsers = errors.New("xmlrpc system.multicall with credentials for more than one user")

// ParseXMLRPC reads an xmlrpc.php body prefix (truncated: the body went on)
// and counts the calls that take a password: one for a single call,
// one per inner call for system.multicall (whose whole body must be in the
// prefix). WordPress checks the credentials of every call of a multicall,
// so a single request can carry hundreds of guesses.
func ParseXMLRPC(prefix []byte, truncated bool) (Login, error) {
	if truncated {
		// Cut before the last tag, so that the cut is never inside a
		// token or a character.
		if i := bytes.LastIndexByte(prefix, '<'); i >= 0 {
			prefix = prefix[:i]
		}
	}
	root, err := parseTree(prefix)
	if err != nil && !(truncated && errors.Is(err, io.ErrUnexpectedEOF)) {
		return Login{}, fmt.Errorf("%w: %v", ErrUnreadable, err)
	}
	if root == nil || root.name != "methodCall" {
		return Login{}, fmt.Errorf("%w: no methodCall", ErrUnreadable)
	}
	mn := root.child("methodName")
	if mn == nil || !mn.closed {
		return Login{}, fmt.Errorf("%w: no methodName", ErrUnreadable)
	}
	method := strings.TrimSpace(mn.text.String())
	params := root.child("params").values("param")
	if method != "system.multicall" {
		n, user := call(method, params)
		return Login{User: user, Calls: n}, nil
	}
	if truncated || err != nil {
		return Login{}, ErrTooLarge
	}
	l := Login{Multicall: true}
	var calls []*elem
	if len(params) > 0 {
		calls = params[0].arrayValues()
	}
	users := map[string]bool{}
	for _, c := range calls {
		var name string
		var inner []*elem
		for _, m := range c.structMembers() {
			switch m.name {
			case "methodName":
				name = strings.TrimSpace(m.val.scalar())
			case "params":
				inner = m.val.arrayValues()
			}
		}
		n, user := call(name, inner)
		l.Calls += n
		if user != "" {
			users[NormUser(user)] = true
			l.User = user
		}
	}
	if len(users) > 1 {
		return Login{}, ErrMixedUsers
	}
	return l, nil
}

// noPassword are WordPress's xmlrpc methods that take no credentials.
var noPassword = map[string]bool{
	"system.listMethods": true, "system.getCapabilities": true, "system.methodHelp": true,
	"system.methodSignature": true, "demo.sayHello": true, "demo.addTwoNumbers": true,
	"pingback.ping": true, "pingback.extensions.getPingbacks": true,
	"mt.supportedMethods": true, "mt.supportedTextFilters": true, "mt.getTrackbackPings": true,
}

// call is the attempts one call makes (1 unless its method takes no
// password: a method a plugin added counts) and the user name it tries.
func call(method string, params []*elem) (int, string) {
	if noPassword[method] {
		return 0, ""
	}
	i := -1 // where the user name is, -1 = unknown
	switch {
	case method == "wp.getUsersBlogs":
		i = 0
	case method == "blogger.getUsersBlogs" || method == "blogger.getUserInfo":
		i = 1
	case strings.HasPrefix(method, "blogger."):
		i = 2
	case strings.HasPrefix(method, "wp."), strings.HasPrefix(method, "metaWeblog."), strings.HasPrefix(method, "mt."):
		i = 1
	}
	if i < 0 || i >= len(params) || !params[i].closed {
		return 1, ""
	}
	return 1, params[i].scalar()
}

// elem is an XML element with its own text and its child elements.
type elem struct {
	name   string
	text   strings.Builder
	kids   []*elem
	closed bool // its end tag was read
}

func (e *elem) child(name string) *elem {
	if e == nil {
		return nil
	}
	for _, k := range e.kids {
		if k.name == name {
			return k
		}
	}
	return nil
}

// values is the <value> of each name child (params/param, data/value).
func (e *elem) values(name string) []*elem {
	if e == nil {
		return nil
	}
	var out []*elem
	for _, k := range e.kids {
		if k.name != name {
			continue
		}
		if name == "value" {
			out = append(out, k)
		} else if v := k.child("value"); v != nil {
			out = append(out, v)
		}
	}
	return out
}

// scalar is a <value>'s text: its own, or its one typed child's.
func (e *elem) scalar() string {
	if e == nil {
		return ""
	}
	if len(e.kids) > 0 {
		return e.kids[0].text.String()
	}
	return e.text.String()
}

// arrayValues are the values of a <value><array><data>.
func (e *elem) arrayValues() []*elem {
	return e.child("array").child("data").values("value")
}

type member struct {
	name string
	val  *elem
}

// structMembers are the members of a <value><struct>.
func (e *elem) structMembers() []member {
	var out []member
	s := e.child("struct")
	if s == nil {
		return nil
	}
	for _, m := range s.kids {
		if m.name == "member" {
			out = append(out, member{name: strings.TrimSpace(m.child("name").scalar()), val: m.child("value")})
		}
	}
	return out
}

// Bounds of the tree parseTree builds from at most MaxPrefix bytes.
const (
	maxDepth    = 32
	maxElements = 16 << 10
	maxText     = 4 << 10 // per element: user names and method names are short
)

// parseTree reads data into a tree of elements, as far as it goes: on an
// error (a truncated body ends in io.ErrUnexpectedEOF) the tree holds what
// was read, the open elements not closed.
func parseTree(data []byte) (*elem, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.CharsetReader = charsetReader
	var root *elem
	var stack []*elem
	n := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			if len(stack) > 0 || root == nil {
				return root, io.ErrUnexpectedEOF
			}
			return root, nil
		}
		if err != nil {
			if len(stack) > 0 && isEOF(err) {
				err = io.ErrUnexpectedEOF
			}
			return root, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if n++; n > maxElements || len(stack) >= maxDepth {
				return root, errors.New("too many or too deeply nested elements")
			}
			e := &elem{name: t.Name.Local}
			if len(stack) == 0 {
				if root != nil {
					return root, errors.New("more than one root element")
				}
				root = e
			} else {
				p := stack[len(stack)-1]
				p.kids = append(p.kids, e)
			}
			stack = append(stack, e)
		case xml.EndElement:
			stack[len(stack)-1].closed = true
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				e := stack[len(stack)-1]
				if e.text.Len()+len(t) <= maxText {
					e.text.Write(t)
				}
			}
		case xml.Directive:
			return root, errors.New("a DOCTYPE or other directive") // WordPress refuses them too
		}
	}
}

// isEOF reports a syntax error from data ending inside a token.
func isEOF(err error) bool {
	var se *xml.SyntaxError
	return errors.As(err, &se) && strings.Contains(se.Msg, "unexpected EOF")
}

// charsetReader reads the single-byte encodings a client may declare;
// anything else (UTF-16) is not read.
func charsetReader(label string, in io.Reader) (io.Reader, error) {
	switch strings.ToLower(label) {
	case "utf-8", "utf8", "us-ascii", "ascii":
		return in, nil
	case "iso-8859-1", "latin1", "latin-1", "windows-1252", "cp1252":
		b, err := io.ReadAll(io.LimitReader(in, MaxPrefix))
		if err != nil {
			return nil, err
		}
		out := make([]byte, 0, len(b)+len(b)/4)
		for _, c := range b {
			out = utf8.AppendRune(out, rune(c))
		}
		return bytes.NewReader(out), nil
	}
	return nil, fmt.Errorf("encoding %q", label)
}
