package nomadlaunch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	nomad "github.com/hashicorp/nomad/api"
)

// Config says where Nomad is and what the node job runs.
type Config struct {
	// Address is Nomad's HTTP API ("http://127.0.0.1:4646").
	Address string
	// TokenFile holds the ACL token ("" = none: ACLs off). CAFile checks
	// Nomad's certificate; CertFile and KeyFile are the client certificate
	// when Nomad asks for one (verify_https_client).
	TokenFile, CAFile, CertFile, KeyFile string
	// Region, Namespace ("" = Nomad's default) and Datacenters of the job.
	Region, Namespace string
	Datacenters       []string
	// NodeMeta constrains placement to Nomad clients whose node meta has
	// each key with its value (e.g. scalepress_region: eu): the job gets
	// one constraint per key.
	NodeMeta map[string]string
	// Job is the job's id; its variable is nomad/jobs/Job.
	Job string
	// Command and Args are the task's program on every Nomad client: the
	// scalepress binary and `node-host --spec FILE`, where FILE is
	// SpecFile in the task's secrets directory.
	Command string
	Args    []string
	// FilesService, when set, is the Nomad service of the files role
	// (a role job): every node task gets its addresses rendered into
	// FollowFile, rendered again when the role moves.
	FilesService string
	// RedisService, likewise, is redis's Nomad service (a role job),
	// rendered into RedisFollowFile for node-host's redis forwarder.
	RedisService string
	// Env is added to the task's environment (no secrets: the job is
	// readable by whoever may read jobs).
	Env map[string]string
	// CPU (MHz) and MemoryMB reserved per node.
	CPU, MemoryMB int
	// KillTimeout is how long Nomad waits after SIGTERM before SIGKILL:
	// the node drains in-flight requests for up to 30 s.
	KillTimeout time.Duration
	// Poll bounds a blocking query of the job's allocations.
	Poll time.Duration
	// PlaceTimeout bounds a launch until its allocation runs (placement,
	// the template's render, the task's start).
	PlaceTimeout time.Duration
	// Fence, when set, is asked before every change the launcher makes to
	// the job (register, scale, reschedule, signal, stop): an error (this
	// controller no longer owns the site, or cannot tell) makes the change
	// fail unmade (ADR 27: a controller back from a cut must not act on
	// the nodes another one took over before it sees the take-over).
	Fence func(context.Context) error
	// Owner is the controller run that owns the job ("" = no owner: the
	// job is not fenced). It is written into the job (OwnerMeta), and every
	// write of the job is conditioned on the job modify index at which
	// this launcher last saw it with this owner (ADR 31).
	Owner string
	// TakenOver, when set, is told (once per refusal) that Nomad refused a
	// write of the job because another owner wrote it since: this
	// controller must stand down.
	TakenOver func(why string)
}

// SpecFile is where the template block renders the node spec, relative to
// the task directory (secrets/ is private to the task, mode 0600 here).
const SpecFile = "secrets/node-host.json"

// SpecItem is the item of the job's variable that holds the spec.
const SpecItem = "spec"

// DefaultConfig is a job named scalepress-nodes on a local Nomad agent.
func DefaultConfig() Config {
	return Config{
		Address: "http://127.0.0.1:4646", Job: "scalepress-nodes", Datacenters: []string{"*"},
		CPU: 500, MemoryMB: 512, KillTimeout: 45 * time.Second, Poll: 5 * time.Second, PlaceTimeout: 60 * time.Second,
	}
}

var jobName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$`)

// metaKey is a node meta key Nomad can interpolate as ${meta.KEY}.
var metaKey = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]{0,62}$`)

// Validate names the first field that is wrong.
func (c Config) Validate() error {
	switch {
	case !strings.HasPrefix(c.Address, "http://") && !strings.HasPrefix(c.Address, "https://"):
		return fmt.Errorf("nomadlaunch: Address: want http:// or https://, got %q", c.Address)
	case !jobName.MatchString(c.Job):
		return fmt.Errorf("nomadlaunch: Job: want letters, digits, - and _, got %q", c.Job)
	case c.Command == "":
		return errors.New("nomadlaunch: Command: required")
	case (c.CertFile == "") != (c.KeyFile == ""):
		return errors.New("nomadlaunch: CertFile and KeyFile: set both or neither")
	case len(c.Datacenters) == 0:
		return errors.New("nomadlaunch: Datacenters: required")
	case badMeta(c.NodeMeta) != "":
		return fmt.Errorf("nomadlaunch: NodeMeta: %s", badMeta(c.NodeMeta))
	case c.CPU <= 0 || c.MemoryMB <= 0:
		return fmt.Errorf("nomadlaunch: CPU and MemoryMB: must be positive, got %d and %d", c.CPU, c.MemoryMB)
	case c.KillTimeout <= 0 || c.Poll <= 0 || c.PlaceTimeout <= 0:
		return errors.New("nomadlaunch: KillTimeout, Poll and PlaceTimeout: must be positive")
	}
	return nil
}

// badMeta says what is wrong with a node meta constraint, "" if nothing.
func badMeta(m map[string]string) string {
	for k, v := range m {
		if !metaKey.MatchString(k) {
			return fmt.Sprintf("key %q: want letters, digits and _", k)
		}
		if v == "" {
			return fmt.Sprintf("key %q: empty value", k)
		}
	}
	return ""
}

// client is a Nomad API client for c, with its token and TLS files read.
func (c Config) client() (*nomad.Client, error) {
	nc := nomad.DefaultConfig()
	nc.Address, nc.Region, nc.Namespace = c.Address, c.Region, c.Namespace
	nc.SecretID = ""
	if c.TokenFile != "" {
		b, err := os.ReadFile(c.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("scheduler.token_file: %w", err)
		}
		nc.SecretID = strings.TrimSpace(string(b))
		if nc.SecretID == "" {
			return nil, fmt.Errorf("scheduler.token_file: %s is empty", c.TokenFile)
		}
	}
	nc.TLSConfig = &nomad.TLSConfig{CACert: c.CAFile, ClientCert: c.CertFile, ClientKey: c.KeyFile}
	cl, err := nomad.NewClient(nc)
	if err != nil {
		return nil, fmt.Errorf("scheduler.ca_file, cert_file or key_file: nomad client: %w", err)
	}
	return cl, nil
}
