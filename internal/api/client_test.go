package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// seen is what the test server saw of a request.
type seen struct {
	Method, Path, ContentType, Auth, Body string
}

func TestClient(t *testing.T) {
	tests := []struct {
		name     string
		token    string
		post     any // nil: GET
		code     int
		answer   string
		want     seen
		wantOut  map[string]int
		wantCode int // of the HTTPError; 0: no error
	}{
		{
			name: "get", code: 200, answer: `{"seq": 7}`,
			want:    seen{Method: "GET", Path: "/v1/status"},
			wantOut: map[string]int{"seq": 7},
		},
		{
			name: "get with token", token: "operator.abc", code: 200, answer: `{}`,
			want:    seen{Method: "GET", Path: "/v1/status", Auth: "Bearer operator.abc"},
			wantOut: map[string]int{},
		},
		{
			name: "post", token: "operator.abc", post: map[string]int{"min": 2}, code: 200, answer: `{"desired": 2}`,
			want:    seen{Method: "POST", Path: "/v1/status", ContentType: "application/json", Auth: "Bearer operator.abc", Body: `{"min":2}`},
			wantOut: map[string]int{"desired": 2},
		},
		{
			name: "accepted", post: PurgeRequest{All: true}, code: 202, answer: `{"purged": 3}`,
			want:    seen{Method: "POST", Path: "/v1/status", ContentType: "application/json", Body: `{"urls":null,"tags":null,"all":true,"soft":false}`},
			wantOut: map[string]int{"purged": 3},
		},
		{
			name: "refused", post: map[string]int{"min": -1}, code: 400, answer: "scale: min must be >= 0\n",
			want:     seen{Method: "POST", Path: "/v1/status", ContentType: "application/json", Body: `{"min":-1}`},
			wantCode: 400,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got seen
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				got = seen{Method: r.Method, Path: r.URL.Path, ContentType: r.Header.Get("Content-Type"), Auth: r.Header.Get("Authorization"), Body: string(b)}
				w.WriteHeader(tt.code)
				io.WriteString(w, tt.answer)
			}))
			defer srv.Close()
			c := NewClient(srv.URL)
			c.Token = tt.token
			var out map[string]int
			var err error
			if tt.post != nil {
				err = c.Post(context.Background(), APIPathStatus, tt.post, &out)
			} else {
				err = c.Get(context.Background(), APIPathStatus, &out)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
			var he *HTTPError
			switch {
			case tt.wantCode == 0 && err != nil:
				t.Fatalf("err = %v", err)
			case tt.wantCode != 0 && !errors.As(err, &he):
				t.Fatalf("err = %v, want an HTTPError", err)
			case tt.wantCode != 0:
				if he.Code != tt.wantCode || he.Body != "scale: min must be >= 0" {
					t.Errorf("HTTPError = %+v, want code %d and the trimmed body", he, tt.wantCode)
				}
				return
			}
			if diff := cmp.Diff(tt.wantOut, out); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
}
