package autoscale

import (
	"bytes"
	"fmt"
	"strconv"
)

// ParsePressure returns the "some avg10" of a Linux PSI file
// (/proc/pressure/cpu, a cgroup's cpu.pressure) as a share, 0 to 1: the
// part of the last 10 s in which some runnable task waited for a CPU.
func ParsePressure(b []byte) (float64, error) {
	for line := range bytes.Lines(b) {
		fields := bytes.Fields(line)
		if len(fields) == 0 || string(fields[0]) != "some" {
			continue
		}
		for _, f := range fields[1:] {
			v, ok := bytes.CutPrefix(f, []byte("avg10="))
			if !ok {
				continue
			}
			pct, err := strconv.ParseFloat(string(v), 64)
			if err != nil || !(pct >= 0 && pct <= 100) {
				return 0, fmt.Errorf("autoscale: cpu pressure: avg10 %q is not a percentage", v)
			}
			return pct / 100, nil
		}
		return 0, fmt.Errorf("autoscale: cpu pressure: no avg10 on the some line")
	}
	return 0, fmt.Errorf("autoscale: cpu pressure: no some line")
}
