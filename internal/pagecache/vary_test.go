package pagecache

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAcceptEncoding(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   uint8
	}{
		{name: "none", values: nil, want: 0},
		{name: "browser", values: []string{"gzip, deflate, br, zstd"}, want: aeGzip | aeDeflate | aeBr | aeZstd},
		{name: "gzip only", values: []string{"gzip"}, want: aeGzip},
		{name: "case and x-gzip", values: []string{"X-GZIP"}, want: aeGzip},
		{name: "q zero", values: []string{"gzip;q=0, br"}, want: aeBr},
		{name: "q zero spelled out", values: []string{"gzip; q=0.000"}, want: 0},
		{name: "q positive", values: []string{"gzip;q=0.5"}, want: aeGzip},
		{name: "star", values: []string{"*"}, want: aeGzip | aeBr | aeZstd | aeDeflate},
		{name: "star minus gzip", values: []string{"*, gzip;q=0"}, want: aeBr | aeZstd | aeDeflate},
		{name: "identity only", values: []string{"identity"}, want: 0},
		{name: "two lines", values: []string{"br", "gzip"}, want: aeGzip | aeBr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, acceptEncoding(tt.values)); diff != "" {
				t.Errorf("acceptEncoding(%q) mismatch (-want +got):\n%s", tt.values, diff)
			}
		})
	}
}

func TestParseVary(t *testing.T) {
	tests := []struct {
		name      string
		values    []string
		wantNames []string
		wantStar  bool
	}{
		{name: "none"},
		{name: "canonical sorted deduped", values: []string{"accept-language, Accept-Encoding", "ACCEPT-LANGUAGE"}, wantNames: []string{"Accept-Encoding", "Accept-Language"}},
		{name: "star", values: []string{"Accept-Encoding, *"}, wantNames: []string{"Accept-Encoding"}, wantStar: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			names, star := parseVary(tt.values)
			if diff := cmp.Diff(tt.wantNames, names); diff != "" {
				t.Errorf("parseVary() names mismatch (-want +got):\n%s", diff)
			}
			if star != tt.wantStar {
				t.Errorf("parseVary() star = %v, want %v", star, tt.wantStar)
			}
		})
	}
}
