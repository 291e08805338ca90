package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/statedir"
	"github.com/scalepress/scalepress/internal/token"
)

// TestEdgeTLSEvents: an edge records its certificate events with its own
// token; nobody else does, and only bounded ones are taken.
func TestEdgeTLSEvents(t *testing.T) {
	c := apiController(t)
	h := c.apiHandler()
	ctl := c.secrets.Key(token.Control)
	edge1 := ctl.Issue("edge-1")
	const js = "application/json"
	const path = api.APIPathEdgeEvents
	one := `{"tls":[{"message":"x"}]}`
	for _, tt := range []apiCall{
		{name: "without token", method: "POST", path: path, ctype: js, body: one, want: 401},
		{name: "by the operator", method: "POST", path: path, ctype: js, token: ctl.Issue(statedir.OperatorID), body: one, want: 403, reason: "not a configured edge"},
		{name: "message too long", method: "POST", path: path, ctype: js, token: edge1, body: `{"tls":[{"message":"` + strings.Repeat("x", api.MaxEventMessage+1) + `"}]}`, want: 400, reason: "tls event's message"},
		{name: "empty message", method: "POST", path: path, ctype: js, token: edge1, body: `{"tls":[{"alert":true}]}`, want: 400},
		{name: "too many", method: "POST", path: path, ctype: js, token: edge1, body: `{"tls":[` + strings.Repeat(`{"message":"x"},`, api.MaxEdgeEvents) + `{"message":"x"}]}`, want: 400, reason: "tls events, at most"},
		{name: "unknown field", method: "POST", path: path, ctype: js, token: edge1, body: `{"tls":[{"message":"x","kind":"scale"}]}`, want: 400},
		{name: "as text", method: "POST", path: path, ctype: "text/plain", token: edge1, body: one, want: 415},
		{name: "the edge's alert", method: "POST", path: path, ctype: js, token: edge1, body: `{"tls":[{"alert":true,"message":"tls: certificate reload failed"}]}`, want: 204},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := tt.do(t, h)
			if w.Code != tt.want {
				t.Fatalf("%d %q, want %d", w.Code, w.Body.String(), tt.want)
			}
			if tt.reason != "" && !strings.Contains(w.Body.String(), tt.reason) {
				t.Fatalf("reason %q does not say %q", w.Body.String(), tt.reason)
			}
		})
	}
	var got []api.Event
	for _, e := range c.events.Since(context.Background(), 0, 0).Events {
		e.Seq, e.Time = 0, time.Time{}
		got = append(got, e)
	}
	want := []api.Event{{Kind: "tls", Message: "edge-1: tls: certificate reload failed", Inputs: map[string]any{"edge": "edge-1", "level": "alert"}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}
