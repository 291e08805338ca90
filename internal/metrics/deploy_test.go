package metrics

import (
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// promtool finds Debian's promtool (scripts/install-deps.sh installs it).
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found (scripts/install-deps.sh installs Debian's prometheus package): %v", err)
	}
	return p
}

// TestPrometheusRules: deploy/prometheus passes promtool's checks and the
// rules' unit tests (example series in scalepress.rules.test.yml).
func TestPrometheusRules(t *testing.T) {
	bin := promtool(t)
	// The config names the files metrics token where `up` writes it under
	// /var/lib/scalepress; promtool checks that the file exists.
	conf, err := os.ReadFile("../../deploy/prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tok, rules := filepath.Join(dir, "files-metrics-token"), filepath.Join(dir, "rules.yml")
	for name, from := range map[string]string{tok: "", rules: "../../deploy/prometheus/rules/scalepress.rules.yml"} {
		var b []byte
		if from != "" {
			if b, err = os.ReadFile(from); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(name, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	text := strings.NewReplacer("/var/lib/scalepress/secrets/files-metrics-token", tok, "rules/scalepress.rules.yml", rules).Replace(string(conf))
	if text == string(conf) {
		t.Fatal("prometheus.yml no longer names the token file or the rules where this test expects them")
	}
	confCopy := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(confCopy, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"check", "config", confCopy},
		{"check", "rules", "rules/scalepress.rules.yml"},
		{"test", "rules", "rules/scalepress.rules.test.yml"},
	} {
		cmd := exec.Command(bin, args...)
		cmd.Dir = "../../deploy/prometheus"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// metricName finds the metric names of our roles and of the library's
// collectors in a PromQL expression.
var metricName = regexp.MustCompile(`\b(?:scalepress|go|process)_[a-z0-9_]+\b`)

// documentedNames are every metric docs/metrics.md lists, in any section.
func documentedNames(t *testing.T) map[string]string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	section := ""
	for line := range strings.Lines(string(doc)) {
		if h, ok := strings.CutPrefix(line, "## "); ok {
			section = strings.ToLower(strings.TrimSpace(h))
			continue
		}
		if section == "" {
			continue
		}
		ds, err := Documented([]byte("## "+section+"\n"+line), section)
		if err == nil {
			names[ds[0].Name] = ds[0].Type
		}
	}
	return names
}

// unknownNames returns the names in expr that docs/metrics.md does not
// list (a histogram's _bucket, _count and _sum count as the histogram).
func unknownNames(expr string, known map[string]string) []string {
	var out []string
	for _, n := range metricName.FindAllString(expr, -1) {
		if _, ok := known[n]; ok {
			continue
		}
		base, ok := "", false
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			if b, cut := strings.CutSuffix(n, suffix); cut {
				base, ok = b, true
			}
		}
		if ok && known[base] == "histogram" {
			continue
		}
		out = append(out, n)
	}
	return out
}

// TestGrafanaDashboard: deploy/grafana/scalepress.json is a dashboard whose
// every query names only metrics that exist (docs/metrics.md, which the role
// tests hold to the registries).
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("../../deploy/grafana/scalepress.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("scalepress.json: %v", err)
	}
	if dash.Title == "" || dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatalf("scalepress.json: title %q uid %q, %d panels", dash.Title, dash.UID, len(dash.Panels))
	}
	known := documentedNames(t)
	queries := 0
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			queries++
			if len(metricName.FindAllString(q.Expr, -1)) == 0 {
				t.Errorf("panel %q: %q names no metric", p.Title, q.Expr)
			}
			if u := unknownNames(q.Expr, known); len(u) > 0 {
				t.Errorf("panel %q: %q names metrics docs/metrics.md does not list: %v", p.Title, q.Expr, u)
			}
		}
	}
	t.Logf("%d panels, %d queries, %d bytes", len(dash.Panels), queries, len(b))
}

// TestRulesNameDocumentedMetrics: the alert rules name only metrics that
// exist (a typo would make an alert that never fires).
func TestRulesNameDocumentedMetrics(t *testing.T) {
	b, err := os.ReadFile("../../deploy/prometheus/rules/scalepress.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	known := documentedNames(t)
	seen := map[string]bool{}
	for line := range strings.Lines(string(b)) {
		if strings.HasPrefix(strings.TrimSpace(line), "#") || strings.Contains(line, "summary:") || strings.Contains(line, "description:") {
			continue
		}
		for _, n := range unknownNames(line, known) {
			seen[n] = true
		}
	}
	if len(seen) > 0 {
		t.Errorf("rules name metrics docs/metrics.md does not list: %v", slices.Sorted(maps.Keys(seen)))
	}
}

func TestUnknownNames(t *testing.T) {
	known := map[string]string{"scalepress_a_seconds": "histogram", "scalepress_b_total": "counter"}
	for _, tt := range []struct {
		name, expr string
		want       []string
	}{
		{"histogram parts", `histogram_quantile(0.9, rate(scalepress_a_seconds_bucket[5m])) + scalepress_a_seconds_count`, nil},
		{"counter", `rate(scalepress_b_total[5m])`, nil},
		{"typo", `rate(scalepress_b_totl[5m])`, []string{"scalepress_b_totl"}},
		{"not a histogram", `scalepress_b_total_bucket`, []string{"scalepress_b_total_bucket"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := unknownNames(tt.expr, known); !slices.Equal(got, tt.want) {
				t.Errorf("unknownNames(%q) = %v, want %v", tt.expr, got, tt.want)
			}
		})
	}
}
