package nomadlaunch

// Roles other than the nodes as Nomad service jobs (docs/adr/0025-roles-on-nomad.md):
// one job per role, its secrets in the job's variable (rendered into the
// task's secrets/ as for the node job), registered as a Nomad service of the
// job's name, placed by node meta and replaced by Nomad when its host is lost
// or its task keeps failing. Nothing of the node group's slot logic applies:
// Nomad alone restarts and reschedules a role.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	nomad "github.com/hashicorp/nomad/api"
)

// RoleGroup and RoleSpecFile name a role job's task group and where its
// spec is rendered (relative to the task directory).
const (
	RoleGroup    = "role"
	RoleSpecFile = "secrets/role.json"
)

// RoleJob is one role run by Nomad.
type RoleJob struct {
	// Job is the job's id, its service's name and its variable's
	// (nomad/jobs/Job).
	Job string
	// Role is the task's name (files, redis, dns, edge-1).
	Role string
	// Count of allocations; each runs on its own host (distinct_hosts).
	Count int
	// NodeMeta constrains placement as Config.NodeMeta does for nodes.
	NodeMeta map[string]string
	// Command and Args run the role; ${NOMAD_SECRETS_DIR}/role.json is
	// its spec, ${NOMAD_IP_http}:${NOMAD_PORT_http} its address.
	Command string
	Args    []string
	// Env is added to the task's environment (no secrets: the job is
	// readable by whoever may read jobs).
	Env map[string]string
	// Port is a static port on the host (0: dynamic). DNS needs one
	// (resolvers ask on 53), and an edge (visitors come to it there); the
	// others use a dynamic port found through the service registration.
	Port int
	// HostIP, when set, pins the job to the client with that address
	// (attr.unique.network.ip-address): an edge's address is published by
	// dns, so it runs where that address is ("" = any eligible client).
	HostIP string
	// HTTPSPort, when set, is a second static port reserved on the host
	// (an edge's tls.https_addr), labelled "https".
	HTTPSPort int
	// Files are more items of the job's variable rendered into the task's
	// secrets/ (0600): an edge's certificates and keys. The job names the
	// items, never holds their contents.
	Files []SecretFile
	// CPU (MHz) and MemoryMB reserved.
	CPU, MemoryMB int
	// KillTimeout after SIGTERM before SIGKILL.
	KillTimeout time.Duration
}

// Validate names the first field that is wrong.
func (r RoleJob) Validate() error {
	switch {
	case !jobName.MatchString(r.Job):
		return fmt.Errorf("nomadlaunch: RoleJob.Job: want letters, digits, - and _, got %q", r.Job)
	case !jobName.MatchString(r.Role):
		return fmt.Errorf("nomadlaunch: RoleJob.Role: want letters, digits, - and _, got %q", r.Role)
	case r.Count < 1:
		return fmt.Errorf("nomadlaunch: RoleJob.Count: must be at least 1, got %d", r.Count)
	case r.Command == "":
		return errors.New("nomadlaunch: RoleJob.Command: required")
	case badMeta(r.NodeMeta) != "":
		return fmt.Errorf("nomadlaunch: RoleJob.NodeMeta: %s", badMeta(r.NodeMeta))
	case r.HostIP != "" && !validIP(r.HostIP):
		return fmt.Errorf("nomadlaunch: RoleJob.HostIP: want an IP address, got %q", r.HostIP)
	case r.Port < 0 || r.Port > 65535:
		return fmt.Errorf("nomadlaunch: RoleJob.Port: want 0 to 65535, got %d", r.Port)
	case r.HTTPSPort < 0 || r.HTTPSPort > 65535 || r.HTTPSPort > 0 && r.HTTPSPort == r.Port:
		return fmt.Errorf("nomadlaunch: RoleJob.HTTPSPort: want 0 to 65535, not Port, got %d", r.HTTPSPort)
	case badFiles(r.Files) != "":
		return fmt.Errorf("nomadlaunch: RoleJob.Files: %s", badFiles(r.Files))
	case r.CPU <= 0 || r.MemoryMB <= 0:
		return fmt.Errorf("nomadlaunch: RoleJob.CPU and MemoryMB: must be positive, got %d and %d", r.CPU, r.MemoryMB)
	case r.KillTimeout <= 0:
		return errors.New("nomadlaunch: RoleJob.KillTimeout: must be positive")
	}
	return nil
}

// SecretFile is an item of a role job's variable rendered to a file of the
// task's secrets/ directory.
type SecretFile struct {
	// Item is the variable's item: letters, digits and _ (a template
	// field name), not SpecItem.
	Item string
	// Name is the file's name in secrets/ (no directory).
	Name string
}

// SecretsDir is where a role's spec and its SecretFiles are rendered,
// relative to the task directory.
const SecretsDir = "secrets"

// HTTPSPortLabel labels RoleJob.HTTPSPort.
const HTTPSPortLabel = "https"

// MaxVariableBytes is what a role job's variable may hold, its items'
// keys and values together: Nomad refuses more than 64 KiB; the rest is
// headroom for the spec growing.
const MaxVariableBytes = 60 << 10

var (
	itemName   = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,62}$`)
	secretName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
)

// badFiles names what is wrong in fs ("" when nothing is).
func badFiles(fs []SecretFile) string {
	seen := map[string]bool{}
	for _, f := range fs {
		switch {
		case !itemName.MatchString(f.Item) || f.Item == SpecItem:
			return fmt.Sprintf("item %q: want a letter then letters, digits or _, not %q", f.Item, SpecItem)
		case !secretName.MatchString(f.Name) || f.Name == filepath.Base(RoleSpecFile):
			return fmt.Sprintf("name %q: want a file name of letters, digits, ., - and _, not role.json", f.Name)
		case seen[f.Item] || seen["file:"+f.Name]:
			return fmt.Sprintf("item %q or name %q twice", f.Item, f.Name)
		}
		seen[f.Item], seen["file:"+f.Name] = true, true
	}
	return ""
}

// HostIPAttr is the client attribute RoleJob.HostIP is matched against:
// the address of the client's network_interface.
const HostIPAttr = "${attr.unique.network.ip-address}"

func validIP(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Zone() == ""
}

// roleTemplate renders the spec item of the role job's variable.
func roleTemplate(job string) string {
	return fmt.Sprintf(`{{ with nomadVar %q }}{{ .%s }}{{ end }}`, VariablePath(job), SpecItem)
}

// ServiceTemplate renders the addresses of service as base URLs, one a
// line (http://IP:PORT), for a task that follows a role wherever Nomad
// places it: the template is rendered again when the registrations change.
func ServiceTemplate(service string) string {
	return fmt.Sprintf(`{{ range nomadService %q }}http://{{ .Address }}:{{ .Port }}
{{ end }}`, service)
}

// FollowFile is where a node task finds the files role's address (a file
// rendered from ServiceTemplate, relative to the task directory).
const FollowFile = "local/files-server"

// RedisFollowFile is where a node task finds redis's address.
const RedisFollowFile = "local/redis-server"

// BuildRoleJob is the Nomad job of r in the datacenters, region and
// namespace of c.
func BuildRoleJob(c Config, r RoleJob) *nomad.Job {
	job := nomad.NewServiceJob(r.Job, r.Job, c.Region, 60)
	job.Datacenters = c.Datacenters
	if c.Namespace != "" {
		job.Namespace = &c.Namespace
	}
	tg := nomad.NewTaskGroup(RoleGroup, r.Count)
	tg.Constraints = append(tg.Constraints, &nomad.Constraint{Operand: "distinct_hosts", RTarget: "true"})
	for _, k := range slices.Sorted(maps.Keys(r.NodeMeta)) {
		tg.Constraints = append(tg.Constraints, nomad.NewConstraint("${meta."+k+"}", "=", r.NodeMeta[k]))
	}
	if r.HostIP != "" {
		tg.Constraints = append(tg.Constraints, nomad.NewConstraint(HostIPAttr, "=", r.HostIP))
	}
	// No deployments: a registration replaces the allocations at once.
	tg.Update = &nomad.UpdateStrategy{MaxParallel: ptr(0)}
	// Restarted in place a few times, then rescheduled elsewhere, without
	// end: a role is never given up.
	tg.RestartPolicy = &nomad.RestartPolicy{Attempts: ptr(3), Mode: ptr("fail"), Interval: ptr(time.Minute), Delay: ptr(time.Second)}
	tg.ReschedulePolicy = &nomad.ReschedulePolicy{
		Unlimited: ptr(true), Delay: ptr(5 * time.Second), DelayFunction: ptr("exponential"), MaxDelay: ptr(30 * time.Second),
		Attempts: ptr(0), Interval: ptr(time.Duration(0)),
	}
	tg.EphemeralDisk = &nomad.EphemeralDisk{SizeMB: ptr(300)}
	port := nomad.Port{Label: PortLabel}
	if r.Port > 0 {
		port.Value = r.Port
		tg.Networks = []*nomad.NetworkResource{{ReservedPorts: []nomad.Port{port}}}
	} else {
		tg.Networks = []*nomad.NetworkResource{{DynamicPorts: []nomad.Port{port}}}
	}
	if r.HTTPSPort > 0 {
		tg.Networks[0].ReservedPorts = append(tg.Networks[0].ReservedPorts, nomad.Port{Label: HTTPSPortLabel, Value: r.HTTPSPort})
	}
	tg.Services = []*nomad.Service{{Name: r.Job, PortLabel: PortLabel, Provider: "nomad", Tags: []string{"scalepress", r.Role}}}
	task := nomad.NewTask(r.Role, "raw_exec")
	task.Config = map[string]any{"command": r.Command, "args": r.Args}
	task.Env = maps.Clone(r.Env)
	task.KillTimeout = ptr(r.KillTimeout)
	task.KillSignal = "SIGTERM"
	task.Resources = &nomad.Resources{CPU: ptr(r.CPU), MemoryMB: ptr(r.MemoryMB)}
	task.Templates = []*nomad.Template{{
		EmbeddedTmpl: ptr(roleTemplate(r.Job)), DestPath: ptr(RoleSpecFile), Perms: ptr("0600"),
		// A new spec reaches the next allocation; the running one keeps its.
		ChangeMode: ptr("noop"), ErrMissingKey: ptr(true),
	}}
	for _, f := range r.Files {
		task.Templates = append(task.Templates, &nomad.Template{
			EmbeddedTmpl: ptr(fmt.Sprintf(`{{ with nomadVar %q }}{{ .%s }}{{ end }}`, VariablePath(r.Job), f.Item)),
			DestPath:     ptr(SecretsDir + "/" + f.Name), Perms: ptr("0600"),
			// Rendered again in place when the variable changes; the
			// role reads the file again itself (an edge checks its
			// certificate files every 2 s): no signal, no restart.
			// Rendered again, the file keeps its owner (consul-template
			// preserves it): an edge that dropped root chowned it first.
			ChangeMode: ptr("noop"), ErrMissingKey: ptr(true),
		})
	}
	tg.AddTask(task)
	job.AddTaskGroup(tg)
	return job
}

// ServiceAddr is one registration of a role's service.
type ServiceAddr struct {
	Addr  string // IP:port
	Node  string // the Nomad client's id
	Alloc string
	// Index orders registrations: the newest allocation's is the highest.
	Index uint64
}

// Roles submits, follows and stops role jobs.
type Roles struct {
	cfg    Config
	nc     *nomad.Client
	logger *slog.Logger
}

// NewRoles returns a client for role jobs on the Nomad of cfg (its Job,
// Command and Args are not used).
func NewRoles(cfg Config, logger *slog.Logger) (*Roles, error) {
	if cfg.Command == "" {
		cfg.Command = "-" // not used by role jobs
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	nc, err := cfg.client()
	if err != nil {
		return nil, err
	}
	return &Roles{cfg: cfg, nc: nc, logger: logger}, nil
}

// Submit writes spec into r's variable and registers its job (a job of the
// same name is updated: Nomad replaces its allocations when the job
// changed). files are the items of r.Files, by item.
func (s *Roles) Submit(ctx context.Context, r RoleJob, spec []byte, files map[string]string) error {
	if err := r.Validate(); err != nil {
		return err
	}
	if err := s.WriteItems(ctx, r, spec, files); err != nil {
		return err
	}
	w := (&nomad.WriteOptions{}).WithContext(ctx)
	if _, _, err := s.nc.Jobs().Register(BuildRoleJob(s.cfg, r), w); err != nil {
		return s.cfg.Explain(fmt.Sprintf("register job %s", r.Job), err)
	}
	return nil
}

// RoleItems is r's variable: spec and files, one item per r.Files, each
// required and none other.
func RoleItems(r RoleJob, spec []byte, files map[string]string) (nomad.VariableItems, error) {
	items := nomad.VariableItems{SpecItem: string(spec)}
	for _, f := range r.Files {
		v, ok := files[f.Item]
		if !ok || v == "" {
			return nil, fmt.Errorf("nomadlaunch: %s: item %s: empty", r.Job, f.Item)
		}
		items[f.Item] = v
	}
	if len(items) != len(files)+1 {
		return nil, fmt.Errorf("nomadlaunch: %s: %d items given for %d files", r.Job, len(files), len(r.Files))
	}
	n := 0
	for k, v := range items {
		n += len(k) + len(v)
	}
	if n > MaxVariableBytes {
		return nil, fmt.Errorf("nomadlaunch: %s: the variable would hold %d bytes, more than %d", r.Job, n, MaxVariableBytes)
	}
	return items, nil
}

// WriteItems writes r's variable only (a renewed certificate): a running
// allocation renders the files again in place.
func (s *Roles) WriteItems(ctx context.Context, r RoleJob, spec []byte, files map[string]string) error {
	items, err := RoleItems(r, spec, files)
	if err != nil {
		return err
	}
	w := (&nomad.WriteOptions{}).WithContext(ctx)
	v := &nomad.Variable{Path: VariablePath(r.Job), Namespace: s.cfg.Namespace, Items: items}
	if _, _, err := s.nc.Variables().Create(v, w); err != nil {
		return s.cfg.Explain(fmt.Sprintf("write variable %s", v.Path), err)
	}
	return nil
}

// Stop deregisters job (its tasks get SIGTERM) and deletes its variable.
func (s *Roles) Stop(ctx context.Context, job string) error {
	w := (&nomad.WriteOptions{}).WithContext(ctx)
	_, _, err := s.nc.Jobs().Deregister(job, false, w)
	if err != nil {
		err = s.cfg.Explain(fmt.Sprintf("stop job %s", job), err)
	}
	if _, verr := s.nc.Variables().Delete(VariablePath(job), w); verr != nil && err == nil {
		err = s.cfg.Explain(fmt.Sprintf("delete variable %s", VariablePath(job)), verr)
	}
	return err
}

// Addrs lists the registrations of service, newest first, with the index
// to wait on for a change (a blocking query when wait > 0 and index > 0).
func (s *Roles) Addrs(ctx context.Context, service string, index uint64, wait time.Duration) ([]ServiceAddr, uint64, error) {
	q := (&nomad.QueryOptions{WaitIndex: index, WaitTime: wait}).WithContext(ctx)
	regs, meta, err := s.nc.Services().Get(service, q)
	if err != nil {
		return nil, index, s.cfg.Explain(fmt.Sprintf("service %s", service), err)
	}
	return newestFirst(regs), meta.LastIndex, nil
}

// newestFirst is the registrations as ServiceAddrs, the newest first.
func newestFirst(regs []*nomad.ServiceRegistration) []ServiceAddr {
	out := make([]ServiceAddr, 0, len(regs))
	for _, r := range regs {
		out = append(out, ServiceAddr{Addr: fmt.Sprintf("%s:%d", r.Address, r.Port), Node: r.NodeID, Alloc: r.AllocID, Index: r.CreateIndex})
	}
	slices.SortFunc(out, func(a, b ServiceAddr) int {
		if a.Index != b.Index {
			if a.Index > b.Index {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Addr, b.Addr)
	})
	return out
}

// NodeName is the name of the Nomad client id ("" when unknown).
func (s *Roles) NodeName(ctx context.Context, id string) string {
	n, _, err := s.nc.Nodes().Info(id, (&nomad.QueryOptions{}).WithContext(ctx))
	if err != nil || n == nil {
		return ""
	}
	return n.Name
}
