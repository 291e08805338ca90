package nomadlaunch

import (
	"fmt"
	"maps"
	"slices"
	"time"

	nomad "github.com/hashicorp/nomad/api"
)

// Group and Task name the job's task group and its one task; PortLabel its
// dynamic port, on which the node agent serves.
const (
	Group     = "node"
	Task      = "node-host"
	PortLabel = "http"
	// SpreadAttribute is what nodes spread over: the Nomad client (host).
	SpreadAttribute = "${node.unique.id}"
)

// OwnerMeta is the node service's meta key naming the controller run that
// owns the job (Config.Owner).
const OwnerMeta = "scalepress_owner"

// ownerOf is j's owner as its node service's meta says, "" when none.
func ownerOf(j *nomad.Job) string {
	for _, tg := range j.TaskGroups {
		if tg.Name == nil || *tg.Name != Group {
			continue
		}
		for _, s := range tg.Services {
			if s != nil && s.Name == *j.ID {
				return s.Meta[OwnerMeta]
			}
		}
	}
	return ""
}

// neverReschedule is the reschedule delay: Nomad never replaces a failed
// allocation by itself before the group orders it (force reschedule), yet
// rescheduling is "enabled", which a forced reschedule needs.
const neverReschedule = 365 * 24 * time.Hour

// VariablePath is the job's variable: its tasks may read it through their
// workload identity, nothing else of the cluster needs to.
func VariablePath(job string) string { return "nomad/jobs/" + job }

// specTemplate renders the spec item of the job's variable.
func specTemplate(job string) string {
	return fmt.Sprintf(`{{ with nomadVar %q }}{{ .%s }}{{ end }}`, VariablePath(job), SpecItem)
}

// Job is the node job with count nodes.
func Job(c Config, count int) *nomad.Job {
	job := nomad.NewServiceJob(c.Job, c.Job, c.Region, 50)
	job.Datacenters = c.Datacenters
	if c.Namespace != "" {
		job.Namespace = &c.Namespace
	}
	tg := nomad.NewTaskGroup(Group, count)
	// Nodes spread evenly over the clients that may run them, so losing
	// one host loses as few nodes as it can; the spread is a preference,
	// not a limit: more nodes than hosts still place.
	tg.Spreads = []*nomad.Spread{{Attribute: SpreadAttribute, Weight: ptr(int8(100))}}
	for _, k := range slices.Sorted(maps.Keys(c.NodeMeta)) {
		tg.Constraints = append(tg.Constraints, nomad.NewConstraint("${meta."+k+"}", "=", c.NodeMeta[k]))
	}
	// No deployments: a scale request is never refused because one is
	// under way, and the group warms and publishes its nodes itself.
	tg.Update = &nomad.UpdateStrategy{MaxParallel: ptr(0)}
	// The task is never restarted in place by Nomad (node-host restarts
	// php-fpm itself, as the local launcher does): a task that exits
	// fails its allocation, and the group replaces it.
	tg.RestartPolicy = &nomad.RestartPolicy{Attempts: ptr(0), Mode: ptr("fail"), Interval: ptr(time.Minute), Delay: ptr(time.Second)}
	tg.ReschedulePolicy = &nomad.ReschedulePolicy{
		Unlimited: ptr(true), Delay: ptr(neverReschedule), DelayFunction: ptr("constant"),
		Attempts: ptr(0), Interval: ptr(time.Duration(0)), MaxDelay: ptr(neverReschedule),
	}
	tg.EphemeralDisk = &nomad.EphemeralDisk{SizeMB: ptr(300)}
	tg.Networks = []*nomad.NetworkResource{{DynamicPorts: []nomad.Port{{Label: PortLabel}}}}
	tg.Services = []*nomad.Service{{
		Name: c.Job, PortLabel: PortLabel, Provider: "nomad",
		Tags: []string{"scalepress", "node"},
	}}
	if c.Owner != "" {
		// The owner is part of the job's spec, so that a new owner's first
		// register changes the job (a new job modify index, on which the
		// last owner's writes are conditioned: ADR 31). Service meta, not
		// job or group meta: those reach the task's environment, and a
		// change would restart every node; a service's is updated in place.
		tg.Services[0].Meta = map[string]string{OwnerMeta: c.Owner}
	}
	env := map[string]string{}
	for k, v := range c.Env {
		env[k] = v
	}
	task := nomad.NewTask(Task, "raw_exec")
	task.Config = map[string]any{"command": c.Command, "args": c.Args}
	task.Env = env
	task.KillTimeout = ptr(c.KillTimeout)
	task.KillSignal = "SIGTERM"
	task.Resources = &nomad.Resources{CPU: ptr(c.CPU), MemoryMB: ptr(c.MemoryMB)}
	task.Templates = []*nomad.Template{{
		EmbeddedTmpl: ptr(specTemplate(c.Job)),
		DestPath:     ptr(SpecFile),
		Perms:        ptr("0600"),
		// A new spec (keys rotated) reaches new nodes; running ones keep
		// theirs until they are replaced.
		ChangeMode:    ptr("noop"),
		ErrMissingKey: ptr(true),
	}}
	if c.FilesService != "" {
		// The files role's address, wherever Nomad runs it: node-host
		// hands it to the filesync agent, which reads it before each
		// request; a move is rendered again in place (noop).
		task.Templates = append(task.Templates, &nomad.Template{
			EmbeddedTmpl: ptr(ServiceTemplate(c.FilesService)), DestPath: ptr(FollowFile),
			Perms: ptr("0644"), ChangeMode: ptr("noop"),
		})
	}
	if c.RedisService != "" {
		task.Templates = append(task.Templates, &nomad.Template{
			EmbeddedTmpl: ptr(ServiceTemplate(c.RedisService)), DestPath: ptr(RedisFollowFile),
			Perms: ptr("0644"), ChangeMode: ptr("noop"),
		})
	}
	tg.AddTask(task)
	job.AddTaskGroup(tg)
	return job
}

func ptr[T any](v T) *T { return &v }
