package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/scalepress/scalepress/internal/api"
)

func runStatus(args []string) error {
	fs := newFlags("status")
	var d dirFlags
	d.register(fs, true)
	asJSON := fs.Bool("json", false, "print the status document (docs/contract.md)")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := d.load()
	if err != nil {
		return err
	}
	l := d.layout()
	if controllerPID(l) == 0 {
		return fmt.Errorf("no environment is running in %s (start it with `scalepress up --dir %s`)", l.Dir, d.dir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := api.NewClient("http://" + cfg.API.Addr).Status(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	printStatus(st)
	return nil
}

func printStatus(st *api.Status) {
	ready := "starting"
	if st.Ready {
		ready = "ready"
	}
	fmt.Printf("site     %s (%s)\n", st.SiteURL, ready)
	if st.Admin != nil {
		pw, err := os.ReadFile(st.Admin.PasswordFile)
		p := strings.TrimSpace(string(pw))
		if err != nil {
			p = "(unreadable: " + err.Error() + ")"
		}
		fmt.Printf("admin    %s / %s   (%s)\n", st.Admin.User, p, st.Admin.PasswordFile)
	}
	fmt.Printf("api      %s   controller pid %d\n", st.APIURL, st.Controller.PID)
	for _, e := range st.Edges {
		fmt.Printf("edge     %-8s %-16s %-21s healthy=%-5v pid %d\n", e.ID, e.Region, e.Addr, e.Healthy, e.PID)
	}
	for _, n := range st.Nodes {
		fmt.Printf("node     %-8s %-16s %-21s util=%.2f pids %v\n", n.ID, n.State, n.Addr, n.Utilization, n.PIDs)
	}
	if st.DB != nil {
		fmt.Printf("db       router %s, database %s, writer %s\n", st.DB.Router, st.DB.Name, st.DB.Writer)
		for _, m := range st.DB.Members {
			host := ""
			if m.Host != "" {
				host = " on " + m.Host // a db.hosts member: its pid is on that host
			}
			fmt.Printf("         %-8s %-16s %-21s pid %d%s\n", m.ID, m.State, m.Addr, m.PID, host)
		}
	}
	if st.Redis != nil {
		fmt.Printf("redis    %-25s %-21s pid %d\n", st.Redis.State, st.Redis.Addr, st.Redis.PID)
	}
	if st.DNS != nil {
		fmt.Printf("dns      %-25s %-21s pid %d\n", st.DNS.Zone, st.DNS.Addr, st.DNS.PID)
	}
}
