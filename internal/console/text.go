package console

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/scalepress/scalepress/internal/api"
)

// sparks are the eight heights of a sparkline.
var sparks = []rune("▁▂▃▄▅▆▇█")

// Text writes doc as plain text at most width columns wide: what
// `scalepress top` shows, and prints once with --once.
func Text(w io.Writer, doc api.Console, width int) {
	width = max(width, 60)
	st := doc.Status
	p := func(format string, args ...any) {
		line := fmt.Sprintf(format, args...)
		if r := []rune(line); len(r) > width {
			line = string(r[:width-1]) + "…"
		}
		fmt.Fprintln(w, line)
	}
	ready := "starting"
	if st.Ready {
		ready = "ready"
	}
	p("scalepress %s  %s  %s   host CPU %.0f%% of %d, load %.2f", st.SiteURL, ready, doc.Time.Local().Format("15:04:05"), 100*doc.Host.CPU, doc.Host.CPUs, doc.Host.Load1)
	p("")
	inService := 0
	for _, n := range st.Nodes {
		if n.State == api.NodeInService {
			inService++
		}
	}
	head := fmt.Sprintf("NODES  %d, %d in service", len(st.Nodes), inService)
	if a := st.Autoscaling; a != nil {
		head += fmt.Sprintf(", desired %d (min %d, max %d)   load %.0f%% / target %.0f%%", a.Desired, a.Min, a.Max, 100*a.Utilization, 100*a.Target)
	}
	p("%s", head)
	for _, n := range st.Nodes {
		p("  %-9s %-11s %-16s %s %3.0f%%  restarts %d  files %d", n.ID, n.State, hostOf(n.Addr), bar(n.Utilization, 10), 100*n.Utilization, n.Restarts, n.FilesSeq)
	}
	if len(doc.Load) > 1 {
		n := min(len(doc.Load), width-14)
		p("  load     %s", sparkline(doc.Load[len(doc.Load)-n:]))
		first := doc.Load[len(doc.Load)-n].Time
		p("           last %s", doc.Time.Sub(first).Round(time.Second))
	}
	p("")
	p("EDGES")
	for _, e := range doc.Edges {
		health := "healthy"
		if !e.Healthy {
			health = "unhealthy"
		}
		ratio := "   –"
		if e.Hits+e.Misses+e.Stale > 0 {
			ratio = fmt.Sprintf("%3.0f%%", 100*e.HitRatio)
		}
		line := fmt.Sprintf("  %-9s %-10s %-9s hit %s  %d hits %d misses  purged %d  objects %d", e.ID, e.Region, health, ratio, e.Hits, e.Misses, e.Purged, e.Objects)
		if e.Error != "" {
			line += "  (" + e.Error + ")"
		}
		p("%s", line)
	}
	if db := st.DB; db != nil {
		p("")
		p("DB     router %s  writer %s", db.Router, dash(db.Writer))
		for _, m := range db.Members {
			committed := "–" // a standalone member reports no Galera seqno
			if m.LastCommitted > 0 {
				committed = fmt.Sprint(m.LastCommitted)
			}
			p("  %-9s %-11s %-21s committed %s", m.ID, m.State, m.Addr, committed)
		}
	}
	if f := st.Files; f != nil {
		p("")
		p("FILES  store %s, sequence %d", f.State, f.Seq)
		for _, n := range st.Nodes {
			p("  %-9s applied %d, behind %d", n.ID, n.FilesSeq, f.Seq-min(f.Seq, n.FilesSeq))
		}
	}
	if d := st.DNS; d != nil {
		p("")
		p("DNS    %s on %s, %s", d.Zone, d.Addr, d.State)
		answers := map[string]api.DNSAnswers{}
		for _, a := range doc.DNS {
			answers[a.Region] = a
		}
		for _, r := range d.Regions {
			health := "healthy"
			if !r.Healthy {
				health = "no healthy edge"
			}
			p("  %-9s %s  %s%s", r.Name, strings.Join(r.Edges, ","), health, answersText(answers, r.Name))
		}
	}
	if len(doc.Events) > 0 {
		p("")
		p("EVENTS")
		for _, e := range doc.Events[max(0, len(doc.Events)-8):] {
			p("  %s %-8s %s", e.Time.Local().Format("15:04:05"), e.Kind, e.Message)
		}
	}
}

func hostOf(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i > 0 {
		return addr[:i]
	}
	return addr
}

func dash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// bar is a fraction in [0, 1] as n cells.
func bar(x float64, n int) string {
	full := int(min(max(x, 0), 1)*float64(n) + 0.5)
	return "[" + strings.Repeat("#", full) + strings.Repeat(".", n-full) + "]"
}

// sparkline draws utilisation per sample, 0..1 over the eight heights.
func sparkline(load []api.LoadSample) string {
	var b strings.Builder
	for _, s := range load {
		i := int(min(max(s.Utilization, 0), 1) * float64(len(sparks)-1))
		b.WriteRune(sparks[i])
	}
	return b.String()
}

// answersText is a region's answers for the DNS lines: rate and total, or
// why they could not be read; nothing when the console has none.
func answersText(answers map[string]api.DNSAnswers, region string) string {
	a, ok := answers[region]
	switch {
	case !ok:
		return ""
	case a.Error != "":
		return "  answers: " + a.Error
	}
	return fmt.Sprintf("  %.1f answers/s, %d total", a.Rate, a.Answers)
}
