package throttle

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestClassify(t *testing.T) {
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:xxxx xxxx"))
	tests := []struct {
		name, method, target, auth string
		want                       Kind
	}{
		{"login form", "POST", "/wp-login.php", "", KindWPLogin},
		{"lost password", "POST", "/wp-login.php?action=lostpassword", "", KindWPLogin},
		{"login page", "GET", "/wp-login.php", "", KindNone},
		{"path info", "POST", "/wp-login.php/x", "", KindWPLogin},
		{"subdirectory", "POST", "/blog/xmlrpc.php", "", KindXMLRPC},
		{"dot segments", "POST", "/a/../xmlrpc.php", "", KindXMLRPC},
		{"double slash", "POST", "//xmlrpc.php", "", KindXMLRPC},
		{"case", "POST", "/XMLRPC.php", "", KindXMLRPC},
		{"other post", "POST", "/wp-comments-post.php", "", KindNone},
		{"rest with basic", "GET", "/wp-json/wp/v2/users/me", basic, KindBasic},
		{"basic any case", "POST", "/wp-json/wp/v2/posts", "bAsIc " + basic[6:], KindBasic},
		{"bearer", "GET", "/wp-json/wp/v2/users/me", "Bearer x", KindNone},
		{"form wins over basic", "POST", "/wp-login.php", basic, KindWPLogin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.target, nil)
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			if got := Classify(r); got != tt.want {
				t.Errorf("Classify = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBasicUser(t *testing.T) {
	h := http.Header{}
	h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("jane@example.org:abcd efgh")))
	if u, ok := BasicUser(h); !ok || u != "jane@example.org" {
		t.Errorf("BasicUser = %q, %v", u, ok)
	}
	h.Set("Authorization", "Basic !!!")
	if u, ok := BasicUser(h); !ok || u != "" {
		t.Errorf("undecodable: %q, %v; want credentials without a name", u, ok)
	}
}

func TestParseForm(t *testing.T) {
	mp := "--B\r\nContent-Disposition: form-data; name=\"log\"\r\n\r\nmulti\r\n--B\r\nContent-Disposition: form-data; name=\"pwd\"\r\n\r\nsecret\r\n--B--\r\n"
	tests := []struct {
		name, ctype, body string
		truncated         bool
		want              Login
	}{
		{"login", "application/x-www-form-urlencoded", "log=admin&pwd=secret&wp-submit=Log+In&testcookie=1", false, Login{User: "admin", Calls: 1}},
		{"escaped", "application/x-www-form-urlencoded", "l%6Fg=j%40ne%2Bx&pwd=x", false, Login{User: "j@ne+x", Calls: 1}},
		{"last wins like PHP", "application/x-www-form-urlencoded", "log=first&pwd=x&log=second", false, Login{User: "second", Calls: 1}},
		{"lost password", "application/x-www-form-urlencoded", "user_login=jane&redirect_to=", false, Login{User: "jane", Calls: 1}},
		{"no user", "application/x-www-form-urlencoded", "pwd=x", false, Login{Calls: 1}},
		{"no type", "", "log=admin&pwd=x", false, Login{User: "admin", Calls: 1}},
		{"truncated cuts the last field", "application/x-www-form-urlencoded", "log=admin&pwd=x&junk=aaaa", true, Login{User: "admin", Calls: 1}},
		{"truncated inside the name", "application/x-www-form-urlencoded", "pwd=x&log=adm", true, Login{Calls: 1}},
		{"multipart", "multipart/form-data; boundary=B", mp, false, Login{User: "multi", Calls: 1}},
		{"multipart without boundary", "multipart/form-data", mp, false, Login{Calls: 1}},
		{"garbage", "application/x-www-form-urlencoded", "%zz&&&=", false, Login{Calls: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ParseForm(tt.ctype, []byte(tt.body), tt.truncated)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseForm (-want +got):\n%s", diff)
			}
		})
	}
}

// xmlCall is an XML-RPC call of method with string params.
func xmlCall(method string, params ...string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0"?><methodCall><methodName>` + method + `</methodName><params>`)
	for _, p := range params {
		b.WriteString(`<param><value><string>` + p + `</string></value></param>`)
	}
	b.WriteString(`</params></methodCall>`)
	return b.String()
}

// multicall is system.multicall of n calls of method trying user.
func multicall(n int, method string, users ...string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0"?><methodCall><methodName>system.multicall</methodName><params><param><value><array><data>`)
	for i := range n {
		u := users[i%len(users)]
		fmt.Fprintf(&b, `<value><struct><member><name>methodName</name><value><string>%s</string></value></member>`+
			`<member><name>params</name><value><array><data><value><string>%s</string></value><value><string>guess%d</string></value></data></array></value></member></struct></value>`, method, u, i)
	}
	b.WriteString(`</data></array></value></param></params></methodCall>`)
	return b.String()
}

func TestParseXMLRPC(t *testing.T) {
	long := xmlCall("wp.getPosts", "1", "admin", "pw", strings.Repeat("x", 100))
	tests := []struct {
		name      string
		body      string
		truncated bool
		want      Login
		wantErr   error
	}{
		{"getUsersBlogs", xmlCall("wp.getUsersBlogs", "admin", "pw"), false, Login{User: "admin", Calls: 1}, nil},
		{"wp method", xmlCall("wp.getPosts", "1", "editor", "pw"), false, Login{User: "editor", Calls: 1}, nil},
		{"blogger", xmlCall("blogger.getRecentPosts", "key", "1", "jane", "pw", "10"), false, Login{User: "jane", Calls: 1}, nil},
		{"blogger users blogs", xmlCall("blogger.getUsersBlogs", "key", "jane", "pw"), false, Login{User: "jane", Calls: 1}, nil},
		{"metaWeblog", xmlCall("metaWeblog.getPost", "7", "jane", "pw"), false, Login{User: "jane", Calls: 1}, nil},
		{"untyped value", `<methodCall><methodName>wp.getUsersBlogs</methodName><params><param><value>bob</value></param></params></methodCall>`, false, Login{User: "bob", Calls: 1}, nil},
		{"pingback takes no password", xmlCall("pingback.ping", "http://a/", "http://b/"), false, Login{}, nil},
		{"list methods", xmlCall("system.listMethods"), false, Login{}, nil},
		{"a plugin's method counts", xmlCall("acme.doThing", "x", "y"), false, Login{Calls: 1}, nil},
		{"method name with spaces", `<methodCall><methodName> wp.getUsersBlogs </methodName><params><param><value>bob</value></param></params></methodCall>`, false, Login{User: "bob", Calls: 1}, nil},
		{"latin-1", `<?xml version="1.0" encoding="ISO-8859-1"?>` + xmlCall("wp.getUsersBlogs", "j\xf6rg", "pw")[len(`<?xml version="1.0"?>`):], false, Login{User: "jörg", Calls: 1}, nil},
		{"truncated single call", long[:len(long)-40], true, Login{User: "admin", Calls: 1}, nil},
		{"truncated inside the user name", xmlCall("wp.getUsersBlogs", "administrator", "pw")[:80], true, Login{Calls: 1}, nil},
		{"multicall", multicall(300, "wp.getUsersBlogs", "admin"), false, Login{User: "admin", Calls: 300, Multicall: true}, nil},
		{"multicall of pingbacks", multicall(3, "pingback.ping", "x"), false, Login{Multicall: true}, nil},
		{"multicall too large", multicall(300, "wp.getUsersBlogs", "admin")[:MaxPrefix/4], true, Login{}, ErrTooLarge},
		{"multicall for many users", multicall(4, "wp.getUsersBlogs", "admin", "jane"), false, Login{}, ErrMixedUsers},
		{"multicall, one user in many spellings", multicall(4, "wp.getUsersBlogs", "admin", "ADMIN"), false, Login{User: "ADMIN", Calls: 4, Multicall: true}, nil},
		{"not xml", "log=admin&pwd=x", false, Login{}, ErrUnreadable},
		{"not a call", "<methodResponse/>", false, Login{}, ErrUnreadable},
		{"cut off", xmlCall("wp.getUsersBlogs", "admin", "pw")[:60], false, Login{}, ErrUnreadable},
		{"doctype", `<!DOCTYPE x [<!ENTITY a "b">]>` + xmlCall("wp.getUsersBlogs", "admin", "pw"), false, Login{}, ErrUnreadable},
		{"utf-16", `<?xml version="1.0" encoding="UTF-16"?><methodCall/>`, false, Login{}, ErrUnreadable},
		{"too deep", strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100), false, Login{}, ErrUnreadable},
		{"two roots", xmlCall("wp.getUsersBlogs", "a", "b")[len(`<?xml version="1.0"?>`):] + "<methodCall/>", false, Login{}, ErrUnreadable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseXMLRPC([]byte(tt.body), tt.truncated)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseXMLRPC (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzLoginBody: neither parser panics or takes more than its bounds on
// any body prefix, and a multicall's count never exceeds what the prefix
// can hold.
func FuzzLoginBody(f *testing.F) {
	f.Add([]byte(xmlCall("wp.getUsersBlogs", "admin", "pw")), false)
	f.Add([]byte(multicall(5, "wp.getUsersBlogs", "admin")), false)
	f.Add([]byte(multicall(5, "wp.getUsersBlogs", "admin")), true)
	f.Add([]byte("log=admin&pwd=secret&wp-submit=Log+In"), false)
	f.Add([]byte("--B\r\nContent-Disposition: form-data; name=\"log\"\r\n\r\nx\r\n--B--\r\n"), false)
	f.Add([]byte(`<?xml version="1.0" encoding="latin1"?><methodCall><methodName>x</methodName></methodCall>`), true)
	f.Fuzz(func(t *testing.T, body []byte, truncated bool) {
		if len(body) > MaxPrefix {
			body = body[:MaxPrefix]
		}
		for _, ct := range []string{"application/x-www-form-urlencoded", "multipart/form-data; boundary=B"} {
			if l := ParseForm(ct, body, truncated); l.Calls != 1 {
				t.Fatalf("form counted %d attempts", l.Calls)
			}
		}
		l, err := ParseXMLRPC(body, truncated)
		if err != nil && l != (Login{}) {
			t.Fatalf("error %v with a result %+v", err, l)
		}
		if l.Calls < 0 || l.Calls > len(body)/20+1 {
			t.Fatalf("%d calls from %d bytes", l.Calls, len(body))
		}
	})
}
