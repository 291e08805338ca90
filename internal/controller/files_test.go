package controller

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/api"
)

// TestFilesFencedIsReportedOnce: a files role whose store is fenced
// (another files role appended to the log in the same bucket) is not
// healthy, and the controller reports it once, as an event, until it
// clears.
func TestFilesFencedIsReportedOnce(t *testing.T) {
	var status atomic.Value
	status.Store(api.FilesStoreStatus{Seq: 7})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(status.Load())
	}))
	defer srv.Close()
	var reports []string
	f := &filesRole{onFenced: func(r string) { reports = append(reports, r) }}
	f.api.Store(&api.Client{Base: srv.URL, HTTP: srv.Client()})
	ctx := context.Background()
	type state struct {
		Healthy bool
		Seq     uint64
		Reports int
	}
	steps := []struct {
		name   string
		status api.FilesStoreStatus
		want   state
	}{
		{"writing", api.FilesStoreStatus{Seq: 7}, state{true, 7, 0}},
		{"fenced", api.FilesStoreStatus{Seq: 7, Fenced: "log/00000000000000000008.log was written by another files role"}, state{false, 7, 1}},
		{"still fenced: no second event", api.FilesStoreStatus{Seq: 7, Fenced: "log/00000000000000000008.log was written by another files role"}, state{false, 7, 1}},
		{"restarted, following the winner", api.FilesStoreStatus{Seq: 9}, state{true, 9, 1}},
	}
	for _, st := range steps {
		status.Store(st.status)
		f.check(ctx)
		got := state{f.healthy.Load(), f.seq.Load(), len(reports)}
		if diff := cmp.Diff(st.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", st.name, diff)
		}
	}
}
