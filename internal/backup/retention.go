package backup

import (
	"sort"
	"time"
)

// Retention says which backups a schedule keeps.
type Retention struct {
	KeepHourly int // the newest backup of each of the last KeepHourly hours
	KeepDaily  int // the newest backup of each of the last KeepDaily days (UTC)
}

// Dated is a backup and when it was taken.
type Dated struct {
	ID   string
	Time time.Time
}

// Plan splits backups into those to keep and those to remove at now. The
// newest backup is always kept, and so is one from the future (a clock
// that moved back); hours and days are counted back from now's, so the
// current hour and day are the first of each.
func (r Retention) Plan(backups []Dated, now time.Time) (keep, remove []string) {
	bs := append([]Dated(nil), backups...)
	sort.Slice(bs, func(i, j int) bool { return bs[i].Time.After(bs[j].Time) })
	kept := map[string]bool{}
	if len(bs) > 0 {
		kept[bs[0].ID] = true
	}
	hour := now.UTC().Truncate(time.Hour)
	y, mo, d := now.UTC().Date()
	day := time.Date(y, mo, d, 0, 0, 0, 0, time.UTC)
	seenHour, seenDay := map[int]bool{}, map[int]bool{}
	for _, b := range bs {
		t := b.Time.UTC()
		if t.After(now) {
			kept[b.ID] = true
			continue
		}
		// Newest first: the first backup seen in a bucket is its newest.
		if h := int(hour.Sub(t.Truncate(time.Hour)) / time.Hour); h < r.KeepHourly && !seenHour[h] {
			seenHour[h], kept[b.ID] = true, true
		}
		by, bm, bd := t.Date()
		if dd := int(day.Sub(time.Date(by, bm, bd, 0, 0, 0, 0, time.UTC)) / (24 * time.Hour)); dd < r.KeepDaily && !seenDay[dd] {
			seenDay[dd], kept[b.ID] = true, true
		}
	}
	for _, b := range bs {
		if kept[b.ID] {
			keep = append(keep, b.ID)
		} else {
			remove = append(remove, b.ID)
		}
	}
	return keep, remove
}
