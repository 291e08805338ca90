package nomadlaunch

// The db-agent job (docs/adr/0018-galera-across-hosts.md, "Agents on
// Nomad"): one task group per DB host, each pinned to the Nomad client
// whose node meta scalepress_db names that host, running `scalepress
// db-agent` from a spec that is a Nomad Variable readable by that group's
// task only. The agent carries out; the controller still decides every
// start, so Nomad restarting an agent never starts a member by itself.

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"time"

	nomad "github.com/hashicorp/nomad/api"
)

// DBMetaKey is the node meta key naming the DB host (its db.hosts id) a
// Nomad client is: the agent for that host runs there and nowhere else.
const DBMetaKey = "scalepress_db"

// DBTask names the agent's task in each group; DBSpecFile is where its
// template renders the agent's spec (the task's private secrets dir).
const (
	DBTask     = "db-agent"
	DBSpecFile = "secrets/db-agent.json"
)

// DBAgents describes the agent job.
type DBAgents struct {
	// Job is the job's id (the node job's id + "-db" by default).
	Job string
	// Hosts are the db.hosts ids, one group (and one agent) each.
	Hosts []string
	// CPU (MHz) and MemoryMB reserved per agent and its member.
	CPU, MemoryMB int
}

var dbHostID = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

// Validate names the first field that is wrong.
func (d DBAgents) Validate() error {
	if !jobName.MatchString(d.Job) {
		return fmt.Errorf("nomadlaunch: DBAgents.Job: want letters, digits, - and _, got %q", d.Job)
	}
	if len(d.Hosts) == 0 {
		return fmt.Errorf("nomadlaunch: DBAgents.Hosts: empty")
	}
	seen := map[string]bool{}
	for _, h := range d.Hosts {
		if !dbHostID.MatchString(h) || seen[h] {
			return fmt.Errorf("nomadlaunch: DBAgents.Hosts: %q is not a distinct db.hosts id", h)
		}
		seen[h] = true
	}
	if d.CPU <= 0 || d.MemoryMB <= 0 {
		return fmt.Errorf("nomadlaunch: DBAgents.CPU and MemoryMB: must be positive, got %d and %d", d.CPU, d.MemoryMB)
	}
	return nil
}

// DBGroup is the task group of DB host id.
func DBGroup(id string) string { return "db-" + id }

// DBVariablePath is the variable holding host id's agent spec: under the
// group's own path, so only that group's task may read it (a Nomad
// workload identity reads nomad/jobs/JOB/GROUP of its own group, not of
// another's): a broken DB host's agent cannot read the others' keys.
func DBVariablePath(job, id string) string { return VariablePath(job) + "/" + DBGroup(id) }

// DBJob is the agent job for d: c gives the binary (Command), where the
// job goes (region, namespace, datacenters).
func DBJob(c Config, d DBAgents) *nomad.Job {
	job := nomad.NewServiceJob(d.Job, d.Job, c.Region, 70)
	job.Datacenters = c.Datacenters
	if c.Namespace != "" {
		job.Namespace = &c.Namespace
	}
	// Two members never share a machine, even if two clients were given
	// the same meta by mistake.
	job.Constraints = []*nomad.Constraint{{Operand: "distinct_hosts", RTarget: "true"}}
	for _, id := range d.Hosts {
		tg := nomad.NewTaskGroup(DBGroup(id), 1)
		tg.Constraints = []*nomad.Constraint{nomad.NewConstraint("${meta."+DBMetaKey+"}", "=", id)}
		tg.Update = &nomad.UpdateStrategy{MaxParallel: ptr(0)}
		// The agent restarts in place (its member died with it: the
		// controller sees the member stopped and restarts it through
		// --wsrep-recover, as after a crash); the group never moves, the
		// data is on that host.
		tg.RestartPolicy = &nomad.RestartPolicy{Attempts: ptr(1000), Mode: ptr("delay"), Interval: ptr(time.Hour), Delay: ptr(2 * time.Second)}
		tg.ReschedulePolicy = &nomad.ReschedulePolicy{Attempts: ptr(0), Unlimited: ptr(false)}
		// A host whose link is cut keeps its agent and member running: its
		// allocation is "unknown", not "lost", and carries on when the link
		// is back, so the member rejoins by IST instead of being replaced
		// (a lost allocation's replacement would kill the member).
		tg.MaxClientDisconnect = ptr(maxDBDisconnect)
		tg.EphemeralDisk = &nomad.EphemeralDisk{SizeMB: ptr(50)}
		task := nomad.NewTask(DBTask, "raw_exec")
		task.Config = map[string]any{"command": c.Command, "args": []string{"db-agent", "--spec", "${NOMAD_SECRETS_DIR}/" + dbSpecName}}
		// The agent stops its member (up to 60 s) when it is stopped.
		task.KillTimeout = ptr(90 * time.Second)
		task.KillSignal = "SIGTERM"
		task.Resources = &nomad.Resources{CPU: ptr(d.CPU), MemoryMB: ptr(d.MemoryMB)}
		// Logs within the group's disk (Nomad refuses more); mariadbd
		// logs to its own file in the member's directory.
		task.LogConfig = &nomad.LogConfig{MaxFiles: ptr(3), MaxFileSizeMB: ptr(10)}
		task.Templates = []*nomad.Template{{
			EmbeddedTmpl: ptr(fmt.Sprintf(`{{ with nomadVar %q }}{{ .%s }}{{ end }}`, DBVariablePath(d.Job, id), SpecItem)),
			DestPath:     ptr(DBSpecFile),
			Perms:        ptr("0600"),
			// A rewritten spec never restarts a running agent (it would
			// stop its member): the next start reads it.
			ChangeMode:    ptr("noop"),
			ErrMissingKey: ptr(true),
		}}
		tg.AddTask(task)
		job.AddTaskGroup(tg)
	}
	return job
}

const dbSpecName = "db-agent.json"

// maxDBDisconnect is how long a DB host may be unreachable and still have
// its agent taken back as it runs: a week, longer than any outage the
// cluster rides out without an operator.
const maxDBDisconnect = 7 * 24 * time.Hour

// DBJobs submits and stops the agent job.
type DBJobs struct {
	cfg Config
	d   DBAgents
	nc  *nomad.Client
}

// NewDBJobs returns the agent job's handle for c's Nomad.
func NewDBJobs(c Config, d DBAgents) (*DBJobs, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	nc, err := c.client()
	if err != nil {
		return nil, err
	}
	return &DBJobs{cfg: c, d: d, nc: nc}, nil
}

// Submit writes each host's spec (specs[id]) into its group's variable
// and registers the job. Registering the same job again changes nothing
// that runs: a new controller adopts the agents (and their members) as
// they are.
func (j *DBJobs) Submit(ctx context.Context, specs map[string][]byte) error {
	wo := (&nomad.WriteOptions{}).WithContext(ctx)
	for _, id := range j.d.Hosts {
		spec, ok := specs[id]
		if !ok {
			return fmt.Errorf("nomad: db-agent spec for %s: missing", id)
		}
		v := &nomad.Variable{Path: DBVariablePath(j.d.Job, id), Namespace: j.cfg.Namespace, Items: nomad.VariableItems{SpecItem: string(spec)}}
		if _, _, err := j.nc.Variables().Create(v, wo); err != nil {
			return j.cfg.Explain(fmt.Sprintf("write variable %s", v.Path), err)
		}
	}
	if _, _, err := j.nc.Jobs().Register(DBJob(j.cfg, j.d), wo); err != nil {
		return j.cfg.Explain(fmt.Sprintf("register job %s", j.d.Job), err)
	}
	return nil
}

// Close stops the job (each agent stops its member) and deletes the
// variables.
func (j *DBJobs) Close(ctx context.Context) error {
	wo := (&nomad.WriteOptions{}).WithContext(ctx)
	var first error
	if _, _, err := j.nc.Jobs().Deregister(j.d.Job, false, wo); err != nil {
		first = j.cfg.Explain(fmt.Sprintf("stop job %s", j.d.Job), err)
	}
	for _, id := range j.d.Hosts {
		if _, err := j.nc.Variables().Delete(DBVariablePath(j.d.Job, id), wo); err != nil && first == nil {
			first = j.cfg.Explain(fmt.Sprintf("delete variable %s", DBVariablePath(j.d.Job, id)), err)
		}
	}
	return first
}

// DBRouterTask names the router's task in the router job.
const DBRouterTask = "dbrouter"

// DBRouterJob is a system job: one `scalepress dbrouter` on every Nomad
// client that may run nodes (c.NodeMeta), beside WordPress, at the same
// address on each (a loopback one), so a node's SQL goes from its host
// straight to the members. spec is the router's spec (JSON, no secret: the
// members URL and addresses); it is rendered into the task's directory.
func DBRouterJob(c Config, job string, spec []byte) *nomad.Job {
	j := nomad.NewSystemJob(job, job, c.Region, 70)
	j.Datacenters = c.Datacenters
	if c.Namespace != "" {
		j.Namespace = &c.Namespace
	}
	tg := nomad.NewTaskGroup(DBRouterTask, 1)
	tg.Constraints = metaConstraints(c.NodeMeta)
	tg.RestartPolicy = &nomad.RestartPolicy{Attempts: ptr(1000), Mode: ptr("delay"), Interval: ptr(time.Hour), Delay: ptr(time.Second)}
	tg.EphemeralDisk = &nomad.EphemeralDisk{SizeMB: ptr(20)}
	task := nomad.NewTask(DBRouterTask, "raw_exec")
	task.Config = map[string]any{"command": c.Command, "args": []string{"dbrouter", "--spec", "${NOMAD_TASK_DIR}/" + dbRouterSpecName}}
	task.KillTimeout = ptr(15 * time.Second)
	task.KillSignal = "SIGTERM"
	task.Resources = &nomad.Resources{CPU: ptr(100), MemoryMB: ptr(64)}
	task.LogConfig = &nomad.LogConfig{MaxFiles: ptr(2), MaxFileSizeMB: ptr(5)}
	task.Templates = []*nomad.Template{{
		// The spec is data, not a template: delimiters it can never hold.
		EmbeddedTmpl: ptr(string(spec)),
		LeftDelim:    ptr("<<scalepress-no-template:"),
		RightDelim:   ptr(":scalepress-no-template>>"),
		DestPath:     ptr("local/" + dbRouterSpecName),
		Perms:        ptr("0644"),
		ChangeMode:   ptr("restart"),
	}}
	tg.AddTask(task)
	j.AddTaskGroup(tg)
	return j
}

const dbRouterSpecName = "dbrouter.json"

// metaConstraints is one constraint per node meta key, sorted.
func metaConstraints(meta map[string]string) []*nomad.Constraint {
	var out []*nomad.Constraint
	for _, k := range slices.Sorted(maps.Keys(meta)) {
		out = append(out, nomad.NewConstraint("${meta."+k+"}", "=", meta[k]))
	}
	return out
}

// DBRouters submits and stops the router job.
type DBRouters struct {
	job string
	nc  *nomad.Client
	cfg Config
}

// NewDBRouters returns the router job's handle for c's Nomad.
func NewDBRouters(c Config, job string) (*DBRouters, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if !jobName.MatchString(job) {
		return nil, fmt.Errorf("nomadlaunch: router job: want letters, digits, - and _, got %q", job)
	}
	nc, err := c.client()
	if err != nil {
		return nil, err
	}
	return &DBRouters{job: job, nc: nc, cfg: c}, nil
}

// Submit registers the router job with spec and waits (until ctx ends)
// for a running router on every client it placed one on.
func (r *DBRouters) Submit(ctx context.Context, spec []byte) (placed int, err error) {
	wo := (&nomad.WriteOptions{}).WithContext(ctx)
	if _, _, err := r.nc.Jobs().Register(DBRouterJob(r.cfg, r.job, spec), wo); err != nil {
		return 0, r.cfg.Explain(fmt.Sprintf("register job %s", r.job), err)
	}
	for {
		allocs, _, err := r.nc.Jobs().Allocations(r.job, false, (&nomad.QueryOptions{}).WithContext(ctx))
		if err != nil {
			return 0, r.cfg.Explain(fmt.Sprintf("allocations of %s", r.job), err)
		}
		running, pending := 0, 0
		for _, a := range allocs {
			switch {
			case a.DesiredStatus != nomad.AllocDesiredStatusRun:
			case a.ClientStatus == nomad.AllocClientStatusRunning:
				running++
			case a.ClientStatus == nomad.AllocClientStatusPending:
				pending++
			}
		}
		if running > 0 && pending == 0 {
			return running, nil
		}
		select {
		case <-ctx.Done():
			return running, fmt.Errorf("nomad: routers of %s: %d running, %d pending: %w", r.job, running, pending, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Spec is the router spec of the job registered now (nil, nil when there
// is none, or it is stopped): a controller taking a site over compares it
// with its own before it registers (controller.startHostRouters).
func (r *DBRouters) Spec(ctx context.Context) ([]byte, error) {
	j, _, err := r.nc.Jobs().Info(r.job, (&nomad.QueryOptions{}).WithContext(ctx))
	if isStatus(err, http.StatusNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, r.cfg.Explain(fmt.Sprintf("read job %s", r.job), err)
	}
	if j.Stop != nil && *j.Stop {
		return nil, nil
	}
	for _, tg := range j.TaskGroups {
		for _, task := range tg.Tasks {
			if task.Name != DBRouterTask {
				continue
			}
			for _, tm := range task.Templates {
				if tm.DestPath != nil && *tm.DestPath == "local/"+dbRouterSpecName && tm.EmbeddedTmpl != nil {
					return []byte(*tm.EmbeddedTmpl), nil
				}
			}
		}
	}
	return nil, fmt.Errorf("nomadlaunch: job %s has no %s task with the router spec", r.job, DBRouterTask)
}

// Close stops the router job.
func (r *DBRouters) Close(ctx context.Context) error {
	if _, _, err := r.nc.Jobs().Deregister(r.job, false, (&nomad.WriteOptions{}).WithContext(ctx)); err != nil {
		return r.cfg.Explain(fmt.Sprintf("stop job %s", r.job), err)
	}
	return nil
}
