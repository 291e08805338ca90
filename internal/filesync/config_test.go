package filesync

import (
	"strings"
	"testing"
	"time"

	"github.com/scalepress/scalepress/internal/token"
)

func TestConfigValidate(t *testing.T) {
	valid := func() Config { c := DefaultConfig(); c.Dir, c.Key = "/var/lib/files", testKey; return c }
	tests := []struct {
		name   string
		modify func(*Config)
		field  string // "" means valid
	}{
		{"defaults with a dir", func(*Config) {}, ""},
		{"addr", func(c *Config) { c.Addr = "" }, "Addr"},
		{"dir", func(c *Config) { c.Dir = "" }, "Dir"},
		{"exclude pattern", func(c *Config) { c.Rules.Exclude = []string{"ok", "["} }, "Rules.Exclude[1]"},
		{"max file size", func(c *Config) { c.Rules.MaxFileSize = 0 }, "Rules.MaxFileSize"},
		{"max depth", func(c *Config) { c.Rules.MaxDepth = 1000 }, "Rules.MaxDepth"},
		{"max request size", func(c *Config) { c.MaxRequestSize = 1 }, "MaxRequestSize"},
		{"max changes", func(c *Config) { c.MaxChanges = 0 }, "MaxChanges"},
		{"snapshot every", func(c *Config) { c.SnapshotEvery = 0 }, "SnapshotEvery"},
		{"keep snapshots", func(c *Config) { c.KeepSnapshots = 0 }, "KeepSnapshots"},
		{"segment size", func(c *Config) { c.SegmentSize = 10 }, "SegmentSize"},
		{"heartbeat", func(c *Config) { c.Heartbeat = 0 }, "Heartbeat"},
		{"shutdown timeout", func(c *Config) { c.ShutdownTimeout = -time.Second }, "ShutdownTimeout"},
		{"no key", func(c *Config) { c.Key = token.Key{} }, "Key"},
		{"no quota", func(c *Config) { c.QuotaBytes = 0 }, ""},
		{"negative quota", func(c *Config) { c.QuotaBytes = -1 }, "QuotaBytes"},
		{"quota below a file", func(c *Config) { c.QuotaBytes = c.Rules.MaxFileSize - 1 }, "QuotaBytes"},
		{"gc off", func(c *Config) { c.GCInterval = 0 }, ""},
		{"negative gc interval", func(c *Config) { c.GCInterval = -time.Second }, "GCInterval"},
		{"gc grace", func(c *Config) { c.GCGrace = 0 }, "GCGrace"},
		{"read header timeout", func(c *Config) { c.ReadHeaderTimeout = 0 }, "ReadHeaderTimeout"},
		{"idle timeout", func(c *Config) { c.IdleTimeout = 0 }, "IdleTimeout"},
		{"body rate", func(c *Config) { c.MinBodyRate = 10 }, "MinBodyRate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid()
			tt.modify(&cfg)
			checkValidate(t, cfg.Validate(), "filesync: config: ", tt.field)
		})
	}
}

func TestAgentConfigValidate(t *testing.T) {
	valid := func() AgentConfig {
		c := DefaultAgentConfig()
		c.Server, c.NodeID, c.Docroot, c.StateDir = "http://127.0.4.1:8080", "node-1", "/srv/node-1/docroot", "/srv/node-1/state"
		c.Token = testToken("node-1")
		return c
	}
	tests := []struct {
		name   string
		modify func(*AgentConfig)
		field  string
	}{
		{"valid", func(*AgentConfig) {}, ""},
		{"no debounce", func(c *AgentConfig) { c.Debounce = 0 }, ""},
		{"server", func(c *AgentConfig) { c.Server = "127.0.4.1:8080" }, "Server"},
		{"node id empty", func(c *AgentConfig) { c.NodeID = "" }, "NodeID"},
		{"node id chars", func(c *AgentConfig) { c.NodeID = "node 1" }, "NodeID"},
		{"docroot", func(c *AgentConfig) { c.Docroot = "" }, "Docroot"},
		{"state dir", func(c *AgentConfig) { c.StateDir = "" }, "StateDir"},
		{"state dir inside docroot", func(c *AgentConfig) { c.StateDir = "/srv/node-1/docroot/.state" }, "StateDir"},
		{"debounce", func(c *AgentConfig) { c.Debounce = -1 }, "Debounce"},
		{"retry min", func(c *AgentConfig) { c.RetryMin = 0 }, "RetryMin"},
		{"retry max", func(c *AgentConfig) { c.RetryMax = time.Millisecond }, "RetryMax"},
		{"request timeout", func(c *AgentConfig) { c.RequestTimeout = 0 }, "RequestTimeout"},
		{"stream timeout", func(c *AgentConfig) { c.StreamTimeout = 0 }, "StreamTimeout"},
		{"push batch", func(c *AgentConfig) { c.PushBatch = 0 }, "PushBatch"},
		{"uploaders", func(c *AgentConfig) { c.Uploaders = 0 }, "Uploaders"},
		{"rules", func(c *AgentConfig) { c.Rules.MaxDepth = 0 }, "Rules.MaxDepth"},
		{"no token", func(c *AgentConfig) { c.Token = "" }, "Token"},
		{"another node's token", func(c *AgentConfig) { c.Token = testToken("node-2") }, "Token"},
		{"quarantine after", func(c *AgentConfig) { c.QuarantineAfter = 0 }, "QuarantineAfter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid()
			tt.modify(&cfg)
			checkValidate(t, cfg.Validate(), "filesync: agent config: ", tt.field)
		})
	}
}

func checkValidate(t *testing.T, err error, prefix, field string) {
	t.Helper()
	switch {
	case field == "" && err != nil:
		t.Fatalf("Validate() = %v, want nil", err)
	case field != "" && err == nil:
		t.Fatalf("Validate() = nil, want an error naming %s", field)
	case field != "" && !strings.Contains(err.Error(), prefix+field+": "):
		t.Fatalf("Validate() = %q, want it to name %s", err, field)
	}
}
