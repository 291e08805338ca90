// Package logtail finds the line of a process's log that says why it failed,
// for one-line error messages ("db-1 exited while starting: <that line>").
package logtail

import (
	"os"
	"strings"
)

// tailBytes is how much of the end of a log is read.
const tailBytes = 16 << 10

// LastError returns the last line of the log at path that reads like an
// error (error, fatal, failed), else its last non-empty line. MariaDB's final
// "Aborting" is skipped: the cause is the line before it.
func LastError(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "no log"
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "no log"
	}
	off := max(fi.Size()-tailBytes, 0)
	buf := make([]byte, fi.Size()-off)
	n, _ := f.ReadAt(buf, off)
	lines := strings.Split(strings.TrimSpace(string(buf[:n])), "\n")
	pick := ""
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" {
			continue
		}
		if pick == "" {
			pick = l
		}
		low := strings.ToLower(l)
		if strings.HasSuffix(low, "aborting") {
			continue
		}
		if strings.Contains(low, "error") || strings.Contains(low, "fatal") || strings.Contains(low, "failed") {
			pick = l
			break
		}
	}
	if len(pick) > 400 {
		pick = pick[:400] + "…"
	}
	if pick == "" {
		return "the log is empty"
	}
	return pick
}
