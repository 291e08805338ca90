package rolelog

import "time"

// Line is one line of a log with its time (a line without one, such as a
// stack trace, has the time of the line before it).
type Line struct {
	Time   time.Time
	Source string // the process name
	Text   string
}

// maxLine bounds a line; longer lines are cut.
const maxLine = 64 << 10

func line(text, source string, prev *time.Time, loc *time.Location) Line {
	if t, ok := ParseTime(text, loc); ok {
		*prev = t
	}
	return Line{Time: *prev, Source: source, Text: text}
}

// Merge merges logs, each in its own order, into one ordered by time: the
// earliest head goes first, a tie goes to the log listed first, and the
// lines of one log keep their order even where its clock went back.
func Merge(logs ...[]Line) []Line {
	n := 0
	for _, l := range logs {
		n += len(l)
	}
	out := make([]Line, 0, n)
	heads := make([]int, len(logs))
	for len(out) < n {
		best := -1
		for i, l := range logs {
			if heads[i] == len(l) {
				continue
			}
			if best < 0 || l[heads[i]].Time.Before(logs[best][heads[best]].Time) {
				best = i
			}
		}
		out = append(out, logs[best][heads[best]])
		heads[best]++
	}
	return out
}
