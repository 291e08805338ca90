package hosts

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"testing"
	"time"
)

// signV4 signs req (with body) for S3 with AWS Signature Version 4, the
// minimum an S3 server checks: host, x-amz-date, x-amz-content-sha256.
func signV4(req *http.Request, body []byte, region, accessKey, secretKey string, now time.Time) {
	sum := sha256.Sum256(body)
	payload := hex.EncodeToString(sum[:])
	amzDate := now.UTC().Format("20060102T150405Z")
	day := amzDate[:8]
	req.Header.Set("X-Amz-Date", amzDate)
	req.Header.Set("X-Amz-Content-Sha256", payload)
	const signed = "host;x-amz-content-sha256;x-amz-date"
	path := req.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	canonical := req.Method + "\n" + path + "\n" + req.URL.RawQuery + "\n" +
		"host:" + req.URL.Host + "\n" + "x-amz-content-sha256:" + payload + "\n" + "x-amz-date:" + amzDate + "\n\n" +
		signed + "\n" + payload
	scope := day + "/" + region + "/s3/aws4_request"
	creq := sha256.Sum256([]byte(canonical))
	toSign := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(creq[:])
	mac := func(key []byte, s string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(s))
		return h.Sum(nil)
	}
	k := mac(mac(mac(mac([]byte("AWS4"+secretKey), day), region), "s3"), "aws4_request")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+accessKey+"/"+scope+
		", SignedHeaders="+signed+", Signature="+hex.EncodeToString(mac(k, toSign)))
}

// s3Do sends a signed request from c and returns the status and body.
func s3Do(t testing.TB, c *http.Client, s *S3, secret, method, path string, body []byte) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.Endpoint+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	signV4(req, body, s.Region, s.AccessKey, secret, time.Now())
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestVersitygw: versitygw in h2 answers signed requests from the client
// namespace (bucket, put, get) and refuses a wrong signature.
func TestVersitygw(t *testing.T) {
	n := New(t, Config{Hosts: []string{"h1", "h2"}, Client: true})
	s := StartVersitygw(t, n.Host(t, "h2"), VersitygwOptions{})
	c := n.Client.HTTPClient()

	if code, body := s3Do(t, c, s, s.SecretKey, http.MethodPut, "/media", nil); code != http.StatusOK {
		t.Fatalf("create bucket: %d %s", code, body)
	}
	want := "a blob across hosts"
	if code, body := s3Do(t, c, s, s.SecretKey, http.MethodPut, "/media/2026/12/a.txt", []byte(want)); code != http.StatusOK {
		t.Fatalf("put object: %d %s", code, body)
	}
	if code, body := s3Do(t, c, s, s.SecretKey, http.MethodGet, "/media/2026/12/a.txt", nil); code != http.StatusOK || body != want {
		t.Fatalf("get object: %d %q, want 200 %q", code, body, want)
	}
	if code, body := s3Do(t, c, s, "wrong"+s.SecretKey, http.MethodGet, "/media/2026/12/a.txt", nil); code != http.StatusForbidden {
		t.Fatalf("get with a wrong secret: %d %s, want 403", code, body)
	}
}
