package token

import (
	"net/http"
	"strings"
	"testing"
)

func TestIssueVerify(t *testing.T) {
	root := NewKey()
	files := root.Derive(Files)
	tok := files.Issue("node-3")
	id, err := files.Verify(tok)
	if err != nil || id != "node-3" {
		t.Fatalf("Verify(own token) = %q, %v", id, err)
	}
	tests := []struct {
		name string
		tok  string
	}{
		{"empty", ""},
		{"no dot", "node-3"},
		{"other purpose", root.Derive(Control).Issue("node-3")},
		{"root key", root.Issue("node-3")},
		{"other environment", NewKey().Derive(Files).Issue("node-3")},
		{"id swapped", "node-4" + tok[strings.Index(tok, "."):]},
		{"mac cut", tok[:len(tok)-1]},
		{"mac flipped", tok[:len(tok)-1] + string(tok[len(tok)-1]^1)},
		{"bad id", "Node 3" + tok[strings.Index(tok, "."):]},
		{"padding", tok + "="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if id, err := files.Verify(tt.tok); err == nil {
				t.Fatalf("Verify(%q) = %q, want an error", tt.tok, id)
			}
		})
	}
}

func TestDeriveIsStable(t *testing.T) {
	k, err := ParseKey(strings.Repeat("ab", Size))
	if err != nil {
		t.Fatal(err)
	}
	a, b := k.Derive(Files), k.Derive(Files)
	if a != b || a == k.Derive(Control) {
		t.Fatal("Derive must be a function of key and purpose only")
	}
	back, err := ParseKey(a.Hex())
	if err != nil || back != a {
		t.Fatalf("ParseKey(Hex()) = %v, %v", back, err)
	}
	if strings.Contains(a.String(), a.Hex()) {
		t.Fatal("String prints the key")
	}
}

func TestParseKeyErrors(t *testing.T) {
	for _, s := range []string{"", "zz", strings.Repeat("a", 2*Size-1), strings.Repeat("a", 2*Size+2)} {
		if _, err := ParseKey(s); err == nil {
			t.Errorf("ParseKey(%q): want an error", s)
		}
	}
}

func TestBearer(t *testing.T) {
	tests := []struct {
		name, header, want string
		ok                 bool
	}{
		{"ok", "Bearer abc.def", "abc.def", true},
		{"case", "bearer abc", "abc", true},
		{"basic", "Basic abc", "", false},
		{"empty", "Bearer ", "", false},
		{"none", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.header != "" {
				h.Set("Authorization", tt.header)
			}
			got, ok := Bearer(h)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("Bearer(%q) = %q, %v; want %q, %v", tt.header, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	k := NewKey()
	f.Add(k.Issue("edge-1"))
	f.Add("a.b")
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		id, err := k.Verify(tok)
		if err == nil && k.Issue(id) != tok {
			t.Fatalf("Verify accepted %q as %q, which is not the token issued to %q", tok, id, id)
		}
	})
}
