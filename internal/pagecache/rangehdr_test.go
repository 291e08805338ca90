package pagecache

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseRange(t *testing.T) {
	type result struct {
		Start, End int64
		Kind       rangeKind
	}
	tests := []struct {
		name   string
		header string
		size   int64
		want   result
	}{
		{name: "first bytes", header: "bytes=0-99", size: 1000, want: result{0, 99, rangeSingle}},
		{name: "open end", header: "bytes=900-", size: 1000, want: result{900, 999, rangeSingle}},
		{name: "suffix", header: "bytes=-100", size: 1000, want: result{900, 999, rangeSingle}},
		{name: "suffix longer than body", header: "bytes=-5000", size: 1000, want: result{0, 999, rangeSingle}},
		{name: "end clamped", header: "bytes=10-5000", size: 1000, want: result{10, 999, rangeSingle}},
		{name: "unit case and spaces", header: " Bytes= 5-6 ", size: 10, want: result{5, 6, rangeSingle}},
		{name: "start past end", header: "bytes=1000-", size: 1000, want: result{0, 0, rangeUnsatisfiable}},
		{name: "zero suffix", header: "bytes=-0", size: 1000, want: result{0, 0, rangeUnsatisfiable}},
		{name: "empty body", header: "bytes=0-", size: 0, want: result{0, 0, rangeUnsatisfiable}},
		{name: "multi", header: "bytes=0-1, 5-6", size: 10, want: result{0, 0, rangeMulti}},
		{name: "multi with one unsatisfiable", header: "bytes=0-1, 50-60", size: 10, want: result{0, 0, rangeMulti}},
		{name: "multi unsatisfiable", header: "bytes=20-30, 50-60", size: 10, want: result{0, 0, rangeUnsatisfiable}},
		{name: "empty elements", header: "bytes=, 2-3 ,", size: 10, want: result{2, 3, rangeSingle}},
		{name: "reversed is ignored", header: "bytes=5-2", size: 10, want: result{0, 0, rangeNone}},
		{name: "other unit ignored", header: "items=0-1", size: 10, want: result{0, 0, rangeNone}},
		{name: "garbage ignored", header: "bytes=a-b", size: 10, want: result{0, 0, rangeNone}},
		{name: "no dash ignored", header: "bytes=5", size: 10, want: result{0, 0, rangeNone}},
		{name: "overflow ignored", header: "bytes=99999999999999999999-", size: 10, want: result{0, 0, rangeNone}},
		{name: "nothing", header: "bytes=", size: 10, want: result{0, 0, rangeNone}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, e, k := parseRange(tt.header, tt.size)
			if diff := cmp.Diff(tt.want, result{s, e, k}); diff != "" {
				t.Errorf("parseRange(%q, %d) mismatch (-want +got):\n%s", tt.header, tt.size, diff)
			}
		})
	}
}
