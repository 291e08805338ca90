package local

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// processTree maps every process to its children, from /proc.
func processTree() map[int][]int {
	parents := map[int][]int{}
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		p, _ := strconv.Atoi(strings.Fields(s)[0])
		parents[ppid] = append(parents[ppid], p)
	}
	return parents
}

// descendants lists the descendants of pid in tree, breadth first.
func descendants(tree map[int][]int, pid int) []int {
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, ch := range tree[p] {
			out = append(out, ch)
			queue = append(queue, ch)
		}
	}
	return out
}
