package autoscale

import (
	"math"
	"strings"
	"testing"
)

func TestParsePressure(t *testing.T) {
	tests := []struct {
		name, in string
		want     float64
		wantErr  string
	}{
		{name: "proc", in: "some avg10=80.65 avg60=58.76 avg300=57.59 total=6653355485\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", want: 0.8065},
		{name: "idle", in: "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", want: 0},
		{name: "full first", in: "full avg10=9.00 avg60=0.00 avg300=0.00 total=0\nsome avg10=12.50 avg60=0 avg300=0 total=1", want: 0.125},
		{name: "empty", in: "", wantErr: "no some line"},
		{name: "no avg10", in: "some avg60=1.00 total=3\n", wantErr: "no avg10"},
		{name: "not a number", in: "some avg10=x avg60=1.00\n", wantErr: `avg10 "x" is not a percentage`},
		{name: "above 100", in: "some avg10=100.5\n", wantErr: "is not a percentage"},
		{name: "NaN", in: "some avg10=NaN\n", wantErr: "is not a percentage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePressure([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || math.Abs(got-tt.want) > 1e-12 {
				t.Errorf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func FuzzParsePressure(f *testing.F) {
	f.Add([]byte("some avg10=80.65 avg60=58.76 avg300=57.59 total=6653355485\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"))
	f.Add([]byte("some avg10=1e2\n"))
	f.Add([]byte("some\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := ParsePressure(b)
		if err == nil && !(v >= 0 && v <= 1) {
			t.Fatalf("ParsePressure(%q) = %v, outside 0..1", b, v)
		}
	})
}
