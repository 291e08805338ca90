package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/scalepress/scalepress/internal/api"
)

// progress prints `up`'s steps as they finish, one line each (what, how
// long), then one line with the site, the admin login and the dashboard.
type progress struct {
	w     io.Writer
	shown int
	// password says whether the final line shows the admin password
	// itself (a terminal) or the file it is in.
	password bool
}

// step prints one finished step.
func (p *progress) step(s api.StartupStep) {
	fmt.Fprintf(p.w, "  %-18s %s\n", s.Name, seconds(time.Duration(s.TookMS)*time.Millisecond))
	p.shown++
}

// steps prints those of all not printed yet (all grows as the steps finish).
func (p *progress) steps(all []api.StartupStep) {
	for _, s := range all[min(p.shown, len(all)):] {
		p.step(s)
	}
}

// ready prints the final line.
func (p *progress) ready(st *api.Status, took time.Duration) {
	login := ""
	if a := st.Admin; a != nil {
		login = fmt.Sprintf("  admin %s (password in %s)", a.User, a.PasswordFile)
		if pw, err := os.ReadFile(a.PasswordFile); err == nil && p.password {
			login = fmt.Sprintf("  admin %s / %s", a.User, strings.TrimSpace(string(pw)))
		}
	}
	fmt.Fprintf(p.w, "ready in %s: %s%s  dashboard %s\n", seconds(took), st.SiteURL, login, st.DashboardURL)
}

func seconds(d time.Duration) string {
	return fmt.Sprintf("%.1fs", d.Seconds())
}
