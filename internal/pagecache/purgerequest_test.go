package pagecache

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParsePurgeRequest(t *testing.T) {
	jsonCT := http.Header{"Content-Type": {"application/json; charset=utf-8"}}
	many := func(n int, f func(i int) string) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = `"` + f(i) + `"`
		}
		return strings.Join(parts, ",")
	}
	tests := []struct {
		name    string
		method  string
		header  http.Header
		body    string
		want    PurgeRequest
		wantErr string
		kind    error
	}{
		{name: "urls and tags, soft by default", body: `{"urls": ["http://example.com/hello/?x=1"], "tags": ["post-12", "term:3"]}`,
			want: PurgeRequest{URLs: []string{"http://example.com/hello/?x=1"}, Tags: []string{"post-12", "term:3"}, Soft: true}},
		{name: "hard", header: jsonCT, body: `{"tags": ["home"], "soft": false}`, want: PurgeRequest{Tags: []string{"home"}}},
		{name: "soft null is default", body: `{"tags": ["home"], "soft": null}`, want: PurgeRequest{Tags: []string{"home"}, Soft: true}},
		{name: "all", body: `{"all": true}`, want: PurgeRequest{All: true, Soft: true}},
		{name: "https with port", body: `{"urls": ["https://Example.com:8443/"]}`, want: PurgeRequest{URLs: []string{"https://Example.com:8443/"}, Soft: true}},
		{name: "get", method: http.MethodGet, body: `{"all": true}`, wantErr: "pagecache: purge request: method GET: use POST", kind: ErrPurgeMethod},
		{name: "too large", body: strings.Repeat(" ", MaxPurgeBody+1), wantErr: "pagecache: purge request: body: larger than 1048576 bytes", kind: ErrPurgeTooLarge},
		{name: "form content type", header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, body: `{"all": true}`,
			wantErr: `pagecache: purge request: content-type "application/x-www-form-urlencoded": send application/json`, kind: ErrPurgeInvalid},
		{name: "empty body", body: ``, wantErr: `pagecache: purge request: body: empty; send {"urls": [...], "tags": [...]} or {"all": true}`, kind: ErrPurgeInvalid},
		{name: "nothing", body: `{}`, wantErr: `pagecache: purge request: nothing to purge: give "urls", "tags" or "all": true`, kind: ErrPurgeInvalid},
		{name: "unknown field", body: `{"tag": ["x"]}`, wantErr: `pagecache: purge request: body: json: unknown field "tag"`, kind: ErrPurgeInvalid},
		{name: "wrong type", body: `{"urls": "http://x/"}`, kind: ErrPurgeInvalid,
			wantErr: "pagecache: purge request: body: json: cannot unmarshal string into Go struct field .urls of type []string"},
		{name: "trailing data", body: `{"all": true} {}`, wantErr: "pagecache: purge request: body: data after the JSON object", kind: ErrPurgeInvalid},
		{name: "bad tag", body: `{"tags": ["a", "b", "c", "bad tag!"]}`, wantErr: `pagecache: purge request: tags[3]: "bad tag!" has characters outside [A-Za-z0-9_.:-]`, kind: ErrPurgeInvalid},
		{name: "empty tag", body: `{"tags": [""]}`, wantErr: `pagecache: purge request: tags[0]: "" is empty`, kind: ErrPurgeInvalid},
		{name: "long tag", body: `{"tags": ["` + strings.Repeat("a", 129) + `"]}`, kind: ErrPurgeInvalid,
			wantErr: `pagecache: purge request: tags[0]: "` + strings.Repeat("a", 80) + `..." is longer than 128 characters`},
		{name: "relative url", body: `{"urls": ["/hello/"]}`, wantErr: `pagecache: purge request: urls[0]: "/hello/" must be an absolute http:// or https:// URL`, kind: ErrPurgeInvalid},
		{name: "ftp url", body: `{"urls": ["ftp://example.com/x"]}`, wantErr: `pagecache: purge request: urls[0]: "ftp://example.com/x" must be an absolute http:// or https:// URL`, kind: ErrPurgeInvalid},
		{name: "no host", body: `{"urls": ["http:///x"]}`, wantErr: `pagecache: purge request: urls[0]: "http:///x" has no host`, kind: ErrPurgeInvalid},
		{name: "not a url", body: `{"urls": ["http://exa mple.com/"]}`, wantErr: `pagecache: purge request: urls[0]: "http://exa mple.com/" is not a URL`, kind: ErrPurgeInvalid},
		{name: "too many urls", body: `{"urls": [` + many(1001, func(i int) string { return fmt.Sprintf("http://x/%d", i) }) + `]}`,
			wantErr: "pagecache: purge request: urls: 1001 given, at most 1000 per request", kind: ErrPurgeInvalid},
		{name: "too many tags", body: `{"tags": [` + many(1001, func(i int) string { return fmt.Sprint("t", i) }) + `]}`,
			wantErr: "pagecache: purge request: tags: 1001 given, at most 1000 per request", kind: ErrPurgeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.method
			if m == "" {
				m = http.MethodPost
			}
			got, err := ParsePurgeRequest(m, tt.header, []byte(tt.body))
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParsePurgeRequest() = %+v, want error %q", got, tt.wantErr)
				}
				if diff := cmp.Diff(tt.wantErr, err.Error()); diff != "" {
					t.Errorf("error mismatch (-want +got):\n%s", diff)
				}
				if !errors.Is(err, tt.kind) {
					t.Errorf("errors.Is(%v, %v) = false", err, tt.kind)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePurgeRequest() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParsePurgeRequest() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
