package multihost

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scalepress/scalepress/internal/statedir"
)

// siteConfig is the configuration of the first site across hosts (now the
// first part of TestFilesRoleOnNomad, whose rolesConfig is its twin with
// roles on Nomad; the
// base of TestNodeHostCut's and TestNomadACLTLS's): every role but
// the nodes on h1, bound to h1's address where another host (or the
// client) must reach it, the nodes on the Nomad clients. apiFwd is the
// forward the test reads the control API through (its Host header). The
// files section comes last: the caller appends its store.
func siteConfig(h1, apiFwd string) string {
	return fmt.Sprintf(`site:
  title: multi-host site
api:
  addr: %[1]s:9090
  allowed_hosts: [%[2]q]
edges:
  - id: edge-1
    region: default
    addr: %[1]s:8080
nodes:
  count: 2
  php_children: 2
  slow_start: 2s
autoscaling:
  enabled: true
  min: 2
  max: 3
  target: 0.6
db:
  members: 1
  ip_base: 127.0.2.0
  router: %[1]s:3306
  buffer_pool: 64M
redis:
  addr: %[1]s:6379
wordpress:
  cron_interval: 10s
  block_external_http: true
scheduler:
  kind: nomad
  address: http://%[1]s:4646
  job: sp-mh-nodes
  cpu: 100
  memory_mb: 256
files:
  addr: %[1]s:8081
`, h1, apiFwd)
}

// logBootstraps logs, for each node host, how its nodes' filesync agents
// made their docroots (the "docroot bootstrapped" lines: linked=true when
// the host's link pool was used, ADR 29) and how many entries the host's
// pool holds.
func logBootstraps(t *testing.T, base string, hostNames []string) {
	t.Helper()
	for _, h := range hostNames {
		logs, _ := filepath.Glob(filepath.Join(base, h, "logs", "*-filesync.log"))
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			for line := range strings.Lines(string(b)) {
				if strings.Contains(line, "docroot bootstrapped") {
					t.Logf("%s %s: %s", h, filepath.Base(l), strings.TrimSpace(line))
				}
			}
		}
		entries := 0
		pool := statedir.Layout{Dir: filepath.Join(base, h)}.LinkPool()
		filepath.WalkDir(pool, func(_ string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				entries++
			}
			return nil
		})
		t.Logf("%s: link pool %s: %d entries", h, pool, entries)
	}
}

// tailFile is the last n bytes of path.
func tailFile(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
