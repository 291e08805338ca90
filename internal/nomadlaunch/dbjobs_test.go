package nomadlaunch

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestDBJob: one group per DB host, pinned by node meta to that host and
// never two on one machine; the agent restarts in place and outlives a cut
// link; its spec comes from its own group's variable, never from the job.
func TestDBJob(t *testing.T) {
	c := testConfig()
	d := DBAgents{Job: "sp-db", Hosts: []string{"d1", "d2", "d3"}, CPU: 300, MemoryMB: 400}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	j := DBJob(c, d)
	if *j.ID != "sp-db" || *j.Type != "service" {
		t.Fatalf("job %s type %s", *j.ID, *j.Type)
	}
	if len(j.Constraints) != 1 || j.Constraints[0].Operand != "distinct_hosts" || j.Constraints[0].RTarget != "true" {
		t.Errorf("job constraints %+v, want distinct_hosts", j.Constraints)
	}
	type group struct {
		Name, Constraint      string
		Count                 int
		RestartMode           string
		RescheduleAttempts    int
		MaxClientDisconnect   time.Duration
		Driver, Command       string
		Args                  []string
		Template, Dest, Perms string
		ChangeMode            string
		CPU, MemoryMB         int
	}
	var got []group
	for _, tg := range j.TaskGroups {
		task := tg.Tasks[0]
		got = append(got, group{
			Name: *tg.Name, Count: *tg.Count,
			Constraint:  tg.Constraints[0].LTarget + " " + tg.Constraints[0].Operand + " " + tg.Constraints[0].RTarget,
			RestartMode: *tg.RestartPolicy.Mode, RescheduleAttempts: *tg.ReschedulePolicy.Attempts,
			MaxClientDisconnect: *tg.MaxClientDisconnect,
			Driver:              task.Driver, Command: task.Config["command"].(string), Args: task.Config["args"].([]string),
			Template: *task.Templates[0].EmbeddedTmpl, Dest: *task.Templates[0].DestPath, Perms: *task.Templates[0].Perms,
			ChangeMode: *task.Templates[0].ChangeMode, CPU: *task.Resources.CPU, MemoryMB: *task.Resources.MemoryMB,
		})
	}
	for _, tg := range j.TaskGroups {
		lc := tg.Tasks[0].LogConfig
		if logs := *lc.MaxFiles * *lc.MaxFileSizeMB; logs >= *tg.EphemeralDisk.SizeMB {
			t.Errorf("%s: logs %d MB, disk %d MB: Nomad refuses logs that do not fit the disk", *tg.Name, logs, *tg.EphemeralDisk.SizeMB)
		}
	}
	var want []group
	for _, id := range d.Hosts {
		want = append(want, group{
			Name: "db-" + id, Count: 1, Constraint: "${meta.scalepress_db} = " + id,
			RestartMode: "delay", RescheduleAttempts: 0, MaxClientDisconnect: 7 * 24 * time.Hour,
			Driver: "raw_exec", Command: c.Command, Args: []string{"db-agent", "--spec", "${NOMAD_SECRETS_DIR}/db-agent.json"},
			Template: `{{ with nomadVar "nomad/jobs/sp-db/db-` + id + `" }}{{ .spec }}{{ end }}`,
			Dest:     "secrets/db-agent.json", Perms: "0600", ChangeMode: "noop", CPU: 300, MemoryMB: 400,
		})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Error(diff)
	}
	b, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.ToLower(string(b)), `"key"`) {
		t.Errorf("the job carries a key: %.300s", b)
	}
}

func TestDBAgentsValidate(t *testing.T) {
	ok := DBAgents{Job: "sp-db", Hosts: []string{"d1", "d2", "d3"}, CPU: 300, MemoryMB: 400}
	tests := []struct {
		name string
		mod  func(*DBAgents)
		want string // in the error; "" = valid
	}{
		{"valid", func(*DBAgents) {}, ""},
		{"job", func(d *DBAgents) { d.Job = "a b" }, "DBAgents.Job"},
		{"no hosts", func(d *DBAgents) { d.Hosts = nil }, "DBAgents.Hosts"},
		{"twice", func(d *DBAgents) { d.Hosts = []string{"d1", "d1"} }, `"d1"`},
		{"template injection", func(d *DBAgents) { d.Hosts = []string{`d1" }}{{`} }, "DBAgents.Hosts"},
		{"cpu", func(d *DBAgents) { d.CPU = 0 }, "CPU"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := ok
			d.Hosts = append([]string(nil), ok.Hosts...)
			tt.mod(&d)
			err := d.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate() = %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

// TestDBRouterJob: a system job (one router per eligible client) on the
// clients that run nodes, its spec rendered verbatim (never read as a
// template), restarted in place.
func TestDBRouterJob(t *testing.T) {
	c := testConfig()
	c.NodeMeta = map[string]string{"scalepress_role": "node", "region": "eu"}
	spec := `{"addr":"127.0.0.1:3306","members_url":"http://10.0.0.11:9090/v1/db/members","members":["10.0.0.12:3306"]}`
	j := DBRouterJob(c, "sp-dbrouter", []byte(spec))
	tg := j.TaskGroups[0]
	task := tg.Tasks[0]
	type got struct {
		Type, Group, Driver, Command string
		Args, Constraints            []string
		Tmpl, Dest, ChangeMode       string
		Delims                       [2]string
		RestartMode                  string
	}
	g := got{Type: *j.Type, Group: *tg.Name, Driver: task.Driver, Command: task.Config["command"].(string),
		Args: task.Config["args"].([]string), Tmpl: *task.Templates[0].EmbeddedTmpl, Dest: *task.Templates[0].DestPath,
		ChangeMode: *task.Templates[0].ChangeMode, Delims: [2]string{*task.Templates[0].LeftDelim, *task.Templates[0].RightDelim},
		RestartMode: *tg.RestartPolicy.Mode}
	for _, k := range tg.Constraints {
		g.Constraints = append(g.Constraints, k.LTarget+" "+k.Operand+" "+k.RTarget)
	}
	want := got{Type: "system", Group: "dbrouter", Driver: "raw_exec", Command: c.Command,
		Args:        []string{"dbrouter", "--spec", "${NOMAD_TASK_DIR}/dbrouter.json"},
		Constraints: []string{"${meta.region} = eu", "${meta.scalepress_role} = node"},
		Tmpl:        spec, Dest: "local/dbrouter.json", ChangeMode: "restart",
		Delims: [2]string{"<<scalepress-no-template:", ":scalepress-no-template>>"}, RestartMode: "delay"}
	if diff := cmp.Diff(want, g); diff != "" {
		t.Error(diff)
	}
	if logs := *task.LogConfig.MaxFiles * *task.LogConfig.MaxFileSizeMB; logs >= *tg.EphemeralDisk.SizeMB {
		t.Errorf("logs %d MB, disk %d MB: Nomad refuses logs that do not fit the disk", logs, *tg.EphemeralDisk.SizeMB)
	}
	if strings.Contains(spec, want.Delims[0]) {
		t.Fatal("the test spec holds the delimiter")
	}
}
