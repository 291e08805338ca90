package pagecache

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseTags(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   []string
	}{
		{name: "none"},
		{name: "spaces", values: []string{"post-12 term-3 home feed author-1"}, want: []string{"post-12", "term-3", "home", "feed", "author-1"}},
		{name: "commas and tabs", values: []string{"post-12,term-3\t, home"}, want: []string{"post-12", "term-3", "home"}},
		{name: "several lines deduped", values: []string{"a b", "b c"}, want: []string{"a", "b", "c"}},
		{name: "invalid dropped", values: []string{"ok bad! also:ok x/y"}, want: []string{"ok", "also:ok"}},
		{name: "too long dropped", values: []string{strings.Repeat("a", 129) + " " + strings.Repeat("b", 128)}, want: []string{strings.Repeat("b", 128)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, parseTags(tt.values)); diff != "" {
				t.Errorf("parseTags(%q) mismatch (-want +got):\n%s", tt.values, diff)
			}
		})
	}
}

func TestParseTagsCapped(t *testing.T) {
	var b strings.Builder
	for i := range 2 * maxTagsPerObject {
		b.WriteString("t")
		b.WriteString(strings.Repeat("x", i%7))
		b.WriteString(string(rune('a' + i%26)))
		b.WriteString(string(rune('a' + i/26%26)))
		b.WriteString(" ")
	}
	if got := len(parseTags([]string{b.String()})); got != maxTagsPerObject {
		t.Errorf("len(parseTags()) = %d, want %d", got, maxTagsPerObject)
	}
}
