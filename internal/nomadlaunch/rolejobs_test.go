package nomadlaunch

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	nomad "github.com/hashicorp/nomad/api"
)

func testRole() RoleJob {
	return RoleJob{
		Job: "sp-files", Role: "files", Count: 1, NodeMeta: map[string]string{"scalepress_files": "yes"},
		Command: "/var/lib/scalepress/run/bin/scalepress",
		Args:    []string{"files", "--spec", "${NOMAD_SECRETS_DIR}/role.json", "--addr", "${NOMAD_IP_http}:${NOMAD_PORT_http}"},
		CPU:     200, MemoryMB: 256, KillTimeout: 15 * time.Second,
	}
}

// TestRoleJob: one allocation per host, placed by node meta, restarted
// and then rescheduled by Nomad without end, registered as a Nomad service
// of the job's name, its spec from the job's variable and never in the job.
func TestRoleJob(t *testing.T) {
	r := testRole()
	j := BuildRoleJob(testConfig(), r)
	tg := j.TaskGroups[0]
	task := tg.Tasks[0]
	type got struct {
		ID, Type                        string
		Count                           int
		Constraints                     []string
		MaxParallel                     int
		RestartAttempts                 int
		RescheduleUnlimited             bool
		RescheduleMaxDelay              time.Duration
		Dynamic, Reserved               int
		Service, Provider               string
		Task, Driver, Command           string
		Template, Dest, Perms, OnChange string
	}
	var cons []string
	for _, c := range tg.Constraints {
		cons = append(cons, c.LTarget+" "+c.Operand+" "+c.RTarget)
	}
	g := got{
		ID: *j.ID, Type: *j.Type, Count: *tg.Count, Constraints: cons, MaxParallel: *tg.Update.MaxParallel,
		RestartAttempts: *tg.RestartPolicy.Attempts, RescheduleUnlimited: *tg.ReschedulePolicy.Unlimited,
		RescheduleMaxDelay: *tg.ReschedulePolicy.MaxDelay,
		Dynamic:            len(tg.Networks[0].DynamicPorts), Reserved: len(tg.Networks[0].ReservedPorts),
		Service: tg.Services[0].Name, Provider: tg.Services[0].Provider,
		Task: task.Name, Driver: task.Driver, Command: task.Config["command"].(string),
		Template: deref(task.Templates[0].EmbeddedTmpl), Dest: deref(task.Templates[0].DestPath),
		Perms: deref(task.Templates[0].Perms), OnChange: deref(task.Templates[0].ChangeMode),
	}
	want := got{
		ID: "sp-files", Type: "service", Count: 1,
		Constraints: []string{" distinct_hosts true", "${meta.scalepress_files} = yes"},
		MaxParallel: 0, RestartAttempts: 3, RescheduleUnlimited: true, RescheduleMaxDelay: 30 * time.Second,
		Dynamic: 1, Reserved: 0, Service: "sp-files", Provider: "nomad",
		Task: "files", Driver: "raw_exec", Command: r.Command,
		Template: `{{ with nomadVar "nomad/jobs/sp-files" }}{{ .spec }}{{ end }}`, Dest: "secrets/role.json",
		Perms: "0600", OnChange: "noop",
	}
	if diff := cmp.Diff(want, g); diff != "" {
		t.Error(diff)
	}
	b, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"secret_key", "access_key", "\"key\":", "files_token"} {
		if strings.Contains(strings.ToLower(string(b)), secret) {
			t.Errorf("the job mentions %q", secret)
		}
	}

	// A static port (dns answers on 53) is reserved on the host.
	r.Port = 5353
	tg = BuildRoleJob(testConfig(), r).TaskGroups[0]
	if p := tg.Networks[0].ReservedPorts; len(p) != 1 || p[0].Value != 5353 || len(tg.Networks[0].DynamicPorts) != 0 {
		t.Errorf("static port: %+v", tg.Networks[0])
	}
}

// TestEdgeRoleJob: an edge's job runs on the client with its published
// address (HostIP) among those of its region, on its static port; its spec
// (the forwarding key, the purge secret, its control and files tokens) is
// in the variable only.
func TestEdgeRoleJob(t *testing.T) {
	r := RoleJob{
		Job: "sp-edge-edge-1", Role: "edge", Count: 1,
		NodeMeta: map[string]string{"scalepress_region": "eu", "scalepress_role": "edge"}, HostIP: "10.77.0.13", Port: 80,
		Command: "/usr/local/bin/scalepress", Args: []string{"edge", "--spec", "${NOMAD_SECRETS_DIR}/role.json"},
		CPU: 200, MemoryMB: 256, KillTimeout: 45 * time.Second,
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	j := BuildRoleJob(testConfig(), r)
	tg := j.TaskGroups[0]
	var cons []string
	for _, c := range tg.Constraints {
		cons = append(cons, c.LTarget+" "+c.Operand+" "+c.RTarget)
	}
	want := []string{" distinct_hosts true", "${meta.scalepress_region} = eu", "${meta.scalepress_role} = edge", "${attr.unique.network.ip-address} = 10.77.0.13"}
	if diff := cmp.Diff(want, cons); diff != "" {
		t.Errorf("constraints (-want +got):\n%s", diff)
	}
	if p := tg.Networks[0].ReservedPorts; len(p) != 1 || p[0].Value != 80 || p[0].Label != PortLabel {
		t.Errorf("ports: %+v", tg.Networks[0])
	}
	if s := tg.Services; len(s) != 1 || s[0].Name != "sp-edge-edge-1" || s[0].Provider != "nomad" {
		t.Errorf("services: %+v", s)
	}
	b, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"forward_key", "purge_secret", "control_token", "files_token", "ticket_key"} {
		if strings.Contains(strings.ToLower(string(b)), secret) {
			t.Errorf("the job mentions %q", secret)
		}
	}
	r.HostIP = "10.77.0.13%eth0"
	if err := r.Validate(); err == nil || !strings.Contains(err.Error(), "RoleJob.HostIP") {
		t.Errorf("HostIP with a zone: %v", err)
	}
}

// TestEdgeRoleJobCertificates: an edge serving HTTPS on Nomad gets its
// certificate files from items of its job's variable, each rendered by a
// template of its own into the task's secrets/ (0600), rendered again in
// place when the variable changes (noop: the edge reloads the file). The
// job names the items; no certificate and no key is in its JSON.
func TestEdgeRoleJobCertificates(t *testing.T) {
	r := RoleJob{
		Job: "sp-edge-edge-1", Role: "edge", Count: 1, HostIP: "10.77.0.13", Port: 80, HTTPSPort: 443,
		Files:   []SecretFile{{Item: "tls_cert_0", Name: "tls-cert-0.pem"}, {Item: "tls_key_0", Name: "tls-key-0.pem"}},
		Command: "/usr/local/bin/scalepress", Args: []string{"edge", "--spec", "${NOMAD_SECRETS_DIR}/role.json"},
		CPU: 200, MemoryMB: 256, KillTimeout: 45 * time.Second,
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	j := BuildRoleJob(testConfig(), r)
	tg := j.TaskGroups[0]
	var ports []string
	for _, p := range tg.Networks[0].ReservedPorts {
		ports = append(ports, fmt.Sprintf("%s %d", p.Label, p.Value))
	}
	if diff := cmp.Diff([]string{"http 80", "https 443"}, ports); diff != "" {
		t.Errorf("reserved ports (-want +got):\n%s", diff)
	}
	type tpl struct{ Tmpl, Dest, Perms, Change string }
	var got []tpl
	for _, x := range tg.Tasks[0].Templates {
		got = append(got, tpl{deref(x.EmbeddedTmpl), deref(x.DestPath), deref(x.Perms), deref(x.ChangeMode)})
	}
	want := []tpl{
		{`{{ with nomadVar "nomad/jobs/sp-edge-edge-1" }}{{ .spec }}{{ end }}`, "secrets/role.json", "0600", "noop"},
		{`{{ with nomadVar "nomad/jobs/sp-edge-edge-1" }}{{ .tls_cert_0 }}{{ end }}`, "secrets/tls-cert-0.pem", "0600", "noop"},
		{`{{ with nomadVar "nomad/jobs/sp-edge-edge-1" }}{{ .tls_key_0 }}{{ end }}`, "secrets/tls-key-0.pem", "0600", "noop"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("templates (-want +got):\n%s", diff)
	}

	// The variable holds the PEM; the job does not.
	cert, key := "-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----\n", "-----BEGIN PRIVATE KEY-----\nMIGHkey\n-----END PRIVATE KEY-----\n"
	items, err := RoleItems(r, []byte(`{"id":"edge-1"}`), map[string]string{"tls_cert_0": cert, "tls_key_0": key})
	if err != nil {
		t.Fatal(err)
	}
	if items["tls_key_0"] != key || items["tls_cert_0"] != cert || items[SpecItem] != `{"id":"edge-1"}` {
		t.Errorf("items %q", items)
	}
	b, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"BEGIN", "PRIVATE KEY", "MIGHkey", "MIIBcert"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("the job's JSON holds %q", secret)
		}
	}

	// Every file's item is required, none other is written, and the
	// whole fits a Nomad Variable.
	for _, tt := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"missing key", map[string]string{"tls_cert_0": cert}, "item tls_key_0: empty"},
		{"unknown item", map[string]string{"tls_cert_0": cert, "tls_key_0": key, "tls_cert_1": cert}, "3 items given for 2 files"},
		{"too big", map[string]string{"tls_cert_0": strings.Repeat("x", MaxVariableBytes), "tls_key_0": key}, "more than 61440"},
	} {
		if _, err := RoleItems(r, []byte("{}"), tt.files); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestRoleJobValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*RoleJob)
		want string // "" = valid
	}{
		{"valid", func(*RoleJob) {}, ""},
		{"job", func(r *RoleJob) { r.Job = "a/b" }, "RoleJob.Job"},
		{"role", func(r *RoleJob) { r.Role = "" }, "RoleJob.Role"},
		{"count", func(r *RoleJob) { r.Count = 0 }, "RoleJob.Count"},
		{"command", func(r *RoleJob) { r.Command = "" }, "RoleJob.Command"},
		{"meta", func(r *RoleJob) { r.NodeMeta = map[string]string{"a.b": "x"} }, "RoleJob.NodeMeta"},
		{"port", func(r *RoleJob) { r.Port = 70000 }, "RoleJob.Port"},
		{"memory", func(r *RoleJob) { r.MemoryMB = 0 }, "RoleJob.CPU and MemoryMB"},
		{"kill timeout", func(r *RoleJob) { r.KillTimeout = 0 }, "RoleJob.KillTimeout"},
		{"https port", func(r *RoleJob) { r.Port, r.HTTPSPort = 80, 80 }, "RoleJob.HTTPSPort"},
		{"file item", func(r *RoleJob) { r.Files = []SecretFile{{Item: "tls-cert", Name: "c.pem"}} }, "RoleJob.Files"},
		{"file item spec", func(r *RoleJob) { r.Files = []SecretFile{{Item: "spec", Name: "c.pem"}} }, "RoleJob.Files"},
		{"file name dir", func(r *RoleJob) { r.Files = []SecretFile{{Item: "c", Name: "../c.pem"}} }, "RoleJob.Files"},
		{"file name spec", func(r *RoleJob) { r.Files = []SecretFile{{Item: "c", Name: "role.json"}} }, "RoleJob.Files"},
		{"file twice", func(r *RoleJob) { r.Files = []SecretFile{{Item: "c", Name: "c.pem"}, {Item: "c", Name: "d.pem"}} }, "RoleJob.Files"},
	}
	for _, tt := range tests {
		r := testRole()
		tt.edit(&r)
		err := r.Validate()
		if (err == nil) != (tt.want == "") || err != nil && !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want %q", tt.name, err, tt.want)
		}
	}
}

// TestNodeJobFollowsFiles: with a files role job, each node task gets its
// service's addresses rendered into FollowFile, rendered again in place
// (noop) when the role moves; without one, no such template.
func TestNodeJobFollowsFiles(t *testing.T) {
	c := testConfig()
	if n := len(Job(c, 1).TaskGroups[0].Tasks[0].Templates); n != 1 {
		t.Fatalf("without a files service: %d templates, want 1 (the spec)", n)
	}
	c.FilesService = "sp-files"
	tpls := Job(c, 1).TaskGroups[0].Tasks[0].Templates
	if len(tpls) != 2 {
		t.Fatalf("with a files service: %d templates, want 2", len(tpls))
	}
	got := []string{*tpls[1].EmbeddedTmpl, *tpls[1].DestPath, *tpls[1].ChangeMode}
	want := []string{"{{ range nomadService \"sp-files\" }}http://{{ .Address }}:{{ .Port }}\n{{ end }}", "local/files-server", "noop"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Error(diff)
	}
	c.RedisService = "sp-redis"
	tpls = Job(c, 1).TaskGroups[0].Tasks[0].Templates
	if len(tpls) != 3 {
		t.Fatalf("with files and redis services: %d templates, want 3", len(tpls))
	}
	got = []string{*tpls[2].EmbeddedTmpl, *tpls[2].DestPath, *tpls[2].ChangeMode}
	want = []string{"{{ range nomadService \"sp-redis\" }}http://{{ .Address }}:{{ .Port }}\n{{ end }}", "local/redis-server", "noop"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Error(diff)
	}
}

func TestNewestFirst(t *testing.T) {
	regs := []*nomad.ServiceRegistration{
		{Address: "10.77.0.12", Port: 2000, NodeID: "n2", AllocID: "a1", CreateIndex: 10},
		{Address: "10.77.0.14", Port: 3000, NodeID: "n4", AllocID: "a3", CreateIndex: 30},
		{Address: "10.77.0.13", Port: 4000, NodeID: "n3", AllocID: "a2", CreateIndex: 20},
	}
	want := []ServiceAddr{
		{Addr: "10.77.0.14:3000", Node: "n4", Alloc: "a3", Index: 30},
		{Addr: "10.77.0.13:4000", Node: "n3", Alloc: "a2", Index: 20},
		{Addr: "10.77.0.12:2000", Node: "n2", Alloc: "a1", Index: 10},
	}
	if diff := cmp.Diff(want, newestFirst(regs)); diff != "" {
		t.Error(diff)
	}
}

// deref is *p, "" for nil (a field the job leaves to Nomad's default).
func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
