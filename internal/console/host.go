package console

import (
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/scalepress/scalepress/internal/api"
)

// cpuSampler works out the host's busy CPU share between two samples from
// /proc/stat (Linux; elsewhere it reports only the CPU count).
type cpuSampler struct {
	busy, total uint64
}

func (s *cpuSampler) sample() api.HostLoad {
	h := api.HostLoad{CPUs: runtime.NumCPU()}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			h.Load1, _ = strconv.ParseFloat(f[0], 64)
		}
	}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return h
	}
	busy, total, ok := parseCPU(string(b))
	if !ok {
		return h
	}
	if s.total > 0 && total > s.total {
		h.CPU = float64(busy-min(busy, s.busy)) / float64(total-s.total)
	}
	s.busy, s.total = busy, total
	return h
}

// parseCPU reads the "cpu" line of /proc/stat: busy and total jiffies
// (idle and iowait are not busy).
func parseCPU(stat string) (busy, total uint64, ok bool) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, false
	}
	for i, v := range f[1:] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		if i >= 8 { // guest and guest_nice are already in user and nice
			break
		}
		total += n
		if i != 3 && i != 4 {
			busy += n
		}
	}
	return busy, total, true
}
