package phpfpm

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const gib = 1 << 30

func TestSize(t *testing.T) {
	tests := []struct {
		name string
		cpus int
		mem  uint64
		want int
	}{
		{name: "1 cpu plenty of memory", cpus: 1, mem: 16 * gib, want: 2},
		{name: "2 cpus 4 GiB", cpus: 2, mem: 4 * gib, want: 4},
		{name: "8 cpus 16 GiB", cpus: 8, mem: 16 * gib, want: 16},
		{name: "capped at 32", cpus: 64, mem: 256 * gib, want: 32},
		{name: "memory bound", cpus: 16, mem: 1 * gib, want: 8},
		{name: "memory bound below cpu minimum", cpus: 4, mem: 192 << 20, want: 1},
		{name: "tiny memory still 1", cpus: 4, mem: 10 << 20, want: 1},
		{name: "zero memory still 1", cpus: 4, mem: 0, want: 1},
		{name: "zero cpus treated as 1", cpus: 0, mem: 16 * gib, want: 2},
		{name: "negative cpus treated as 1", cpus: -3, mem: 16 * gib, want: 2},
		{name: "huge cpu count does not overflow", cpus: int(^uint(0) >> 1), mem: 1 << 62, want: 32},
		{name: "max memory", cpus: 4, mem: ^uint64(0), want: 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Size(tt.cpus, tt.mem); got != tt.want {
				t.Errorf("Size(%d, %d) = %d, want %d", tt.cpus, tt.mem, got, tt.want)
			}
		})
	}
}

func TestParseMemTotal(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    uint64
		wantErr string
	}{
		{name: "typical", in: "MemTotal:       16318480 kB\nMemFree:         1234 kB\n", want: 16318480 * 1024},
		{name: "not first line", in: "Foo: 1 kB\nMemTotal: 2048 kB\n", want: 2 << 20},
		{name: "missing", in: "MemFree: 1 kB\n", wantErr: "phpfpm: mem total: no MemTotal line in /proc/meminfo"},
		{name: "no unit", in: "MemTotal: 2048\n", wantErr: `phpfpm: mem total: malformed line "MemTotal: 2048"`},
		{name: "not a number", in: "MemTotal: lots kB\n", wantErr: `phpfpm: mem total: malformed line "MemTotal: lots kB"`},
		{name: "overflows bytes", in: "MemTotal: 18446744073709551615 kB\n", wantErr: `phpfpm: mem total: malformed line "MemTotal: 18446744073709551615 kB"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMemTotal(strings.NewReader(tt.in))
			if diff := cmp.Diff(tt.wantErr, errString(err)); diff != "" {
				t.Errorf("error mismatch (-want +got):\n%s", diff)
			}
			if got != tt.want {
				t.Errorf("parseMemTotal() = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestMemTotal(t *testing.T) {
	got, err := MemTotal()
	if err != nil {
		t.Fatalf("MemTotal() error = %v", err)
	}
	if got < 64<<20 {
		t.Errorf("MemTotal() = %d, implausibly small", got)
	}
}
