package filesync

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCheckPathSyntax(t *testing.T) {
	tests := []struct {
		name string
		path string
		rule string // "" means valid
	}{
		{"file", "index.php", ""},
		{"nested", "wp-content/uploads/2024/01/a b.jpg", ""},
		{"unicode", "wp-content/uploads/café.png", ""},
		{"dotfile", ".htaccess", ""},
		{"dots in a name", "a..b/c...", ""},
		{"empty", "", RuleEmpty},
		{"invalid utf-8", "a\xffb", RuleEncoding},
		{"nul", "a\x00b", RuleNUL},
		{"newline", "a\nb", RuleControl},
		{"delete char", "a\x7fb", RuleControl},
		{"backslash", `a\b`, RuleBackslash},
		{"absolute", "/etc/passwd", RuleAbsolute},
		{"root", "/", RuleAbsolute},
		{"leading dot-dot", "../x", RuleDotDot},
		{"inner dot-dot", "a/../b", RuleDotDot},
		{"trailing dot-dot", "a/..", RuleDotDot},
		{"dot", ".", RuleDotSegment},
		{"inner dot", "a/./b", RuleDotSegment},
		{"double slash", "a//b", RuleEmptySegment},
		{"trailing slash", "a/", RuleEmptySegment},
		{"too long", strings.Repeat("a/", MaxPathLen/2) + "a", RuleTooLong},
		{"longest", strings.Repeat("a", MaxPathLen), ""},
		{"too deep", strings.Repeat("a/", 8) + "a", RuleTooDeep},
		{"deepest", strings.Repeat("a/", 7) + "a", ""},
		{"agent temp file", "a/.filesync-1.tmp", RuleReserved},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkPathSyntax(tt.path, 8)
			var rej *RejectError
			switch {
			case tt.rule == "" && err != nil:
				t.Fatalf("checkPathSyntax(%q) = %v, want nil", tt.path, err)
			case tt.rule == "":
			case !errors.As(err, &rej):
				t.Fatalf("checkPathSyntax(%q) = %v, want a RejectError", tt.path, err)
			case rej.Rule != tt.rule || rej.Path != tt.path || !errors.Is(err, ErrRejected):
				t.Fatalf("checkPathSyntax(%q) = rule %q path %q, want rule %q", tt.path, rej.Rule, rej.Path, tt.rule)
			}
		})
	}
}

func TestExcluder(t *testing.T) {
	ex, err := newExcluder(DefaultExclude)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		want bool
	}{
		{"wp-content/cache", true},
		{"wp-content/cache/page.html", true},
		{"wp-content/cache/a/b/c", true},
		{"wp-content/cache2/x", false},
		{"other/wp-content/cache/x", false},
		{"wp-content/upgrade/core.zip", true},
		{"upload.tmp", true},
		{"wp-content/uploads/x.tmp", true},
		{"dir.tmp/inside.txt", true},
		{"x.tmp.jpg", false},
		{".git", true},
		{".git/HEAD", true},
		{"wp-content/plugins/p/.git/config", true},
		{".gitignore", false},
		{"wp-config.php", true},
		{"wp-config-sample.php", false},
		{"index.php", false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := ex.match(tt.path); got != tt.want {
				t.Errorf("match(%q) = %v, want %v", tt.path, got, tt.want)
			}
		})
	}
}

func TestCompilePattern(t *testing.T) {
	tests := []struct {
		in      string
		want    pattern
		wantErr bool
	}{
		{"*.tmp", pattern{glob: "*.tmp"}, false},
		{"cache/", pattern{glob: "cache"}, false},
		{"/wp-config.php", pattern{glob: "wp-config.php", anchored: true}, false},
		{"wp-content/cache/", pattern{glob: "wp-content/cache", anchored: true}, false},
		{"", pattern{}, true},
		{"/", pattern{}, true},
		{"[", pattern{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := compilePattern(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("compilePattern(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(pattern{})); diff != "" {
				t.Errorf("compilePattern(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParentDirs(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"a", nil},
		{"a/b", []string{"a"}},
		{"a/b/c", []string{"a", "a/b"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, parentDirs(tt.in)); diff != "" {
				t.Errorf("parentDirs(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}
