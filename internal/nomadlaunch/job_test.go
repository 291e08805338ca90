package nomadlaunch

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	nomad "github.com/hashicorp/nomad/api"
)

func testConfig() Config {
	c := DefaultConfig()
	c.Command = "/var/lib/scalepress/run/bin/scalepress"
	c.Args = []string{"node-host", "--spec", "${NOMAD_TASK_DIR}/../" + SpecFile}
	c.Env = map[string]string{"SCALEPRESS_STATE": "/var/lib/scalepress"}
	return c
}

// TestJob: one group, its count the group's size; Nomad neither restarts
// nor reschedules by itself (the group replaces), no deployment blocks a
// scale, and the spec comes from the job's variable, never from the job.
func TestJob(t *testing.T) {
	c := testConfig()
	j := Job(c, 3)
	if *j.ID != "scalepress-nodes" || *j.Type != "service" || len(j.TaskGroups) != 1 {
		t.Fatalf("job %s type %s, %d groups", *j.ID, *j.Type, len(j.TaskGroups))
	}
	tg := j.TaskGroups[0]
	type got struct {
		Group, Count                    any
		MaxParallel                     int
		RestartAttempts                 int
		RestartMode                     string
		RescheduleUnlimited             bool
		RescheduleDelay                 time.Duration
		Port, Service, Provider         string
		Driver, Command, Template, Dest string
		Perms, ChangeMode               string
		KillTimeout                     time.Duration
		Args                            any
	}
	task := tg.Tasks[0]
	g := got{
		Group: *tg.Name, Count: *tg.Count, MaxParallel: *tg.Update.MaxParallel,
		RestartAttempts: *tg.RestartPolicy.Attempts, RestartMode: *tg.RestartPolicy.Mode,
		RescheduleUnlimited: *tg.ReschedulePolicy.Unlimited, RescheduleDelay: *tg.ReschedulePolicy.Delay,
		Port: tg.Networks[0].DynamicPorts[0].Label, Service: tg.Services[0].Name, Provider: tg.Services[0].Provider,
		Driver: task.Driver, Command: task.Config["command"].(string), Args: task.Config["args"],
		Template: *task.Templates[0].EmbeddedTmpl, Dest: *task.Templates[0].DestPath,
		Perms: *task.Templates[0].Perms, ChangeMode: *task.Templates[0].ChangeMode, KillTimeout: *task.KillTimeout,
	}
	want := got{
		Group: "node", Count: 3, MaxParallel: 0, RestartAttempts: 0, RestartMode: "fail",
		RescheduleUnlimited: true, RescheduleDelay: 365 * 24 * time.Hour,
		Port: "http", Service: "scalepress-nodes", Provider: "nomad",
		Driver: "raw_exec", Command: c.Command, Args: c.Args,
		Template: `{{ with nomadVar "nomad/jobs/scalepress-nodes" }}{{ .spec }}{{ end }}`, Dest: "secrets/node-host.json",
		Perms: "0600", ChangeMode: "noop", KillTimeout: 45 * time.Second,
	}
	if diff := cmp.Diff(want, g); diff != "" {
		t.Error(diff)
	}
	// The job is readable by whoever may read jobs: no secret in it.
	b, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"forward_key", "files_token", "password"} {
		if strings.Contains(strings.ToLower(string(b)), secret) {
			t.Errorf("the job mentions %q", secret)
		}
	}
}

// TestJobPlacement: nodes spread over Nomad clients (hosts), run only on
// clients whose node meta matches, in the configured datacenters.
func TestJobPlacement(t *testing.T) {
	tests := []struct {
		name        string
		meta        map[string]string
		dcs         []string
		constraints []*nomad.Constraint
	}{
		{"no meta", nil, []string{"*"}, nil},
		{"region and role", map[string]string{"scalepress_role": "node", "scalepress_region": "eu"}, []string{"dc1", "dc2"},
			[]*nomad.Constraint{
				{LTarget: "${meta.scalepress_region}", Operand: "=", RTarget: "eu"},
				{LTarget: "${meta.scalepress_role}", Operand: "=", RTarget: "node"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig()
			c.NodeMeta, c.Datacenters = tt.meta, tt.dcs
			j := Job(c, 3)
			tg := j.TaskGroups[0]
			want := []*nomad.Spread{{Attribute: "${node.unique.id}", Weight: ptr(int8(100))}}
			if diff := cmp.Diff(want, tg.Spreads); diff != "" {
				t.Errorf("spreads (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.constraints, tg.Constraints); diff != "" {
				t.Errorf("constraints (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.dcs, j.Datacenters); diff != "" {
				t.Errorf("datacenters (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want string // in the error; "" = valid
	}{
		{"default with a command", func(*Config) {}, ""},
		{"address scheme", func(c *Config) { c.Address = "127.0.0.1:4646" }, "Address"},
		{"job name", func(c *Config) { c.Job = "nodes/../x" }, "Job"},
		{"command", func(c *Config) { c.Command = "" }, "Command"},
		{"cert without key", func(c *Config) { c.CertFile = "/etc/c.pem" }, "CertFile and KeyFile"},
		{"memory", func(c *Config) { c.MemoryMB = 0 }, "MemoryMB"},
		{"node meta", func(c *Config) { c.NodeMeta = map[string]string{"scalepress_region": "eu"} }, ""},
		{"node meta key", func(c *Config) { c.NodeMeta = map[string]string{"a}${attr": "eu"} }, "NodeMeta"},
		{"node meta value", func(c *Config) { c.NodeMeta = map[string]string{"scalepress_region": ""} }, "NodeMeta"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig()
			tt.mod(&c)
			err := c.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestSlotOf(t *testing.T) {
	tests := []struct {
		name string
		want int
	}{
		{"scalepress-nodes.node[0]", 0},
		{"scalepress-nodes.node[12]", 12},
		{"a.b[c].node[3]", 3},
		{"scalepress-nodes.node", -1},
		{"scalepress-nodes.node[-1]", -1},
		{"scalepress-nodes.node[x]", -1},
	}
	for _, tt := range tests {
		if got := slotOf(tt.name); got != tt.want {
			t.Errorf("slotOf(%q) = %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestNewest: per slot, the allocation created last, whatever its state:
// a lost one's replacement replaces it in its slot.
func TestNewest(t *testing.T) {
	a := func(id, name, status string, idx uint64) *nomad.AllocationListStub {
		return &nomad.AllocationListStub{ID: id, Name: name, TaskGroup: Group, ClientStatus: status, DesiredStatus: "run", CreateIndex: idx}
	}
	allocs := []*nomad.AllocationListStub{
		a("a1", "j.node[0]", "running", 10),
		a("a2", "j.node[1]", "lost", 11),
		a("a3", "j.node[1]", "pending", 20),
		a("a4", "j.node[2]", "failed", 12),
		{ID: "x", Name: "j.other[0]", TaskGroup: "other", CreateIndex: 30},
	}
	got := map[int]string{}
	for i, al := range newest(allocs) {
		got[i] = al.ID
	}
	if diff := cmp.Diff(map[int]string{0: "a1", 1: "a3", 2: "a4"}, got); diff != "" {
		t.Error(diff)
	}
	if !failedInPlace(allocs[3]) || failedInPlace(allocs[1]) || !live(allocs[2]) || live(allocs[1]) {
		t.Error("failedInPlace/live")
	}
}

func TestSlotIndex(t *testing.T) {
	for id, want := range map[string]int{"node-1": 0, "node-10": 9} {
		if got, err := slotIndex(id); err != nil || got != want {
			t.Errorf("slotIndex(%q) = %d, %v", id, got, err)
		}
	}
	for _, id := range []string{"node-0", "node-01", "edge-1", "node-1x"} {
		if _, err := slotIndex(id); err == nil {
			t.Errorf("slotIndex(%q): no error", id)
		}
	}
}
