package tools

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeGo stands in for the go command in TestInstallScript: `go env
// GOVERSION` and `go version` name go1.99.0; `go build -o OUT` and `go
// install` (into $GOBIN) write a script that prints $FAKE_NOMAD_VERSION or
// $FAKE_VERSITYGW_VERSION the way the real tools print their version, or,
// with $FAKE_FAIL set, write half a file and fail.
const fakeGo = `#!/bin/bash
case $1 in
env) echo go1.99.0 ;;
version) echo "go version go1.99.0 linux/amd64" ;;
build|install)
  out=$GOBIN/versitygw; prev=
  for a in "$@"; do if [[ $prev == -o ]]; then out=$a; fi; prev=$a; done
  echo "$1" >>"$FAKE_LOG"
  if [[ -n $FAKE_FAIL ]]; then echo half >"$out"; echo "fake go: build failed" >&2; exit 1; fi
  if [[ $1 == build && ${@: -1} == *h2spec* ]]; then printf '#!/bin/sh\necho "Version: %s (module)"\n' "${FAKE_H2SPEC_VERSION#v}" >"$out"
  elif [[ $1 == build ]]; then printf '#!/bin/sh\necho "Nomad %s"\necho "BuildDate x"\n' "$FAKE_NOMAD_VERSION" >"$out"
  else case "${@: -1}" in
    *pebble*) out=$GOBIN/pebble; printf '#!/bin/sh\necho "Pebble version: %s"\n' "$FAKE_PEBBLE_VERSION" >"$out" ;;
    *) printf '#!/bin/sh\necho "Version  : %s"\necho "Build    : module"\n' "$FAKE_VERSITYGW_VERSION" >"$out" ;;
  esac; fi
  chmod +x "$out" ;;
*) echo "fake go: unexpected $*" >&2; exit 2 ;;
esac
`

// TestInstallScript runs scripts/install-tools.sh against a fake go command
// and an empty cache: a failed build or one that reports another version
// installs nothing, a good one is linked where Path looks, under the key the
// docs give, and a second run uses the cache without building.
func TestInstallScript(t *testing.T) {
	dir := t.TempDir()
	goCmd := filepath.Join(dir, "go")
	if err := os.WriteFile(goCmd, []byte(fakeGo), 0o755); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(dir, "cache")
	log := filepath.Join(dir, "builds.log")
	t.Setenv("SCALEPRESS_TOOLS", cache)
	t.Setenv("SCALEPRESS_NOMAD", "")
	t.Setenv("SCALEPRESS_VERSITYGW", "")

	run := func(t *testing.T, env ...string) (string, error) {
		t.Helper()
		os.Remove(log)
		cmd := exec.Command("bash", "../../scripts/install-tools.sh")
		cmd.Env = append(os.Environ(), append([]string{
			"GO=" + goCmd, "FAKE_LOG=" + log,
			"FAKE_NOMAD_VERSION=" + NomadVersion, "FAKE_VERSITYGW_VERSION=" + VersitygwVersion,
			"FAKE_PEBBLE_VERSION=" + PebbleVersion, "FAKE_H2SPEC_VERSION=" + H2specVersion,
		}, env...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// builds lists the go commands run, sorted: the script runs its
	// installs concurrently, so they log in any order.
	builds := func() string {
		b, _ := os.ReadFile(log)
		f := strings.Fields(string(b))
		slices.Sort(f)
		return strings.Join(f, " ")
	}
	// installed lists every file and link in the cache but the lock file.
	installed := func(t *testing.T) []string {
		t.Helper()
		var got []string
		err := filepath.WalkDir(cache, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() == ".lock" {
				return err
			}
			rel, _ := filepath.Rel(cache, p)
			got = append(got, rel)
			return nil
		})
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return got
	}

	mod, err := os.ReadFile("../../tools/nomad/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile("../../tools/nomad/go.sum")
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256([]byte(string(mod) + string(sum) + "go version go1.99.0 linux/amd64\n"))
	nomadDir := "nomad-" + hex.EncodeToString(h[:])[:16]
	h2mod, err := os.ReadFile("../../tools/h2spec/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	h2sum, err := os.ReadFile("../../tools/h2spec/go.sum")
	if err != nil {
		t.Fatal(err)
	}
	h = sha256.Sum256([]byte(string(h2mod) + string(h2sum) + "go version go1.99.0 linux/amd64\n"))
	vgwDir := "versitygw-" + VersitygwVersion + "-go1.99.0"
	extra := map[string]string{"pebble": "pebble-" + PebbleVersion + "-go1.99.0", "h2spec": "h2spec-" + hex.EncodeToString(h[:])[:16]}

	t.Run("failed build installs nothing", func(t *testing.T) {
		out, err := run(t, "FAKE_FAIL=1")
		if err == nil || !strings.Contains(out, "building nomad failed") {
			t.Fatalf("install-tools with a failing build: err %v, output:\n%s", err, out)
		}
		if got := installed(t); len(got) != 0 {
			t.Errorf("after a failed build the cache holds %q, want nothing", got)
		}
	})
	t.Run("wrong version installs nothing", func(t *testing.T) {
		out, err := run(t, "FAKE_NOMAD_VERSION=v1.7.0")
		if err == nil || !strings.Contains(out, "does not report the pinned version") {
			t.Fatalf("install-tools with a nomad reporting v1.7.0: err %v, output:\n%s", err, out)
		}
		// The other tools install on their own (concurrently): none of
		// nomad is installed, nor left half-built.
		for _, f := range installed(t) {
			if strings.Contains(f, "nomad") || strings.Contains(f, "/.") {
				t.Errorf("after a wrong-version nomad build the cache holds %s", f)
			}
		}
		if !strings.Contains(out, "not installed: nomad (") {
			t.Errorf("output does not name nomad as not installed:\n%s", out)
		}
		if err := os.RemoveAll(cache); err != nil { // the next subtest builds all four
			t.Fatal(err)
		}
	})
	t.Run("build", func(t *testing.T) {
		out, err := run(t)
		if err != nil {
			t.Fatalf("install-tools: %v\n%s", err, out)
		}
		if got, want := builds(), "build build install install"; got != want {
			t.Errorf("go commands run: %q, want %q", got, want)
		}
		for _, want := range []string{"nomad " + NomadVersion + " built in ", "versitygw " + VersitygwVersion + " built in "} {
			if !strings.Contains(out, want) {
				t.Errorf("output does not say %q:\n%s", want, out)
			}
		}
		checkLinks(t, cache, nomadDir, vgwDir, extra)
	})
	t.Run("cached", func(t *testing.T) {
		out, err := run(t, "FAKE_FAIL=1") // a build now would fail the run
		if err != nil {
			t.Fatalf("install-tools, cached: %v\n%s", err, out)
		}
		if got := builds(); got != "" {
			t.Errorf("cached run ran go %q, want no build", got)
		}
		if n := strings.Count(out, " cached ("); n != 4 {
			t.Errorf("cached run: %d tools said cached, want 4:\n%s", n, out)
		}
		checkLinks(t, cache, nomadDir, vgwDir, extra)
	})
	t.Run("cached binary that is not the pinned version is rebuilt", func(t *testing.T) {
		bad := "#!/bin/sh\necho 'Nomad v1.7.0'\n"
		if err := os.WriteFile(filepath.Join(cache, nomadDir, "nomad"), []byte(bad), 0o755); err != nil {
			t.Fatal(err)
		}
		out, err := run(t)
		if err != nil {
			t.Fatalf("install-tools: %v\n%s", err, out)
		}
		if got, want := builds(), "build"; got != want {
			t.Errorf("go commands run: %q, want %q", got, want)
		}
		checkLinks(t, cache, nomadDir, vgwDir, extra)
	})
}

// checkLinks: Path finds each tool as a link into its cache entry, and the
// cache holds nothing else (no temporary build left behind).
func checkLinks(t *testing.T, cache, nomadDir, vgwDir string, extra map[string]string) {
	t.Helper()
	dirs := map[string]string{"nomad": nomadDir, "versitygw": vgwDir}
	for name, dir := range extra {
		dirs[name] = dir
	}
	for name, dir := range dirs {
		p := Path(t, name)
		if want := filepath.Join(cache, "bin", name); p != want {
			t.Errorf("Path(%q) = %s, want %s", name, p, want)
		}
		target, err := os.Readlink(p)
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join("..", dir, name); target != want {
			t.Errorf("%s -> %s, want -> %s", p, target, want)
		}
	}
	entries, err := filepath.Glob(filepath.Join(cache, "*", ".*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("leftovers in the cache: %q", entries)
	}
}
