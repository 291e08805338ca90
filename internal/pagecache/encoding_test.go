package pagecache

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestParseAcceptEncoding: effective q-values (thousandths) of identity,
// gzip, br and zstd, RFC 9110 §12.5.3 and the qvalue grammar of §12.4.2.
func TestParseAcceptEncoding(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   [numCodings]int16 // identity, gzip, br, zstd
	}{
		{name: "no field", values: nil, want: [4]int16{1, 0, 0, 0}},
		{name: "empty field: identity only (§12.5.3)", values: []string{""}, want: [4]int16{1, 0, 0, 0}},
		{name: "browser", values: []string{"gzip, deflate, br, zstd"}, want: [4]int16{1, 1000, 1000, 1000}},
		{name: "q-values", values: []string{"br;q=0.8, gzip;q=0.5, zstd;q=0.25"}, want: [4]int16{1, 500, 800, 250}},
		{name: "x-gzip and case", values: []string{"X-GZIP;Q=0.3, BR"}, want: [4]int16{1, 300, 1000, 0}},
		{name: "spaces around parameters", values: []string{"gzip ; q=0.5 , br\t;\tq=1.000"}, want: [4]int16{1, 500, 1000, 0}},
		{name: "star fills the unnamed", values: []string{"*;q=0.1, gzip"}, want: [4]int16{100, 1000, 100, 100}},
		{name: "star q=0 excludes identity", values: []string{"*;q=0"}, want: [4]int16{0, 0, 0, 0}},
		{name: "identity;q=0", values: []string{"identity;q=0, gzip"}, want: [4]int16{0, 1000, 0, 0}},
		{name: "identity named", values: []string{"identity, gzip;q=0.5"}, want: [4]int16{1000, 500, 0, 0}},
		{name: "identity named beats star", values: []string{"*;q=0, identity;q=0.2"}, want: [4]int16{200, 0, 0, 0}},
		{name: "q too precise is invalid", values: []string{"br;q=0.5555"}, want: [4]int16{1, 0, 0, 0}},
		{name: "q above 1 is invalid", values: []string{"br;q=1.5, gzip;q=2"}, want: [4]int16{1, 0, 0, 0}},
		{name: "q not a number", values: []string{"br;q=high, gzip;q=.5"}, want: [4]int16{1, 0, 0, 0}},
		{name: "q=1. and 0.", values: []string{"br;q=1., gzip;q=0."}, want: [4]int16{1, 0, 1000, 0}},
		{name: "other parameters ignored", values: []string{"br;level=3;q=0.4"}, want: [4]int16{1, 0, 400, 0}},
		{name: "last element naming a coding wins", values: []string{"gzip", "gzip;q=0"}, want: [4]int16{1, 0, 0, 0}},
		{name: "unknown codings ignored", values: []string{"compress, deflate, sdch"}, want: [4]int16{1, 0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := parseAcceptEncoding(tt.values)
			var got [numCodings]int16
			for c := range numCodings {
				got[c] = a.q(c)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseAcceptEncoding(%q) q mismatch (-want +got):\n%s", tt.values, diff)
			}
		})
	}
}

func TestParseAcceptEncodingAllocs(t *testing.T) {
	values := []string{"gzip;q=0.8, deflate, br;q=1.0, zstd;q=0.9, *;q=0"}
	if n := testing.AllocsPerRun(100, func() { parseAcceptEncoding(values) }); n != 0 {
		t.Errorf("parseAcceptEncoding allocates %v times per call, want 0", n)
	}
}

// FuzzAcceptEncoding checks parseAcceptEncoding against a plain reference
// implementation (split, trim, a regular expression for the qvalue
// grammar), that every q-value is in [0, 1], that names and parameters
// are case-insensitive, and that a later element naming gzip wins.
// Seeds: testdata/fuzz/FuzzAcceptEncoding.
func FuzzAcceptEncoding(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		got := parseAcceptEncoding([]string{s})
		if diff := cmp.Diff(referenceAcceptEncoding(s), got, cmp.AllowUnexported(acceptQ{})); diff != "" {
			t.Errorf("parseAcceptEncoding(%q) mismatch with the reference (-want +got):\n%s", s, diff)
		}
		for c := range numCodings {
			if q := got.q(c); q < 0 || q > qMax {
				t.Errorf("q(%s) = %d, out of [0, 1000]", codingNames[c], q)
			}
		}
		if diff := cmp.Diff(got, parseAcceptEncoding([]string{asciiUpper(s)}), cmp.AllowUnexported(acceptQ{})); diff != "" {
			t.Errorf("parse(upper) mismatch (-want +got):\n%s", diff)
		}
		if q := parseAcceptEncoding([]string{s, "gzip;q=0"}).q(codingGzip); q != 0 {
			t.Errorf("gzip;q=0 in a later line: q(gzip) = %d, want 0", q)
		}
	})
}

var qvalueRE = regexp.MustCompile(`^(0(\.[0-9]{0,3})?|1(\.0{0,3})?)$`)

// referenceAcceptEncoding is parseAcceptEncoding written the obvious way.
func referenceAcceptEncoding(s string) acceptQ {
	a := acceptQ{named: [numCodings]int16{-1, -1, -1, -1}, star: -1, present: true}
	for _, el := range strings.Split(s, ",") {
		parts := strings.Split(el, ";")
		name := strings.ToLower(strings.Trim(parts[0], " \t"))
		if name == "" {
			continue
		}
		q := int16(1000)
		for _, p := range parts[1:] {
			p = strings.Trim(p, " \t")
			if len(p) >= 2 && strings.EqualFold(p[:2], "q=") {
				q = 0
				if v := p[2:]; qvalueRE.MatchString(v) {
					f, _ := strconv.ParseFloat(strings.TrimSuffix(v, "."), 64)
					q = int16(f*1000 + 0.5)
				}
				break
			}
		}
		switch name {
		case "*":
			a.star = q
		case "gzip", "x-gzip":
			a.named[codingGzip] = q
		case "br":
			a.named[codingBr] = q
		case "zstd":
			a.named[codingZstd] = q
		case "identity":
			a.named[codingIdentity] = q
		}
	}
	return a
}
