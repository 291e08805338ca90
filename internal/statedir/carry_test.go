package statedir

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestCarryRoundTrip: what one directory carries, written into an empty
// one, loads as the same secrets (the same tokens follow) and state.
func TestCarryRoundTrip(t *testing.T) {
	from := Layout{Dir: t.TempDir()}
	s1, err := LoadSecrets(from)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := ReadState(from.StateFile())
	st.Installed = true
	if err := WriteState(from.StateFile(), st); err != nil {
		t.Fatal(err)
	}
	c, err := ReadCarry(from)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := MarshalCarry(c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := UnmarshalCarry(raw)
	if err != nil {
		t.Fatal(err)
	}
	to := Layout{Dir: filepath.Join(t.TempDir(), "new")}
	if !Empty(to) {
		t.Fatal("a new directory is not Empty")
	}
	if err := WriteCarry(to, back); err != nil {
		t.Fatal(err)
	}
	if Empty(to) {
		t.Error("Empty after WriteCarry")
	}
	s2, err := LoadSecrets(to)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s1, s2, cmp.AllowUnexported(s1.RootKey)); diff != "" {
		t.Errorf("secrets (-from +to):\n%s", diff)
	}
	for _, n := range []string{"api-token", FilesMetricsToken} {
		a, _ := os.ReadFile(from.Secret(n))
		b, _ := os.ReadFile(to.Secret(n))
		if string(a) != string(b) {
			t.Errorf("%s differs: %q, %q", n, a, b)
		}
	}
	got, err := ReadState(to.StateFile())
	if err != nil {
		t.Fatal(err)
	}
	if !got.Installed || got.CreatedAt != st.CreatedAt {
		t.Errorf("state %+v, want %+v", got, st)
	}
	for _, n := range CarriedSecrets {
		if fi, err := os.Stat(to.Secret(n)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", n, fi.Mode(), err)
		}
	}
	// Never over a directory that holds state.
	if err := WriteCarry(to, back); err == nil {
		t.Error("WriteCarry over a directory with state: no error")
	}
	// Nor with a secret missing.
	delete(back.Secrets, "root-key")
	if err := WriteCarry(Layout{Dir: t.TempDir()}, back); err == nil {
		t.Error("WriteCarry without root-key: no error")
	}
}

func TestUnmarshalCarryNewer(t *testing.T) {
	if _, err := UnmarshalCarry(`{"state":{"format":99,"version":"v9"}}`); err == nil {
		t.Error("a carry from a newer format: no error")
	}
	if _, err := UnmarshalCarry(`{`); err == nil {
		t.Error("damaged carry: no error")
	}
}

// FuzzUnmarshalCarry: whatever the home variable holds, UnmarshalCarry
// never panics, and what it accepts marshals and reads back the same.
func FuzzUnmarshalCarry(f *testing.F) {
	f.Add(`{"secrets":{"root-key":"ab\n"},"state":{"format":1,"installed":true}}`)
	f.Add(`{"state":{"format":99}}`)
	f.Add(`{"secrets":null,"state":{"policy":{"min":2}}}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, s string) {
		c, err := UnmarshalCarry(s)
		if err != nil {
			return
		}
		raw, err := MarshalCarry(c)
		if err != nil {
			t.Fatal(err)
		}
		back, err := UnmarshalCarry(raw)
		if err != nil {
			t.Fatalf("read back: %v", err)
		}
		if diff := cmp.Diff(c, back); diff != "" {
			t.Errorf("round trip (-first +back):\n%s", diff)
		}
	})
}
