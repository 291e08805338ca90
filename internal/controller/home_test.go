package controller

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scalepress/scalepress/internal/config"
	"github.com/scalepress/scalepress/internal/nomadlaunch"
	"github.com/scalepress/scalepress/internal/statedir"
	"github.com/scalepress/scalepress/internal/token"
	"github.com/scalepress/scalepress/test/tools"
)

// TestCannotCarry: a new directory takes a site over from Nomad only when
// nothing of it lived in the old directory alone.
func TestCannotCarry(t *testing.T) {
	hosts := []config.DBHost{{ID: "db1", Addr: "10.0.0.11", Agent: "10.0.0.11:7480", Dir: "/srv/db"}}
	tests := []struct {
		name  string
		edit  func(c *config.Config)
		carry bool
	}{
		{"db members local", func(c *config.Config) {}, false},
		{"db on hosts, files off", func(c *config.Config) { c.DB.Hosts, c.Files.Enabled = hosts, false }, true},
		{"db on hosts, files on s3", func(c *config.Config) {
			c.DB.Hosts, c.Files.Enabled, c.Files.Store.Kind = hosts, true, "s3"
		}, true},
		{"db on hosts, files local", func(c *config.Config) {
			c.DB.Hosts, c.Files.Enabled, c.Files.Store.Kind = hosts, true, "local"
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			tt.edit(&c)
			if why := cannotCarry(c); (why == "") != tt.carry {
				t.Errorf("cannotCarry = %q, want carried %v", why, tt.carry)
			}
		})
	}
}

// nomadServer starts a Nomad v1.6.3 server alone (no client: nothing runs
// tasks) on 127.0.0.1 ports of its own and returns its HTTP address once
// it has a leader.
func nomadServer(t *testing.T) string {
	t.Helper()
	bin := tools.Path(t, "nomad")
	dir := t.TempDir()
	var ports []int
	for range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
		ln.Close()
	}
	conf := fmt.Sprintf(`data_dir = %q
bind_addr = "127.0.0.1"
disable_update_check = true
ports {
  http = %d
  rpc  = %d
  serf = %d
}
advertise {
  http = "127.0.0.1"
  rpc  = "127.0.0.1"
  serf = "127.0.0.1"
}
server {
  enabled          = true
  bootstrap_expect = 1
}
consul { address = "127.0.0.1:1" }
`, filepath.Join(dir, "data"), ports[0], ports[1], ports[2])
	if err := os.WriteFile(filepath.Join(dir, "agent.hcl"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "agent", "-config", filepath.Join(dir, "agent.hcl"))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "agent.log"))
			t.Logf("nomad log (tail):\n%s", b[max(0, len(b)-3000):])
		}
	})
	addr := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		resp, err := http.Get(addr + "/v1/status/leader")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && len(b) > 4 {
				return addr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("nomad server has no leader after 30 s: %v", err)
		}
	}
}

// homeController is a controller over the Nomad at addr, its state
// directory dir, with db.hosts (a site a new directory may take over) or
// not; only what its home needs is set up.
func homeController(t *testing.T, addr, dir string, dbHosts bool) *Controller {
	t.Helper()
	cfg := config.Default()
	cfg.Scheduler.Kind, cfg.Scheduler.Address, cfg.Scheduler.Job = config.SchedulerNomad, addr, "sp-home"
	if dbHosts {
		cfg.DB.Hosts = []config.DBHost{{ID: "db1", Addr: "10.0.0.11", Agent: "10.0.0.11:7480", Dir: "/srv/db"}}
		cfg.Files.Enabled, cfg.Files.Store.Kind = true, "s3"
	}
	c, err := New(cfg, dir, "test", slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestHomeAgent: a controller's state reaches Nomad; an empty directory is
// filled from it (same secrets, same state) and a directory with state is
// left alone; the take-over is refused when the database lived in the old
// directory; and the controller taken over stands down.
func TestHomeAgent(t *testing.T) {
	addr := nomadServer(t)
	ctx := t.Context()

	// The first controller: its secrets and state, saved.
	a := homeController(t, addr, t.TempDir(), true)
	var err error
	if a.secrets, err = statedir.LoadSecrets(a.layout); err != nil {
		t.Fatal(err)
	}
	if err := statedir.WriteState(a.layout.StateFile(), statedir.State{CreatedAt: "2026-12-07T10:00:00Z", Installed: true}); err != nil {
		t.Fatal(err)
	}
	if from, err := a.restoreHome(ctx); err != nil || from != "" {
		t.Fatalf("restore into a directory with state: %q, %v; want nothing done", from, err)
	}
	if err := a.saveHome(ctx); err != nil {
		t.Fatal(err)
	}
	watched := make(chan struct{})
	go func() { a.watchHome(ctx); close(watched) }()

	// With its database in the old directory, a new one refuses and writes nothing.
	refused := homeController(t, addr, t.TempDir(), false)
	if _, err := refused.restoreHome(ctx); err == nil || !strings.Contains(err.Error(), "db.hosts is empty") {
		t.Errorf("restore with a local database: %v, want a refusal naming db.hosts", err)
	}
	if !statedir.Empty(refused.layout) {
		t.Error("the refused restore wrote into its directory")
	}

	// Another directory takes the site over.
	b := homeController(t, addr, filepath.Join(t.TempDir(), "b"), true)
	from, err := b.restoreHome(ctx)
	if err != nil || !strings.Contains(from, a.layout.Dir) {
		t.Fatalf("restore: %q, %v; want it from %s", from, err, a.layout.Dir)
	}
	if b.secrets, err = statedir.LoadSecrets(b.layout); err != nil {
		t.Fatal(err)
	}
	if a.secrets.Key(token.Control).Hex() != b.secrets.Key(token.Control).Hex() || a.secrets.DBPassword != b.secrets.DBPassword {
		t.Error("the restored secrets are not the first controller's")
	}
	if st, err := statedir.ReadState(b.layout.StateFile()); err != nil || !st.Installed || st.CreatedAt != "2026-12-07T10:00:00Z" {
		t.Errorf("restored state %+v, %v", st, err)
	}
	select {
	case <-watched:
		t.Fatal("the first controller stood down before anyone took over")
	default:
	}
	if err := b.saveHome(ctx); err != nil {
		t.Fatal(err)
	}
	// The db-agents hold each controller to its owner epoch: the one
	// that took over has the higher (ADR 31).
	if ea, eb := a.ownerEpoch(), b.ownerEpoch(); ea == 0 || eb <= ea {
		t.Errorf("owner epochs: %d then %d after the take-over, want the second above the first", ea, eb)
	}
	select {
	case why := <-a.home.taken:
		if !strings.Contains(why, b.layout.Dir) {
			t.Errorf("stood down because %q, want it to name %s", why, b.layout.Dir)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the first controller did not stand down within 10 s of the take-over")
	}
	<-watched
	if !a.home.fenced.Load() {
		t.Error("stood down but not fenced: its stop would stop what runs on Nomad")
	}
	// The new owner's writes go on; the old one's conflict and change nothing.
	b.saveHomeLater(ctx)
	if b.home.fenced.Load() {
		t.Error("the new owner stood down after its own write")
	}

	// A controller back from a cut may act on the node job before its
	// watch sees the take-over: the launcher's fence asks Nomad first.
	if err := b.fenceNomad(ctx); err != nil {
		t.Errorf("the owner's fence: %v, want it open", err)
	}
	stale := homeController(t, addr, t.TempDir(), true)
	if err := stale.fenceNomad(ctx); !errors.Is(err, nomadlaunch.ErrTakenOver) || !strings.Contains(err.Error(), b.layout.Dir) {
		t.Errorf("a stale controller's fence: %v, want ErrTakenOver naming %s", err, b.layout.Dir)
	}
	if !stale.home.fenced.Load() {
		t.Error("the stale controller's fence closed but it did not stand down")
	}
	select {
	case <-stale.home.taken:
	default:
		t.Error("the stale controller's fence closed but its run was not told to stand down")
	}
}
