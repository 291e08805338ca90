package phpfpm

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

const (
	perChildBytes = 64 << 20 // assumed resident memory of one PHP child
	memFraction   = 0.5      // share of memory php-fpm children may use
	minBySize     = 2
	maxBySize     = 32
)

// Size picks pm.max_children for pm = static: twice the CPUs, clamped to
// [2, 32], and at most memBytes*0.5 / 64 MiB; never below 1.
func Size(cpus int, memBytes uint64) int {
	return size(cpus, memBytes, perChildBytes, memFraction)
}

func size(cpus int, memBytes, perChild uint64, fraction float64) int {
	cpus = min(max(cpus, 1), maxBySize) // also keeps 2*cpus from overflowing
	n := min(max(2*cpus, minBySize), maxBySize)
	if byMem := uint64(float64(memBytes)*fraction) / perChild; byMem < uint64(n) {
		n = int(byMem)
	}
	return max(n, 1)
}

// MemTotal returns MemTotal from /proc/meminfo, in bytes.
func MemTotal() (uint64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("phpfpm: mem total: %w", err)
	}
	defer f.Close()
	return parseMemTotal(f)
}

func parseMemTotal(r io.Reader) (uint64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("phpfpm: mem total: malformed line %q", sc.Text())
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil || kb > (1<<64-1)/1024 {
			return 0, fmt.Errorf("phpfpm: mem total: malformed line %q", sc.Text())
		}
		return kb * 1024, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("phpfpm: mem total: %w", err)
	}
	return 0, fmt.Errorf("phpfpm: mem total: no MemTotal line in /proc/meminfo")
}
