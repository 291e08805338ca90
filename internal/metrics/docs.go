package metrics

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// EveryRole is the docs/metrics.md section whose metrics every role exposes.
const EveryRole = "every role"

// Doc is one metric as docs/metrics.md lists it: a table row
// "| `name` | type | labels | meaning |" under a "## role" heading.
type Doc struct {
	Name   string
	Type   string // counter, gauge, histogram
	Labels []string
}

// Documented returns the metrics doc lists under "## role" and under
// "## every role".
func Documented(doc []byte, role string) ([]Doc, error) {
	var out []Doc
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(doc))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if h, ok := strings.CutPrefix(line, "## "); ok {
			section = strings.ToLower(strings.TrimSpace(h))
			continue
		}
		if section != role && section != EveryRole || !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 4 {
			return nil, fmt.Errorf("metrics docs: line %d: want 4 cells (name, type, labels, meaning), got %d", n, len(cells))
		}
		d := Doc{Name: strings.Trim(strings.TrimSpace(cells[0]), "`"), Type: strings.TrimSpace(cells[1])}
		if !model.IsValidLegacyMetricName(d.Name) {
			return nil, fmt.Errorf("metrics docs: line %d: %q is not a metric name", n, d.Name)
		}
		switch d.Type {
		case "counter", "gauge", "histogram":
		default:
			return nil, fmt.Errorf("metrics docs: line %d: %s: type %q is not counter, gauge or histogram", n, d.Name, d.Type)
		}
		for l := range strings.SplitSeq(cells[2], ",") {
			if l = strings.Trim(strings.TrimSpace(l), "`"); l != "" && l != "—" && l != "-" {
				d.Labels = append(d.Labels, l)
			}
		}
		slices.Sort(d.Labels)
		out = append(out, d)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("metrics docs: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("metrics docs: no metric listed for %q", role)
	}
	return out, nil
}

// Gather returns g's metric families by name.
func Gather(g prometheus.Gatherer) (map[string]*dto.MetricFamily, error) {
	mfs, err := g.Gather()
	if err != nil {
		return nil, fmt.Errorf("metrics: gather: %w", err)
	}
	out := make(map[string]*dto.MetricFamily, len(mfs))
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out, nil
}

// Parse reads the text exposition format (what a role's /metrics serves).
func Parse(text []byte) (map[string]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("metrics: parse: %w", err)
	}
	return mfs, nil
}

// Check compares exposed families with docs: a documented metric that is
// not exposed, or exposed with another type or other labels, and an exposed
// scalepress_ metric that is not documented, each make one problem.
func Check(exposed map[string]*dto.MetricFamily, docs []Doc) []string {
	var problems []string
	listed := map[string]bool{}
	for _, d := range docs {
		listed[d.Name] = true
		mf, ok := exposed[d.Name]
		if !ok {
			problems = append(problems, d.Name+": documented, not exposed")
			continue
		}
		if got := strings.ToLower(mf.GetType().String()); got != d.Type {
			problems = append(problems, fmt.Sprintf("%s: documented as %s, exposed as %s", d.Name, d.Type, got))
		}
		if !strings.HasPrefix(d.Name, "scalepress_") {
			continue // the library's own collectors: their labels are theirs
		}
		labels := map[string]bool{}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() != "le" {
					labels[l.GetName()] = true
				}
			}
		}
		if len(mf.GetMetric()) == 0 {
			continue
		}
		if got := slices.Sorted(maps.Keys(labels)); !slices.Equal(got, d.Labels) {
			problems = append(problems, fmt.Sprintf("%s: documented labels %v, exposed %v", d.Name, d.Labels, got))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(exposed)) {
		if strings.HasPrefix(name, "scalepress_") && !listed[name] {
			problems = append(problems, name+": exposed, not documented in docs/metrics.md")
		}
	}
	return problems
}
