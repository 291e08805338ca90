package phpfpm

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// statusSample is php-fpm 8.2's /fpm-status?json output.
const statusSample = `{"pool":"node-1","process manager":"static","start time":1795701358,"start since":3600,"accepted conn":12873,"listen queue":3,"max listen queue":17,"listen queue len":511,"idle processes":2,"active processes":6,"total processes":8,"max active processes":8,"max children reached":4,"slow requests":1}`

func TestParseStatus(t *testing.T) {
	want := Status{
		Pool: "node-1", ProcessManager: "static", StartSince: 3600, AcceptedConn: 12873,
		ListenQueue: 3, MaxListenQueue: 17, ListenQueueLen: 511, IdleProcesses: 2, ActiveProcesses: 6,
		TotalProcesses: 8, MaxActiveProcesses: 8, MaxChildrenReached: 4, SlowRequests: 1,
	}
	full := strings.TrimSuffix(statusSample, "}") + `,"processes":[{"pid":4242,"state":"Idle","start time":1795701358,"request uri":"/index.php"}]}`
	tests := []struct {
		name    string
		in      string
		want    Status
		wantErr string
	}{
		{name: "json", in: statusSample, want: want},
		{name: "json full", in: full, want: want},
		{name: "pretty printed", in: strings.ReplaceAll(statusSample, ",", ",\n  "), want: want},
		{name: "missing listen queue", in: strings.Replace(statusSample, `"listen queue":3,`, "", 1), wantErr: `phpfpm: parse status: missing key "listen queue"`},
		{name: "missing max children reached", in: strings.Replace(statusSample, `"max children reached":4,`, "", 1), wantErr: `phpfpm: parse status: missing key "max children reached"`},
		{name: "missing pool", in: strings.Replace(statusSample, `"pool":"node-1",`, "", 1), wantErr: `phpfpm: parse status: missing key "pool"`},
		{name: "null counts as missing", in: strings.Replace(statusSample, `"slow requests":1`, `"slow requests":null`, 1), wantErr: `phpfpm: parse status: missing key "slow requests"`},
		{name: "wrong type", in: strings.Replace(statusSample, `"active processes":6`, `"active processes":"6"`, 1), wantErr: "phpfpm: parse status: json: cannot unmarshal string into Go struct field statusJSON.active processes of type int"},
		{name: "text format", in: "pool:                 node-1\nprocess manager:      static\n", wantErr: "phpfpm: parse status: invalid character 'p' looking for beginning of value"},
		{name: "empty", in: "", wantErr: "phpfpm: parse status: unexpected end of JSON input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStatus([]byte(tt.in))
			if diff := cmp.Diff(tt.wantErr, errString(err)); diff != "" {
				t.Errorf("error mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseStatus() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUtilization(t *testing.T) {
	tests := []struct {
		name          string
		active, total int
		want          float64
	}{
		{name: "idle", active: 0, total: 8, want: 0},
		{name: "half", active: 4, total: 8, want: 0.5},
		{name: "full", active: 8, total: 8, want: 1},
		{name: "no processes", active: 0, total: 0, want: 0},
		{name: "active without total", active: 3, total: 0, want: 0},
		{name: "php-fpm over-reporting is clamped", active: 5, total: 2, want: 1},
		{name: "negative", active: -1, total: 2, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Status{ActiveProcesses: tt.active, TotalProcesses: tt.total}
			if got := s.Utilization(); got != tt.want {
				t.Errorf("Utilization() = %v, want %v", got, tt.want)
			}
		})
	}
}

// FuzzParseStatus: arbitrary input never panics, and a parsed Status has a
// Utilization within [0, 1]. Seeds: testdata/fuzz/FuzzParseStatus.
func FuzzParseStatus(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseStatus(b)
		if err != nil {
			if s != (Status{}) {
				t.Errorf("ParseStatus() = %+v with error %v, want zero Status", s, err)
			}
			return
		}
		if u := s.Utilization(); u < 0 || u > 1 {
			t.Errorf("Utilization() = %v, want within [0, 1]", u)
		}
	})
}
