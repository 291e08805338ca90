package pagecache

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestClassifyBypass(t *testing.T) {
	tests := []struct {
		name   string
		method string
		target string
		kv     []string
		want   string
	}{
		{name: "anonymous page", target: "/2024/05/hello/"},
		{name: "head", method: http.MethodHead, target: "/"},
		{name: "post", method: http.MethodPost, target: "/", want: BypassMethod},
		{name: "options", method: http.MethodOptions, target: "/", want: BypassMethod},
		{name: "authorization", target: "/", kv: []string{"Authorization", "Basic eDp5"}, want: BypassAuthorization},
		{name: "logged in", target: "/", kv: []string{"Cookie", "_ga=GA1.1; wordpress_logged_in_abc=admin%7C1"}, want: BypassLoggedIn},
		{name: "secure auth cookie", target: "/", kv: []string{"Cookie", "wordpress_sec_abc=x"}, want: BypassSecure},
		{name: "post password", target: "/", kv: []string{"Cookie", "wp-postpass_abc=x"}, want: BypassPostPass},
		{name: "commenter", target: "/", kv: []string{"Cookie", "comment_author_abc=Jo"}, want: BypassCommenter},
		{name: "woocommerce cart", target: "/", kv: []string{"Cookie", "woocommerce_items_in_cart=1"}, want: BypassWooCommerce},
		{name: "woocommerce session", target: "/", kv: []string{"Cookie", "wp_woocommerce_session_abc=x"}, want: BypassWooSession},
		{name: "second cookie line", target: "/", kv: []string{"Cookie", "a=1", "Cookie", "wordpress_logged_in_x=y"}, want: BypassLoggedIn},
		{name: "analytics cookies ignored", target: "/", kv: []string{"Cookie", "_ga=1; _gid=2; wordpress_test_cookie=WP%20Cookie%20check; wp-settings-time-1=1"}},
		{name: "cookie value is not a name", target: "/", kv: []string{"Cookie", "x=wordpress_logged_in_1"}},
		{name: "wp-admin", target: "/wp-admin/", want: BypassAdmin},
		{name: "wp-admin bare", target: "/wp-admin", want: BypassAdmin},
		{name: "admin-ajax", target: "/wp-admin/admin-ajax.php?action=x", want: BypassAdmin},
		{name: "wp-admin lookalike", target: "/wp-administrator/"},
		{name: "multisite wp-admin", target: "/site2/wp-admin/edit.php", want: BypassAdmin},
		{name: "double slash", target: "//wp-admin/", want: BypassAdmin},
		{name: "dot dot", target: "/x/../wp-login.php", want: BypassLogin},
		{name: "login", target: "/wp-login.php?action=lostpassword", want: BypassLogin},
		{name: "login path info", target: "/wp-login.php/x", want: BypassLogin},
		{name: "xmlrpc", target: "/xmlrpc.php", want: BypassXMLRPC},
		{name: "cron", target: "/wp-cron.php?doing_wp_cron=1", want: BypassCron},
		{name: "anonymous rest", target: "/wp-json/wp/v2/posts"},
		{name: "rest with auth", target: "/wp-json/wp/v2/posts", kv: []string{"Authorization", "Bearer x"}, want: BypassAuthorization},
		{name: "rest logged in", target: "/wp-json/wp/v2/users/me", kv: []string{"Cookie", "wordpress_logged_in_1=x"}, want: BypassLoggedIn},
		{name: "preview", target: "/?p=12&preview=true", want: BypassPreview},
		{name: "preview id", target: "/?preview_id=12&preview_nonce=abc", want: BypassPreview},
		{name: "search", target: "/?s=hello", want: BypassSearch},
		{name: "empty search", target: "/?s=", want: BypassSearch},
		{name: "add to cart", target: "/shop/?add-to-cart=5", want: BypassCart},
		{name: "wc-ajax", target: "/?wc-ajax=get_refreshed_fragments", want: BypassWooAjax},
		{name: "param that starts with s", target: "/?sort=asc"},
		{name: "browser reload is not a bypass", target: "/", kv: []string{"Cache-Control", "no-cache", "Pragma", "no-cache"}},
	}
	c := newTestCache(t, nil, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.method
			if m == "" {
				m = http.MethodGet
			}
			d := c.Classify(req(m, tt.target, tt.kv...))
			if diff := cmp.Diff(tt.want, d.Bypass); diff != "" {
				t.Errorf("Classify(%s %s).Bypass mismatch (-want +got):\n%s", m, tt.target, diff)
			}
			if (d.Key() == "") != (tt.want != "") {
				t.Errorf("Classify().Key() = %q with bypass %q", d.Key(), d.Bypass)
			}
		})
	}
}

func TestClassifyKey(t *testing.T) {
	tests := []struct {
		name   string
		host   string
		target string
		want   string
	}{
		{name: "plain", host: "example.com", target: "/hello/", want: "example.com/hello/"},
		{name: "host case and port 80", host: "Example.COM:80", target: "/", want: "example.com/"},
		{name: "port 443", host: "example.com:443", target: "/", want: "example.com/"},
		{name: "other port kept", host: "example.com:8080", target: "/", want: "example.com:8080/"},
		{name: "trailing dot", host: "example.com.", target: "/", want: "example.com/"},
		{name: "utm dropped", host: "example.com", target: "/a/?utm_source=x&utm_medium=y&utm_campaign=z", want: "example.com/a/"},
		{name: "click ids dropped", host: "example.com", target: "/a/?fbclid=1&gclid=2&dclid=3&msclkid=4&mc_cid=5&mc_eid=6&page=2", want: "example.com/a/?page=2"},
		{name: "params sorted", host: "example.com", target: "/?b=2&a=1&c=3", want: "example.com/?a=1&b=2&c=3"},
		{name: "empty params dropped", host: "example.com", target: "/?&a=1&&", want: "example.com/?a=1"},
		{name: "repeated params kept", host: "example.com", target: "/?a=2&a=1", want: "example.com/?a=1&a=2"},
		{name: "ref kept by default", host: "example.com", target: "/?ref=x", want: "example.com/?ref=x"},
		{name: "escaped path", host: "example.com", target: "/caf%C3%A9/", want: "example.com/caf%C3%A9/"},
		{name: "many params", host: "example.com", target: "/?q=1&p=2&o=3&n=4&m=5&l=6&k=7&j=8&i=9&h=10&g=11&f=12&e=13&d=14&c=15&b=16&a=17&z=18",
			want: "example.com/?a=17&b=16&c=15&d=14&e=13&f=12&g=11&h=10&i=9&j=8&k=7&l=6&m=5&n=4&o=3&p=2&q=1&z=18"},
	}
	c := newTestCache(t, nil, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := req(http.MethodGet, tt.target)
			r.Host = tt.host
			d := c.Classify(r)
			if diff := cmp.Diff(tt.want, d.Key()); diff != "" {
				t.Errorf("Classify(%s%s).Key() mismatch (-want +got):\n%s", tt.host, tt.target, diff)
			}
		})
	}
}

func TestClassifyIgnoreParamsConfig(t *testing.T) {
	c := newTestCache(t, nil, func(cfg *Config) { cfg.IgnoreParams = []string{"ref", "_ga*"} })
	r := req(http.MethodGet, "/?ref=x&_ga=1&_gac=2&utm_source=kept")
	if diff := cmp.Diff("example.com/?utm_source=kept", c.Classify(r).Key()); diff != "" {
		t.Errorf("Key() mismatch (-want +got):\n%s", diff)
	}
}

func TestIsStaticPath(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		{"/wp-content/themes/t/style.css", true},
		{"/wp-includes/js/jquery/jquery.min.js", true},
		{"/wp-content/uploads/2024/05/photo.JPG", true},
		{"/wp-content/uploads/video.mp4", true},
		{"/wp-content/uploads/doc.pdf", true},
		{"/wp-content/plugins/p/x.php", false},
		{"/wp-content/uploads.css/x", false},
		{"/style.css", false},
		{"/wp-content/uploads/noext", false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := isStaticPath(tt.path); got != tt.want {
				t.Errorf("isStaticPath(%q) = %v, want %v", tt.path, got, tt.want)
			}
		})
	}
}
