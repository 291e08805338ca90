package rolelog

import (
	"regexp"
	"strings"
	"time"
)

// The line formats of the processes an environment runs, by the time at
// their start.
var (
	// Go's slog text handler (every scalepress role): time=2026-12-07T09:03:17.123Z
	slogTime = regexp.MustCompile(`^time=(\S+)`)
	// MariaDB: 2026-12-07  9:03:17 0 [Note] ...
	mariaTime = regexp.MustCompile(`^(\d{4}-\d{2}-\d{2}) +(\d{1,2}):(\d{2}):(\d{2})`)
	// redis: 1234:M 07 Dec 2026 09:03:17.123 * ...
	redisTime = regexp.MustCompile(`^\d+:[A-Z] (\d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2}\.\d{3})`)
	// php-fpm: [07-Dec-2026 09:03:17] NOTICE: ...
	fpmTime = regexp.MustCompile(`^\[(\d{2}-[A-Z][a-z]{2}-\d{4} \d{2}:\d{2}:\d{2})\]`)
	// Go's log package: 2026/12/07 09:03:17 ...
	goLogTime = regexp.MustCompile(`^(\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?)`)
)

// ParseTime returns the time a log line starts with; times without a zone
// are in loc.
func ParseTime(line string, loc *time.Location) (time.Time, bool) {
	if m := slogTime.FindStringSubmatch(line); m != nil {
		t, err := time.Parse(time.RFC3339Nano, strings.Trim(m[1], `"`))
		return t, err == nil
	}
	if m := mariaTime.FindStringSubmatch(line); m != nil {
		h := m[2]
		if len(h) == 1 {
			h = "0" + h
		}
		t, err := time.ParseInLocation("2006-01-02 15:04:05", m[1]+" "+h+":"+m[3]+":"+m[4], loc)
		return t, err == nil
	}
	if m := redisTime.FindStringSubmatch(line); m != nil {
		t, err := time.ParseInLocation("02 Jan 2006 15:04:05.000", m[1], loc)
		return t, err == nil
	}
	if m := fpmTime.FindStringSubmatch(line); m != nil {
		t, err := time.ParseInLocation("02-Jan-2006 15:04:05", m[1], loc)
		return t, err == nil
	}
	if m := goLogTime.FindStringSubmatch(line); m != nil {
		t, err := time.ParseInLocation("2006/01/02 15:04:05.999999999", m[1], loc)
		return t, err == nil
	}
	return time.Time{}, false
}
