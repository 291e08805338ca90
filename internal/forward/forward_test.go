package forward

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/token"
)

var (
	root = token.NewKey()
	key  = root.Derive(token.Forward)
	t0   = time.Unix(1_800_000_000, 0)
)

func signed(t testing.TB) http.Header {
	t.Helper()
	s, err := NewSigner("edge-1", key)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set(HeaderFor, "203.0.113.9")
	h.Set(HeaderProto, "https")
	h.Set(HeaderHost, "www.example.test")
	h.Set("Cookie", "a=b")
	s.Sign(h, "POST", "www.example.test", "/wp-login.php?x=1", t0)
	return h
}

func TestVerify(t *testing.T) {
	v, err := NewVerifier(key)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewVerifier(root.Derive(token.Files))
	type req struct {
		h                 http.Header
		method, host, uri string
		now               time.Time
	}
	good := func() req { return req{signed(t), "POST", "www.example.test", "/wp-login.php?x=1", t0} }
	tests := []struct {
		name    string
		change  func(*req)
		v       *Verifier
		wantID  string
		wantErr error
	}{
		{"as signed", func(*req) {}, v, "edge-1", nil},
		{"unsigned headers may change", func(r *req) { r.h.Set("Cookie", "c=d") }, v, "edge-1", nil},
		{"clock 59s ahead", func(r *req) { r.now = t0.Add(59 * time.Second) }, v, "edge-1", nil},
		{"clock 59s behind", func(r *req) { r.now = t0.Add(-59 * time.Second) }, v, "edge-1", nil},
		{"missing", func(r *req) { r.h.Del(api.HeaderEdge) }, v, "", ErrMissing},
		{"other key", func(*req) {}, other, "", ErrInvalid},
		{"old", func(r *req) { r.now = t0.Add(61 * time.Second) }, v, "", ErrExpired},
		{"from the future", func(r *req) { r.now = t0.Add(-61 * time.Second) }, v, "", ErrExpired},
		{"forged client", func(r *req) { r.h.Set(HeaderFor, "198.51.100.1") }, v, "", ErrInvalid},
		{"client added", func(r *req) { r.h.Set(HeaderFor, "198.51.100.1, 203.0.113.9") }, v, "", ErrInvalid},
		{"second client header", func(r *req) { r.h.Add(HeaderFor, "198.51.100.1") }, v, "", ErrInvalid},
		{"forged proto", func(r *req) { r.h.Set(HeaderProto, "http") }, v, "", ErrInvalid},
		{"proto removed", func(r *req) { r.h.Del(HeaderProto) }, v, "", ErrInvalid},
		{"forged host header", func(r *req) { r.h.Set(HeaderHost, "evil.test") }, v, "", ErrInvalid},
		{"other method", func(r *req) { r.method = "GET" }, v, "", ErrInvalid},
		{"other host", func(r *req) { r.host = "evil.test" }, v, "", ErrInvalid},
		{"other uri", func(r *req) { r.uri = "/wp-admin/" }, v, "", ErrInvalid},
		{"other query", func(r *req) { r.uri = "/wp-login.php?x=2" }, v, "", ErrInvalid},
		{"other edge id", func(r *req) {
			r.h.Set(api.HeaderEdge, strings.Replace(r.h.Get(api.HeaderEdge), "edge-1", "edge-2", 1))
		}, v, "", ErrInvalid},
		{"other time", func(r *req) {
			f := strings.Fields(r.h.Get(api.HeaderEdge))
			r.h.Set(api.HeaderEdge, f[0]+" 1800000001 "+f[2])
		}, v, "", ErrInvalid},
		{"mac flipped", func(r *req) {
			s := []byte(r.h.Get(api.HeaderEdge))
			s[len(s)-2] ^= 1
			r.h.Set(api.HeaderEdge, string(s))
		}, v, "", ErrInvalid},
		{"two signatures", func(r *req) { r.h.Add(api.HeaderEdge, r.h.Get(api.HeaderEdge)) }, v, "", ErrInvalid},
		{"garbage", func(r *req) { r.h.Set(api.HeaderEdge, "edge-1 x y") }, v, "", ErrInvalid},
		{"no mac", func(r *req) { r.h.Set(api.HeaderEdge, "edge-1 1800000000") }, v, "", ErrInvalid},
		{"bad id", func(r *req) {
			f := strings.Fields(r.h.Get(api.HeaderEdge))
			r.h.Set(api.HeaderEdge, "Edge 1 "+f[1]+" "+f[2])
		}, v, "", ErrInvalid},
		// Field boundaries: moving bytes from one field to the next changes the MAC.
		{"boundary moved", func(r *req) { r.method, r.host = "POSTw", "ww.example.test" }, v, "", ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := good()
			tt.change(&r)
			id, err := tt.v.Verify(r.h, r.method, r.host, r.uri, r.now)
			if id != tt.wantID || !errors.Is(err, tt.wantErr) {
				t.Errorf("Verify = %q, %v; want %q, %v", id, err, tt.wantID, tt.wantErr)
			}
		})
	}
}

func TestNew(t *testing.T) {
	if _, err := NewSigner("edge 1", key); err == nil {
		t.Error("NewSigner took an id with a space")
	}
	if _, err := NewSigner("edge-1", token.Key{}); err == nil {
		t.Error("NewSigner took no key")
	}
	if _, err := NewVerifier(token.Key{}); err == nil {
		t.Error("NewVerifier took no key")
	}
}

func BenchmarkSign(b *testing.B) {
	s, _ := NewSigner("edge-1", key)
	h := signed(b)
	b.ReportAllocs()
	for b.Loop() {
		s.Sign(h, "GET", "www.example.test", "/2026/05/hello-world/?utm_source=x", t0)
	}
}

func BenchmarkVerify(b *testing.B) {
	v, _ := NewVerifier(key)
	h := signed(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(h, "POST", "www.example.test", "/wp-login.php?x=1", t0); err != nil {
			b.Fatal(err)
		}
	}
}
