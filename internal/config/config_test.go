package config

import (
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestTemplateIsDefault(t *testing.T) {
	got, err := Parse("default.yaml", Template)
	if err != nil {
		t.Fatalf("template does not parse: %v", err)
	}
	if diff := cmp.Diff(Default(), got); diff != "" {
		t.Errorf("template differs from Default() (-want +got):\n%s", diff)
	}
}

func TestDefaultValidates(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantErr string // substring; empty = no error
		check   func(t *testing.T, c Config)
	}{
		{name: "empty file is defaults", yaml: "", check: func(t *testing.T, c Config) {
			if diff := cmp.Diff(Default(), c); diff != "" {
				t.Error(diff)
			}
		}},
		{name: "override keeps other defaults", yaml: "nodes:\n  count: 3\n", check: func(t *testing.T, c Config) {
			if c.Nodes.Count != 3 || c.Nodes.Port != 8080 || c.DB.Name != "wordpress" {
				t.Errorf("got %+v", c.Nodes)
			}
		}},
		{name: "duration", yaml: "wordpress:\n  cron_interval: 90s\n", check: func(t *testing.T, c Config) {
			if c.WordPress.CronInterval != 90*time.Second {
				t.Errorf("got %s", c.WordPress.CronInterval)
			}
		}},
		{name: "edges replace and get ids", yaml: "edges:\n  - addr: 127.0.0.5:80\n  - addr: 127.0.0.6:80\n    region: eu\n", check: func(t *testing.T, c Config) {
			want := []Edge{{ID: "edge-1", Region: "default", Addr: "127.0.0.5:80"}, {ID: "edge-2", Region: "eu", Addr: "127.0.0.6:80"}}
			if diff := cmp.Diff(want, c.Edges); diff != "" {
				t.Error(diff)
			}
		}},
		{name: "scheduler nomad", yaml: "scheduler:\n  kind: nomad\n  address: https://nomad.example.test:4646\n  token_file: /etc/scalepress/nomad-token\n", check: func(t *testing.T, c Config) {
			if c.Scheduler.Kind != SchedulerNomad || c.Scheduler.Job != "scalepress-nodes" || c.Scheduler.TokenFile != "/etc/scalepress/nomad-token" {
				t.Errorf("got %+v", c.Scheduler)
			}
		}},
		{name: "releases auto one value", yaml: "releases:\n  auto: all\n", check: func(t *testing.T, c Config) {
			if diff := cmp.Diff(AutoPolicy{Core: AutoAll, Plugins: AutoAll, Themes: AutoAll}, c.Releases.Auto); diff != "" {
				t.Error(diff)
			}
		}},
		{name: "releases auto empty", yaml: "releases:\n  auto:\n", check: func(t *testing.T, c Config) {
			if diff := cmp.Diff(Default().Releases.Auto, c.Releases.Auto); diff != "" {
				t.Error(diff)
			}
		}},
		{name: "releases auto per kind", yaml: "releases:\n  auto:\n    plugins: off\n", check: func(t *testing.T, c Config) {
			if diff := cmp.Diff(AutoPolicy{Core: AutoMinor, Plugins: AutoOff, Themes: AutoMinor}, c.Releases.Auto); diff != "" {
				t.Error(diff)
			}
		}},
		// Measured steps (ADR 0032): each bound names its key.
		{name: "step gain negative", yaml: "autoscaling:\n  step_gain: -0.1\n", wantErr: "step_gain: must be 0 (off) to 10, got -0.1"},
		{name: "step window under 1s", yaml: "autoscaling:\n  step_window: 500ms\n", wantErr: "step_window: must be at least 1s, got 500ms"},
		{name: "step cooldown shorter than the window", yaml: "autoscaling:\n  step_window: 30s\n  step_cooldown: 10s\n", wantErr: "step_cooldown: must be at least autoscaling.step_window (30s), got 10s"},
		{name: "steps off: window and cooldown not checked", yaml: "autoscaling:\n  step_gain: 0\n  step_window: 0s\n  step_cooldown: 0s\n", check: func(t *testing.T, c Config) {
			if c.Autoscale.StepGain != 0 {
				t.Errorf("step_gain %g, want 0", c.Autoscale.StepGain)
			}
		}},
		{name: "releases auto", yaml: "releases:\n  auto: sometimes\n", wantErr: "releases.auto.core: must be off, minor or all"},
		{name: "releases auto plugins", yaml: "releases:\n  auto:\n    plugins: none\n", wantErr: "releases.auto.plugins: must be off, minor or all"},
		{name: "releases auto unknown kind", yaml: "releases:\n  auto:\n    mu_plugins: off\n", wantErr: `unknown key "mu_plugins" in releases.auto`},
		{name: "releases keep", yaml: "releases:\n  keep: 1\n", wantErr: "releases.keep: must be 0 (keep every release) or 2 to 10000"},
		{name: "releases source dir", yaml: "releases:\n  source_dir: feed\n", wantErr: "releases.source_dir: must be an absolute directory"},
		{name: "releases check every", yaml: "releases:\n  check_every: 1s\n", wantErr: "releases.check_every: must be 10s to 24h"},
		{name: "scheduler kind", yaml: "scheduler:\n  kind: kubernetes\n", wantErr: "scheduler.kind: must be local or nomad"},
		{name: "scheduler address", yaml: "scheduler:\n  kind: nomad\n  address: 127.0.0.1:4646\n", wantErr: "scheduler.address"},
		{name: "scheduler node meta", yaml: "scheduler:\n  kind: nomad\n  node_meta: {\"a.b\": x}\n", wantErr: "scheduler.node_meta"},
		{name: "scheduler job", yaml: "scheduler:\n  kind: nomad\n  job: ../x\n", wantErr: "scheduler.job"},
		{name: "scheduler roles unknown", yaml: "scheduler:\n  kind: nomad\n  roles: [mysql]\n", wantErr: `scheduler.roles: Nomad can run [files redis dns edge], got "mysql"`},
		{name: "scheduler edge on nomad on loopback", yaml: "scheduler:\n  kind: nomad\n  roles: [edge]\n", wantErr: "edges[0].addr: an edge on Nomad runs on the client with this address: want that host's IP, got 127.0.0.1:8080"},
		{name: "scheduler edge on nomad refuses acme", yaml: "scheduler:\n  kind: nomad\n  roles: [edge]\nedges:\n  - {id: edge-1, region: default, addr: '10.1.0.2:80'}\ntls:\n  acme: {names: [example.test], directory_url: 'https://acme.example.test/dir'}\n", wantErr: "tls.acme.names: edges on Nomad (scheduler.roles: edge) cannot share the ACME storage across hosts"},
		{name: "scheduler edge on nomad", yaml: "scheduler:\n  kind: nomad\n  roles: [edge]\nedges:\n  - {id: edge-1, region: eu, addr: '10.1.0.2:80'}\ndns:\n  regions: [{name: eu}]\n", check: func(t *testing.T, c Config) {
			if !c.Scheduler.OnNomad(RoleEdge) {
				t.Errorf("got %+v", c.Scheduler)
			}
		}},
		{name: "scheduler files on nomad needs s3", yaml: "scheduler:\n  kind: nomad\n  roles: [files]\n", wantErr: `scheduler.roles: files on Nomad needs files.enabled and files.store.kind s3`},
		{name: "scheduler dns on nomad needs dns", yaml: "scheduler:\n  kind: nomad\n  roles: [dns]\n", wantErr: "scheduler.roles: dns on Nomad needs dns.enabled"},
		{name: "scheduler role meta", yaml: "scheduler:\n  kind: nomad\n  role_meta: {\"a.b\": x}\n", wantErr: "scheduler.role_meta"},
		{name: "scheduler files on nomad with s3", yaml: "scheduler:\n  kind: nomad\n  roles: [files]\n  role_meta: {scalepress_files: \"yes\"}\nfiles:\n  store: {kind: s3, endpoint: 'http://127.0.0.1:7070', bucket: site, access_key_file: /k, secret_key_file: /s}\n", check: func(t *testing.T, c Config) {
			if !c.Scheduler.OnNomad(RoleFiles) || c.Scheduler.RoleMeta["scalepress_files"] != "yes" {
				t.Errorf("got %+v", c.Scheduler)
			}
		}},
		{name: "scheduler roles ignored when local", yaml: "scheduler:\n  roles: [files]\n", check: func(t *testing.T, c Config) {
			if c.Scheduler.OnNomad(RoleFiles) {
				t.Errorf("files on Nomad with scheduler.kind local: %+v", c.Scheduler)
			}
		}},
		{name: "scheduler client cert without key", yaml: "scheduler:\n  kind: nomad\n  cert_file: /c.pem\n", wantErr: "scheduler.cert_file"},
		{name: "scheduler token file relative", yaml: "scheduler:\n  kind: nomad\n  token_file: nomad.token\n", wantErr: `scheduler.token_file: must be an absolute path, got "nomad.token"`},
		{name: "scheduler ca file over http", yaml: "scheduler:\n  kind: nomad\n  ca_file: /ca.pem\n", wantErr: `scheduler.ca_file: scheduler.ca_file and cert_file are only used with an https:// scheduler.address, got "http://127.0.0.1:4646"`},
		{name: "scheduler tls and token", yaml: "scheduler:\n  kind: nomad\n  address: https://10.0.0.1:4646\n  token_file: /etc/scalepress/nomad.token\n  ca_file: /etc/scalepress/nomad-ca.pem\n  cert_file: /etc/scalepress/nomad-cli.pem\n  key_file: /etc/scalepress/nomad-cli-key.pem\n", check: func(t *testing.T, c Config) {
			s := c.Scheduler
			if s.TokenFile != "/etc/scalepress/nomad.token" || s.CAFile != "/etc/scalepress/nomad-ca.pem" || s.CertFile != "/etc/scalepress/nomad-cli.pem" || s.KeyFile != "/etc/scalepress/nomad-cli-key.pem" {
				t.Errorf("got %+v", s)
			}
		}},
		{name: "unknown top-level key", yaml: "site:\n  title: x\nnodez:\n  count: 1\n", wantErr: `cfg.yaml:3: unknown key "nodez" at the top level`},
		{name: "unknown nested key", yaml: "nodes:\n  count: 2\n  cuont: 3\n", wantErr: `cfg.yaml:3: unknown key "cuont" in nodes`},
		{name: "unknown key in list item", yaml: "edges:\n  - addr: 127.0.0.1:80\n    regoin: eu\n", wantErr: `cfg.yaml:3: unknown key "regoin" in edges[0]`},
		{name: "wrong type", yaml: "nodes:\n  count: many\n", wantErr: "cfg.yaml:2: cannot unmarshal"},
		{name: "bad duration", yaml: "supervise:\n  window: soon\n", wantErr: "cfg.yaml:2:"},
		{name: "syntax error", yaml: "nodes: [\n", wantErr: "cfg.yaml:"},
		{name: "duplicate key", yaml: "nodes:\n  count: 1\n  count: 2\n", wantErr: "already defined"},
		{name: "section not a mapping", yaml: "nodes: 3\n", wantErr: "cfg.yaml:1: nodes must be a mapping"},
		{name: "two documents", yaml: "site: {}\n---\napi: {}\n", wantErr: "more than one YAML document"},
		{name: "validation names field", yaml: "nodes:\n  count: 0\n", wantErr: "nodes.count: must be 1-64, got 0"},
		{name: "bad addr", yaml: "api:\n  addr: localhost:9090\n", wantErr: "api.addr: must be IP:port"},
		{name: "bad edge addr", yaml: "edges:\n  - addr: nope\n", wantErr: "edges[0].addr: must be IP:port"},
		{name: "address collision", yaml: "redis:\n  addr: 127.0.0.1:9090\n", wantErr: "redis.addr: address 127.0.0.1:9090 is already used by api.addr"},
		{name: "even db members", yaml: "db:\n  members: 4\n", wantErr: "db.members: must be 1 (standalone) or an odd number"},
		{name: "too many db members", yaml: "db:\n  members: 11\n", wantErr: "db.members"},
		{name: "bad router mode", yaml: "db:\n  router_mode: random\n", wantErr: "db.router_mode: must be single or multi"},
		{name: "bad sst method", yaml: "db:\n  sst_method: xtrabackup\n", wantErr: "db.sst_method"},
		{name: "bad gcache size", yaml: "db:\n  gcache_size: lots\n", wantErr: "db.gcache_size"},
		{name: "db hosts", yaml: "db:\n  hosts:\n    - {id: d1, addr: \"10.0.0.11\", agent: \"10.0.0.11:7480\", dir: /var/lib/scalepress/db}\n    - {id: d2, addr: \"10.0.0.12\", agent: \"10.0.0.12:7480\", dir: /var/lib/scalepress/db}\n    - {id: d3, addr: \"10.0.0.13\", agent: \"10.0.0.13:7480\", dir: /var/lib/scalepress/db}\n", check: func(t *testing.T, c Config) {
			if got := []string{c.DBMemberAddr(1), c.DBMemberAddr(3)}; !slices.Equal(got, []string{"10.0.0.11:3306", "10.0.0.13:3306"}) {
				t.Errorf("member addresses %q", got)
			}
		}},
		{name: "db hosts one standalone member", yaml: "db:\n  members: 1\n  hosts:\n    - {id: d1, addr: \"10.0.0.11\", agent: \"10.0.0.11:7480\", dir: /var/lib/scalepress/db}\n", check: func(t *testing.T, c Config) {
			if c.DB.Members != 1 || len(c.DB.Hosts) != 1 {
				t.Errorf("db: %d members on %d hosts", c.DB.Members, len(c.DB.Hosts))
			}
		}},
		{name: "db hosts fewer than members", yaml: "db:\n  hosts:\n    - {id: d1, addr: \"10.0.0.11\", agent: \"10.0.0.11:7480\", dir: /var/lib/scalepress/db}\n    - {id: d2, addr: \"10.0.0.12\", agent: \"10.0.0.12:7480\", dir: /var/lib/scalepress/db}\n", wantErr: "db.hosts: must name one host per member (db.members is 3, 2 hosts given)"},
		{name: "db host id twice", yaml: "db:\n  hosts:\n    - {id: d1, addr: \"10.0.0.11\", agent: \"10.0.0.11:7480\", dir: /var/lib/scalepress/db}\n    - {id: d1, addr: \"10.0.0.12\", agent: \"10.0.0.12:7480\", dir: /var/lib/scalepress/db}\n    - {id: d3, addr: \"10.0.0.13\", agent: \"10.0.0.13:7480\", dir: /var/lib/scalepress/db}\n", wantErr: `db.hosts[1].id: "d1" appears twice`},
		{name: "db host bad id", yaml: "db:\n  hosts:\n    - {id: D1, addr: \"10.0.0.11\", agent: \"10.0.0.11:7480\", dir: /var/lib/scalepress/db}\n    - {id: d2, addr: \"10.0.0.12\", agent: \"10.0.0.12:7480\", dir: /var/lib/scalepress/db}\n    - {id: d3, addr: \"10.0.0.13\", agent: \"10.0.0.13:7480\", dir: /var/lib/scalepress/db}\n", wantErr: "db.hosts[0].id: must be 1-64 characters"},
		{name: "db hosts on one address", yaml: "db:\n  hosts:\n    - {id: d1, addr: \"10.0.0.11\", agent: \"10.0.0.11:7480\", dir: /var/lib/scalepress/db}\n    - {id: d2, addr: \"10.0.0.11\", agent: \"10.0.0.12:7480\", dir: /var/lib/scalepress/db}\n    - {id: d3, addr: \"10.0.0.13\", agent: \"10.0.0.13:7480\", dir: /var/lib/scalepress/db}\n", wantErr: "db.hosts[1].addr: 10.0.0.11 appears twice"},
		{name: "db host addr a name", yaml: "db:\n  hosts:\n    - {id: d1, addr: \"db1.example\", agent: \"10.0.0.11:7480\", dir: /var/lib/scalepress/db}\n    - {id: d2, addr: \"10.0.0.12\", agent: \"10.0.0.12:7480\", dir: /var/lib/scalepress/db}\n    - {id: d3, addr: \"10.0.0.13\", agent: \"10.0.0.13:7480\", dir: /var/lib/scalepress/db}\n", wantErr: "db.hosts[0].addr: must be the host's IP address"},
		{name: "db host agent without port", yaml: "db:\n  hosts:\n    - {id: d1, addr: \"10.0.0.11\", agent: \"10.0.0.11:7480\", dir: /var/lib/scalepress/db}\n    - {id: d2, addr: \"10.0.0.12\", agent: \"10.0.0.12\", dir: /var/lib/scalepress/db}\n    - {id: d3, addr: \"10.0.0.13\", agent: \"10.0.0.13:7480\", dir: /var/lib/scalepress/db}\n", wantErr: "db.hosts[1].agent: must be the db-agent's IP:port"},
		{name: "db host relative dir", yaml: "db:\n  hosts:\n    - {id: d1, addr: \"10.0.0.11\", agent: \"10.0.0.11:7480\", dir: /var/lib/scalepress/db}\n    - {id: d2, addr: \"10.0.0.12\", agent: \"10.0.0.12:7480\", dir: /var/lib/scalepress/db}\n    - {id: d3, addr: \"10.0.0.13\", agent: \"10.0.0.13:7480\", dir: db}\n", wantErr: "db.hosts[2].dir: must be an absolute path"},
		{name: "db agents on nomad", yaml: "db:\n  hosts:\n    - {id: d1, addr: \"10.0.0.11\", agent: \"10.0.0.11:7480\", dir: /var/lib/scalepress/db}\n    - {id: d2, addr: \"10.0.0.12\", agent: \"10.0.0.12:7480\", dir: /var/lib/scalepress/db}\n    - {id: d3, addr: \"10.0.0.13\", agent: \"10.0.0.13:7480\", dir: /var/lib/scalepress/db}\n  agents: nomad\nscheduler:\n  kind: nomad\n", check: func(t *testing.T, c Config) {
			if c.DB.Agents != DBAgentsNomad {
				t.Errorf("db.agents %q", c.DB.Agents)
			}
		}},
		{name: "db agents on nomad without nomad", yaml: "db:\n  hosts:\n    - {id: d1, addr: \"10.0.0.11\", agent: \"10.0.0.11:7480\", dir: /var/lib/scalepress/db}\n    - {id: d2, addr: \"10.0.0.12\", agent: \"10.0.0.12:7480\", dir: /var/lib/scalepress/db}\n    - {id: d3, addr: \"10.0.0.13\", agent: \"10.0.0.13:7480\", dir: /var/lib/scalepress/db}\n  agents: nomad\n", wantErr: "db.agents: nomad needs db.hosts and scheduler.kind nomad"},
		{name: "db agents on nomad without hosts", yaml: "db:\n  agents: nomad\nscheduler:\n  kind: nomad\n", wantErr: "db.agents: nomad needs db.hosts"},
		{name: "router per host", yaml: "db:\n  router_per_host: true\nscheduler:\n  kind: nomad\n", check: func(t *testing.T, c Config) {
			if !c.DB.RouterPerHost || c.DB.Router != "127.0.0.1:3306" {
				t.Errorf("router_per_host %v at %s", c.DB.RouterPerHost, c.DB.Router)
			}
		}},
		{name: "router per host without nomad", yaml: "db:\n  router_per_host: true\n", wantErr: "db.router_per_host: needs scheduler.kind nomad"},
		{name: "router per host not loopback", yaml: "db:\n  router_per_host: true\n  router: 10.0.0.11:3306\nscheduler:\n  kind: nomad\n", wantErr: "db.router_per_host: needs db.router on a loopback address"},
		{name: "db agents unknown", yaml: "db:\n  agents: systemd\n", wantErr: `db.agents: must be operator or nomad, got "systemd"`},
		{name: "site url path", yaml: "site:\n  url: http://x.test/blog\n", wantErr: "site.url: must be scheme://host[:port]"},
		{name: "cron too often", yaml: "wordpress:\n  cron_interval: 1s\n", wantErr: "wordpress.cron_interval"},
		{name: "sql injection in db name", yaml: "db:\n  name: \"wp; DROP\"\n", wantErr: "db.name"},
		{name: "http section", yaml: "http:\n  trusted_proxies: [192.0.2.0/24, \"2001:db8::1/128\"]\n  client_concurrency: 0\n  body_timeout: 2s\n  max_body_mb: 8\n", check: func(t *testing.T, c Config) {
			want := HTTP{TrustedProxies: []string{"192.0.2.0/24", "2001:db8::1/128"}, ClientConcurrency: 0, BodyTimeout: 2 * time.Second, MaxBodyMB: 8,
				Admission: true, QueueBacklog: 16, QueueTimeout: 3 * time.Second, UpstreamHeaderTimeout: 15 * time.Second, LoginThrottle: defaultLoginThrottle()}
			if diff := cmp.Diff(want, c.HTTP); diff != "" {
				t.Error(diff)
			}
		}},
		{name: "trusted proxy not a network", yaml: "http:\n  trusted_proxies: [192.0.2.1]\n", wantErr: "http.trusted_proxies[0]: must be a network in CIDR form"},
		{name: "negative client concurrency", yaml: "http:\n  client_concurrency: -1\n", wantErr: "http.client_concurrency: must be 0 (no cap)"},
		{name: "negative queue backlog", yaml: "http:\n  queue_backlog: -1\n", wantErr: "http.queue_backlog: must be 0 to 1024"},
		{name: "zero queue timeout", yaml: "http:\n  queue_timeout: 0s\n", wantErr: "http.queue_timeout: must be 10ms to 1m"},
		{name: "upstream header timeout too short", yaml: "http:\n  upstream_header_timeout: 500ms\n", wantErr: "http.upstream_header_timeout: must be 1s to 130s"},
		{name: "upstream header timeout too long", yaml: "http:\n  upstream_header_timeout: 3m\n", wantErr: "http.upstream_header_timeout: must be 1s to 130s"},
		{name: "body timeout too short", yaml: "http:\n  body_timeout: 1ms\n", wantErr: "http.body_timeout: must be 100ms to 10m"},
		{name: "max body zero", yaml: "http:\n  max_body_mb: 0\n", wantErr: "http.max_body_mb: must be 1 to 4096"},
		{name: "login throttle", yaml: "http:\n  login_throttle:\n    per_address: 5\n    per_user: 0\n    window: 10s\n    block: 20s\n    trusted_for: 0s\n    max_entries: 2048\n", check: func(t *testing.T, c Config) {
			want := LoginThrottle{Enabled: true, PerAddress: 5, PerUser: 0, Window: 10 * time.Second, Block: 20 * time.Second, TrustedFor: 0, MaxEntries: 2048}
			if diff := cmp.Diff(want, c.HTTP.LoginThrottle); diff != "" {
				t.Error(diff)
			}
		}},
		{name: "login throttle window too short", yaml: "http:\n  login_throttle:\n    window: 10ms\n", wantErr: "http.login_throttle.window: must be 1s to 24h, got 10ms"},
		{name: "login throttle negative per user", yaml: "http:\n  login_throttle:\n    per_user: -1\n", wantErr: "http.login_throttle.per_user: must be 0 (no limit) to 1000000, got -1"},
		{name: "login throttle tiny table", yaml: "http:\n  login_throttle:\n    max_entries: 10\n", wantErr: "http.login_throttle.max_entries: must be 1024 to 10000000, got 10"},
		{name: "login throttle off ignores its limits", yaml: "http:\n  login_throttle:\n    enabled: false\n    window: 0s\n", check: func(t *testing.T, c Config) {
			if c.HTTP.LoginThrottle.Enabled {
				t.Error("still enabled")
			}
		}},
		{name: "relative source", yaml: "wordpress:\n  source: wp\n", wantErr: "wordpress.source: must be an absolute path"},
		{name: "edge named like a node", yaml: "edges:\n  - id: node-1\n    region: eu\n    addr: 127.0.0.1:8080\n", wantErr: `edges[0].id: "node-1" is reserved`},
		{name: "edge named controller", yaml: "edges:\n  - id: controller\n    region: eu\n    addr: 127.0.0.1:8080\n", wantErr: `edges[0].id: "controller" is reserved`},
		{name: "files quota below a file", yaml: "files:\n  quota_mb: 100\n", wantErr: "files.quota_mb: must be 0 (no quota) or at least files.max_file_mb (256), got 100"},
		{name: "negative files quota", yaml: "files:\n  quota_mb: -1\n", wantErr: "files.quota_mb"},
		{name: "files gc too often", yaml: "files:\n  gc_interval: 1s\n", wantErr: "files.gc_interval: must be 0 (off) or at least 1m, got 1s"},
		{name: "unknown files store", yaml: "files:\n  store: {kind: nfs}\n", wantErr: `files.store.kind: must be local or s3, got "nfs"`},
		{name: "s3 store without endpoint", yaml: "files:\n  store: {kind: s3, bucket: site, access_key_file: /k, secret_key_file: /s}\n", wantErr: "files.store.endpoint: must be set"},
		{name: "s3 store bad bucket", yaml: "files:\n  store: {kind: s3, endpoint: 'http://127.0.0.1:7070', bucket: B_, access_key_file: /k, secret_key_file: /s}\n", wantErr: "files.store.bucket"},
		{name: "s3 store relative key file", yaml: "files:\n  store: {kind: s3, endpoint: 'http://127.0.0.1:7070', bucket: site, access_key_file: k, secret_key_file: /s}\n", wantErr: "files.store.access_key_file: must be an absolute path"},
		{name: "s3 store ca with http", yaml: "files:\n  store: {kind: s3, endpoint: 'http://127.0.0.1:7070', bucket: site, access_key_file: /k, secret_key_file: /s, ca_file: /ca.pem}\n", wantErr: "files.store.ca_file: is only used with an https endpoint"},
		{name: "s3 store prefix escapes", yaml: "files:\n  store: {kind: s3, endpoint: 'https://s3.example', bucket: site, prefix: a/../b, access_key_file: /k, secret_key_file: /s}\n", wantErr: "files.store.prefix"},
		{name: "files without quota or gc", yaml: "files:\n  quota_mb: 0\n  gc_interval: 0s\n", check: func(t *testing.T, c Config) {
			if c.Files.QuotaMB != 0 || c.Files.GCInterval != 0 {
				t.Errorf("files = %+v", c.Files)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("cfg.yaml", []byte(tt.yaml))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if tt.check != nil {
					tt.check(t, c)
				}
				return
			}
			if err == nil {
				t.Fatalf("want error containing %q, got none", tt.wantErr)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestAddrs(t *testing.T) {
	c := Default()
	if got := c.NodeAddr(3); got != "127.0.1.3:8080" {
		t.Errorf("NodeAddr(3) = %s", got)
	}
	if got := c.DBMemberAddr(1); got != "127.0.2.1:3306" {
		t.Errorf("DBMemberAddr(1) = %s", got)
	}
	if got := c.SiteURL(); got != "http://127.0.0.1:8080" {
		t.Errorf("SiteURL = %s", got)
	}
}

// TestDocsListEveryKey keeps docs/config.md in step with the Config type.
func TestDocsListEveryKey(t *testing.T) {
	doc, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range keyPaths(reflect.TypeOf(Config{}), "") {
		if !strings.Contains(string(doc), "`"+key+"`") {
			t.Errorf("docs/config.md does not document `%s`", key)
		}
	}
}

func keyPaths(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name := tagName(f)
		p := name
		if prefix != "" {
			p = prefix + "." + name
		}
		ft := f.Type
		if ft.Kind() == reflect.Slice {
			ft = ft.Elem()
			p += "[]"
		}
		if ft.Kind() == reflect.Struct && ft != reflect.TypeOf(time.Time{}) {
			out = append(out, keyPaths(ft, p)...)
			continue
		}
		out = append(out, p)
	}
	return out
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(Template))
	f.Add([]byte("nodes:\n  count: 3\n"))
	f.Add([]byte("edges:\n  - addr: 127.0.0.1:80\n"))
	f.Add([]byte("&a x: *a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err == nil {
			if verr := c.Validate(); verr != nil {
				t.Fatalf("Parse accepted a config that does not validate: %v", verr)
			}
		}
	})
}
