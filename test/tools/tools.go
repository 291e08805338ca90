// Package tools finds the programs the tests need that are not Debian
// packages: Nomad, versitygw, Pebble and h2spec, built from the Go module proxy at pinned
// versions by scripts/install-tools.sh (`make tools`, which `make test`
// runs first).
//
// A missing tool fails the test that needs it, with the command that
// installs it: a test never skips because its dependency is absent.
package tools

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The pinned versions. scripts/install-tools.sh builds these (NOMAD_VERSION,
// VERSITYGW_VERSION; tools/nomad/go.mod requires Nomad's), and tools_test.go
// checks that the three agree and that the installed binaries are these.
const (
	NomadVersion     = "v1.6.3"
	VersitygwVersion = "v1.8.0"
	PebbleVersion    = "v2.10.3" // PEBBLE_VERSION
	H2specVersion    = "v2.2.1"  // H2SPEC_VERSION
)

// Dir is where scripts/install-tools.sh puts the tools:
// $SCALEPRESS_TOOLS/bin, by default ~/.cache/scalepress/tools/bin.
func Dir() string {
	if d := os.Getenv("SCALEPRESS_TOOLS"); d != "" {
		return filepath.Join(d, "bin")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/root"
	}
	return filepath.Join(home, ".cache", "scalepress", "tools", "bin")
}

// Path returns the path of tool name ("nomad", "versitygw"):
// $SCALEPRESS_<NAME> if set, else Dir()/name. It fails t when the tool is
// not there.
func Path(t testing.TB, name string) string {
	t.Helper()
	p := os.Getenv("SCALEPRESS_" + strings.ToUpper(name))
	if p == "" {
		p = filepath.Join(Dir(), name)
	}
	if _, err := exec.LookPath(p); err != nil {
		t.Fatalf("%s is not installed (%v): run `make tools` (scripts/install-tools.sh) or set SCALEPRESS_%s", name, err, strings.ToUpper(name))
	}
	return p
}
