package pagecache

import (
	"time"
)

// parseHTTPDate parses an HTTP-date strictly (RFC 9110 §5.6.7): the
// preferred IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") and the two
// obsolete forms a recipient must accept, rfc850-date ("Sunday, 06-Nov-94
// 08:49:37 GMT") and asctime-date ("Sun Nov  6 08:49:37 1994"). Anything
// else is invalid: other spacing, a one-digit hour, a zone other than GMT,
// a day that does not exist. A two-digit year more than 50 years after now
// is the most recent past year with those digits (§5.6.7).
//
// time.Parse (and so http.ParseTime) is more lenient (it takes "8:49:37"
// and "Sun,  06 Nov ..."), which RFC 9111 §5.3 wants treated as invalid.
func parseHTTPDate(s string, now time.Time) (time.Time, bool) {
	switch {
	case len(s) == len("Sun, 06 Nov 1994 08:49:37 GMT") && s[3] == ',':
		return parseIMFFixdate(s)
	case len(s) == len("Sun Nov  6 08:49:37 1994") && s[3] == ' ':
		return parseASCTime(s)
	}
	return parseRFC850(s, now)
}

var dayNames = [...]string{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}

var longDayNames = [...]string{"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}

var monthNames = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

func oneOf(s string, names []string) bool {
	for _, n := range names {
		if s == n {
			return true
		}
	}
	return false
}

func month(s string) (time.Month, bool) {
	for i, m := range monthNames {
		if s == m {
			return time.Month(i + 1), true
		}
	}
	return 0, false
}

// digits parses s, which must be all ASCII digits (and not empty).
func digits(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// clock parses time-of-day, "HH:MM:SS" (two digits each).
func clock(s string) (h, m, sec int, ok bool) {
	if len(s) != 8 || s[2] != ':' || s[5] != ':' {
		return 0, 0, 0, false
	}
	h, ok1 := digits(s[0:2])
	m, ok2 := digits(s[3:5])
	sec, ok3 := digits(s[6:8])
	// second may be 60 (a leap second, RFC 9110 §5.6.7).
	return h, m, sec, ok1 && ok2 && ok3 && h <= 23 && m <= 59 && sec <= 60
}

// date builds the time, rejecting a day that does not exist (31 Feb).
func date(year int, mon time.Month, day, h, m, sec int) (time.Time, bool) {
	leap := sec == 60
	if leap {
		sec = 59
	}
	t := time.Date(year, mon, day, h, m, sec, 0, time.UTC)
	if t.Day() != day || t.Month() != mon {
		return time.Time{}, false
	}
	if leap {
		t = t.Add(time.Second)
	}
	return t, true
}

// parseIMFFixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
func parseIMFFixdate(s string) (time.Time, bool) {
	if !oneOf(s[0:3], dayNames[:]) || s[3:5] != ", " || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' || s[25:] != " GMT" {
		return time.Time{}, false
	}
	day, ok1 := digits(s[5:7])
	mon, ok2 := month(s[8:11])
	year, ok3 := digits(s[12:16])
	h, m, sec, ok4 := clock(s[17:25])
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return time.Time{}, false
	}
	return date(year, mon, day, h, m, sec)
}

// parseASCTime: "Sun Nov  6 08:49:37 1994" (day is SP DIGIT or 2DIGIT).
func parseASCTime(s string) (time.Time, bool) {
	if !oneOf(s[0:3], dayNames[:]) || s[3] != ' ' || s[7] != ' ' || s[10] != ' ' || s[19] != ' ' {
		return time.Time{}, false
	}
	mon, ok1 := month(s[4:7])
	dd := s[8:10]
	if dd[0] == ' ' {
		dd = dd[1:]
	}
	day, ok2 := digits(dd)
	h, m, sec, ok3 := clock(s[11:19])
	year, ok4 := digits(s[20:24])
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return time.Time{}, false
	}
	return date(year, mon, day, h, m, sec)
}

// parseRFC850: "Sunday, 06-Nov-94 08:49:37 GMT".
func parseRFC850(s string, now time.Time) (time.Time, bool) {
	i := 0
	for i < len(s) && s[i] != ',' {
		i++
	}
	if !oneOf(s[:i], longDayNames[:]) {
		return time.Time{}, false
	}
	s = s[i:]
	if len(s) != len(", 06-Nov-94 08:49:37 GMT") || s[0:2] != ", " || s[4] != '-' || s[8] != '-' || s[11] != ' ' || s[20:] != " GMT" {
		return time.Time{}, false
	}
	day, ok1 := digits(s[2:4])
	mon, ok2 := month(s[5:8])
	yy, ok3 := digits(s[9:11])
	h, m, sec, ok4 := clock(s[12:20])
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return time.Time{}, false
	}
	year := now.UTC().Year()/100*100 + yy
	t, ok := date(year, mon, day, h, m, sec)
	if ok && t.After(now.AddDate(50, 0, 0)) {
		t, ok = date(year-100, mon, day, h, m, sec)
	}
	return t, ok
}

// headerDate is the value of a date header field with exactly one valid
// HTTP-date (RFC 9111 §4.2.1: several values may be taken as invalid).
func headerDate(vals []string, now time.Time) (time.Time, bool) {
	if len(vals) != 1 {
		return time.Time{}, false
	}
	return parseHTTPDate(vals[0], now)
}

// parseAge parses the Age field (RFC 9111 §5.1): absent is 0. Several field
// lines, a list or anything but delta-seconds is invalid (ok false), which
// planFor takes as stale: see its documentation for why this departs from
// §5.1's "SHOULD use the first member" / "SHOULD ignore the field".
func parseAge(vals []string) (secs int64, ok bool) {
	switch len(vals) {
	case 0:
		return 0, true
	case 1:
		return parseDeltaOK(vals[0])
	}
	return 0, false
}
