package supervise

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/scalepress/scalepress/internal/atomicfile"
)

func pidFilePath(dir, name string) string {
	return filepath.Join(dir, name+".pid")
}

// writePIDFile atomically and durably writes "pid\nexe\n" to dir/name.pid.
func writePIDFile(dir, name string, pid int, exe string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	path := pidFilePath(dir, name)
	return atomicfile.Write(path, fmt.Appendf(nil, "%d\n%s\n", pid, exe), 0o644)
}

// readPIDFile parses a file written by writePIDFile.
func readPIDFile(path string) (pid int, exe string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, "", err
	}
	pidLine, rest, ok := strings.Cut(string(b), "\n")
	exe = strings.TrimSuffix(rest, "\n")
	if !ok || exe == "" || strings.Contains(exe, "\n") {
		return 0, "", errors.New("want \"pid\\nexe\\n\"")
	}
	pid, err = strconv.Atoi(pidLine)
	if err != nil || pid <= 0 {
		return 0, "", fmt.Errorf("bad pid %q", pidLine)
	}
	return pid, exe, nil
}

// exePath returns what /proc/PID/exe says for a freshly started child, which
// is what CleanupStale compares against later. If the child is already gone,
// it falls back to the resolved program path.
func exePath(pid int, program string) string {
	if exe, err := os.Readlink(procPath(pid, "exe")); err == nil {
		return trimDeleted(exe)
	}
	if abs, err := filepath.Abs(program); err == nil {
		program = abs
	}
	if resolved, err := filepath.EvalSymlinks(program); err == nil {
		return resolved
	}
	return program
}

// trimDeleted strips the marker the kernel appends to /proc/PID/exe when the
// binary was replaced on disk (e.g. by a package upgrade) while running.
func trimDeleted(exe string) string {
	return strings.TrimSuffix(exe, " (deleted)")
}

func procPath(pid int, file string) string {
	return "/proc/" + strconv.Itoa(pid) + "/" + file
}
