package tools

import (
	"bufio"
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
)

// TestInstalledVersions runs the installed tools, found the way every
// multi-host test finds them, and checks they are the pinned versions: by
// what they print and by the module versions the Go linker recorded.
func TestInstalledVersions(t *testing.T) {
	t.Run("nomad", func(t *testing.T) {
		p := Path(t, "nomad")
		out, err := exec.Command(p, "version").CombinedOutput()
		if err != nil {
			t.Fatalf("%s version: %v\n%s", p, err, out)
		}
		if first, _, _ := strings.Cut(string(out), "\n"); first != "Nomad "+NomadVersion {
			t.Errorf("%s version: first line %q, want %q", p, first, "Nomad "+NomadVersion)
		}
		if got := moduleVersion(t, p, "github.com/hashicorp/nomad"); got != NomadVersion {
			t.Errorf("%s was built from github.com/hashicorp/nomad %q, want %s", p, got, NomadVersion)
		}
	})
	t.Run("versitygw", func(t *testing.T) {
		p := Path(t, "versitygw")
		out, err := exec.Command(p, "--version").CombinedOutput()
		if err != nil {
			t.Fatalf("%s --version: %v\n%s", p, err, out)
		}
		if !regexp.MustCompile(`(?m)^Version\s*: ` + regexp.QuoteMeta(VersitygwVersion) + `$`).Match(out) {
			t.Errorf("%s --version does not say Version: %s:\n%s", p, VersitygwVersion, out)
		}
		if got := moduleVersion(t, p, "github.com/versity/versitygw"); got != VersitygwVersion {
			t.Errorf("%s was built from github.com/versity/versitygw %q, want %s", p, got, VersitygwVersion)
		}
	})
}

// moduleVersion is the version of module mod that the binary at path was
// built from, as recorded in its build information.
func moduleVersion(t *testing.T, path, mod string) string {
	t.Helper()
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		t.Fatalf("build info of %s: %v", path, err)
	}
	for _, m := range append([]*debug.Module{&bi.Main}, bi.Deps...) {
		if m.Path == mod {
			if m.Replace != nil {
				return m.Version + " => " + m.Replace.Path + " " + m.Replace.Version
			}
			return m.Version
		}
	}
	return "(not in build info)"
}

// TestPinsInStep: the versions the script builds, the module tools/nomad
// and tools/h2spec require and the constants the tests check are the same.
func TestPinsInStep(t *testing.T) {
	script := assignments(t, "../../scripts/install-tools.sh")
	for _, tt := range []struct{ name, got, want string }{
		{"install-tools.sh NOMAD_VERSION", script["NOMAD_VERSION"], NomadVersion},
		{"install-tools.sh VERSITYGW_VERSION", script["VERSITYGW_VERSION"], VersitygwVersion},
		{"tools/nomad/go.mod require github.com/hashicorp/nomad", requireVersion(t, "../../tools/nomad/go.mod", "github.com/hashicorp/nomad"), NomadVersion},
		{"install-tools.sh H2SPEC_VERSION", script["H2SPEC_VERSION"], H2specVersion},
		{"tools/h2spec/go.mod require github.com/summerwind/h2spec", requireVersion(t, "../../tools/h2spec/go.mod", "github.com/summerwind/h2spec"), H2specVersion + "+incompatible"},
	} {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q (keep scripts/install-tools.sh, tools/nomad/go.mod and test/tools in step)", tt.name, tt.got, tt.want)
		}
	}
}

// assignments reads the top-level NAME=value lines of a shell script.
func assignments(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vars := map[string]string{}
	re := regexp.MustCompile(`^([A-Z][A-Z0-9_]*)=(\S+)`)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			vars[m[1]] = m[2]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return vars
}

// requireVersion is the version go.mod at path requires of module mod.
func requireVersion(t *testing.T, path, mod string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^(?:require\s+|\t)` + regexp.QuoteMeta(mod) + `\s+(\S+)`)
	if m := re.FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return "(not required)"
}

// fatalRecorder stands in for the test Path is given, to see it fail.
type fatalRecorder struct {
	testing.TB
	fatal string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
}

// TestPathMissingFails: a missing tool fails the test that needs it, saying
// how to install it; it is never a skip.
func TestPathMissingFails(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
	}{
		{"override points nowhere", map[string]string{"SCALEPRESS_NOMAD": filepath.Join(t.TempDir(), "nomad")}},
		{"empty cache", map[string]string{"SCALEPRESS_NOMAD": "", "SCALEPRESS_TOOLS": t.TempDir()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			r := &fatalRecorder{TB: t}
			Path(r, "nomad")
			if !strings.Contains(r.fatal, "make tools") || !strings.Contains(r.fatal, "SCALEPRESS_NOMAD") {
				t.Errorf("Path with no nomad: fatal message %q, want one naming `make tools` and SCALEPRESS_NOMAD", r.fatal)
			}
		})
	}
}
