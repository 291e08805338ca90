package deptest

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/scalepress/scalepress"

// roles are the packages that run as processes of their own (`scalepress
// ROLE`). A role never imports another role: what two roles share (paths,
// headers, documents) lives in internal/api. cli is the one exception: it is
// the binary's entry and wires every role.
var roles = []string{"cli", "controller", "dbagent", "dbrouter", "edge", "filesync", "geodns", "node"}

// libraries are every other package under internal/: code a role uses. A
// library never imports controller or cli.
var libraries = []string{
	"api", "atomicfile", "autoscale", "balancer", "config", "console", "deptest", "edgetls", "eventlog", "fastcgi",
	"fileperm", "forward", "galera", "guard", "hitfront", "local", "logtail", "metrics", "nodegroup", "nodehost", "nomadlaunch", "pagecache", "phpfpm",
	"preflight", "purge", "redisd", "rolelog", "s3store", "sitepath", "statedir", "supervise", "throttle", "token", "wordpress",
	"backup", "upstream", "release",
}

// pkg is what `go list -json` says of a package that the rules look at.
// Test files may import roles (in-process integration tests run roles
// together); the rules are about the code that ships.
type pkg struct {
	ImportPath string
	Imports    []string
	Dir        string
	GoFiles    []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", module+"/...").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
		// go test caches a pass by the files the test itself opened: look
		// at every directory and source file, so that an edit reruns it.
		os.ReadDir(p.Dir)
		for _, f := range p.GoFiles {
			os.Stat(filepath.Join(p.Dir, f))
		}
	}
	return pkgs
}

// internalName is "edge" for module/internal/edge ("nodegroup/local" for a
// nested package), "" for a path outside internal/.
func internalName(path string) string {
	name, _ := strings.CutPrefix(path, module+"/internal/")
	if name == path {
		return ""
	}
	return name
}

// violations returns one line per import that breaks a rule, naming it.
func violations(pkgs []pkg) []string {
	var bad []string
	for _, p := range pkgs {
		name := internalName(p.ImportPath)
		switch {
		case p.ImportPath == module+"/cmd/scalepress":
			for _, imp := range p.Imports {
				if strings.HasPrefix(imp, module+"/") && imp != module+"/internal/cli" {
					bad = append(bad, "cmd/scalepress imports "+strings.TrimPrefix(imp, module+"/")+": main calls cli.Main and nothing else")
				}
			}
			continue
		case name == "":
			continue
		case !slices.Contains(roles, name) && !slices.Contains(libraries, name):
			bad = append(bad, "internal/"+name+" is neither a role nor a library: add it to one of the lists in deps_test.go")
			continue
		}
		for _, imp := range p.Imports {
			dep := internalName(imp)
			switch {
			case dep == "":
			case name == "cli":
			case slices.Contains(roles, name) && slices.Contains(roles, dep):
				bad = append(bad, "internal/"+name+" imports internal/"+dep+": a role never imports another role; put the shared name or document in internal/api")
			case slices.Contains(libraries, name) && (dep == "controller" || dep == "cli"):
				bad = append(bad, "internal/"+name+" imports internal/"+dep+": a library never imports controller or cli")
			}
		}
	}
	return bad
}

func TestImportRules(t *testing.T) {
	pkgs := listPackages(t)
	if len(pkgs) < len(roles)+len(libraries) {
		t.Fatalf("go list found %d packages, fewer than the %d classified here", len(pkgs), len(roles)+len(libraries))
	}
	for _, v := range violations(pkgs) {
		t.Error(v)
	}
}

// TestViolations shows that each rule catches what it is meant to.
func TestViolations(t *testing.T) {
	in := func(names ...string) []string {
		var out []string
		for _, n := range names {
			out = append(out, module+"/internal/"+n)
		}
		return out
	}
	tests := []struct {
		name string
		pkgs []pkg
		want []string
	}{
		{
			name: "role imports a role",
			pkgs: []pkg{{ImportPath: module + "/internal/edge", Imports: append(in("api", "filesync"), "net/http")}},
			want: []string{"internal/edge imports internal/filesync: a role never imports another role; put the shared name or document in internal/api"},
		},
		{
			name: "cli wires the roles",
			pkgs: []pkg{{ImportPath: module + "/internal/cli", Imports: in("controller", "edge", "node", "filesync")}},
		},
		{
			name: "library imports controller",
			pkgs: []pkg{{ImportPath: module + "/internal/wordpress", Imports: in("controller", "api")}},
			want: []string{"internal/wordpress imports internal/controller: a library never imports controller or cli"},
		},
		{
			name: "library imports a library",
			pkgs: []pkg{{ImportPath: module + "/internal/pagecache", Imports: in("api")}},
		},
		{
			name: "unclassified package",
			pkgs: []pkg{{ImportPath: module + "/internal/launcher", Imports: nil}},
			want: []string{"internal/launcher is neither a role nor a library: add it to one of the lists in deps_test.go"},
		},
		{
			name: "main does more than call cli",
			pkgs: []pkg{{ImportPath: module + "/cmd/scalepress", Imports: in("cli", "config")}},
			want: []string{"cmd/scalepress imports internal/config: main calls cli.Main and nothing else"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := violations(tt.pkgs); !slices.Equal(got, tt.want) {
				t.Errorf("violations =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}
