package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/scalepress/scalepress/internal/api"
)

// apiClient is the control API of the environment in d.
func apiClient(d dirFlags) (*api.Client, error) {
	cfg, err := d.load()
	if err != nil {
		return nil, err
	}
	if controllerPID(d.layout()) == 0 {
		return nil, fmt.Errorf("no environment is running in %s (start it with `scalepress up --dir %s`)", d.layout().Dir, d.dir)
	}
	return api.NewClient("http://" + cfg.API.Addr), nil
}

// usageIfRefused turns an answer with one of codes (the request was wrong)
// into a usage error (exit 2) that says why; other errors stay as they are.
func usageIfRefused(err error, codes ...int) error {
	var he *api.HTTPError
	if errors.As(err, &he) && slices.Contains(codes, he.Code) {
		return errUsagef("%s", he.Body)
	}
	return err
}

func runScale(args []string) error {
	fs := newFlags("scale")
	var d dirFlags
	d.register(fs, true)
	minN := fs.Int("min", -1, "fewest nodes")
	maxN := fs.Int("max", -1, "most nodes")
	target := fs.Float64("target", -1, "utilisation to hold, in (0, 1]")
	window := fs.Duration("scale-in-window", -1, "how long load must ask for fewer nodes before scale-in (e.g. 30s)")
	if err := parse(fs, args); err != nil {
		return err
	}
	var req api.ScaleRequest
	if *minN >= 0 {
		req.Min = minN
	}
	if *maxN >= 0 {
		req.Max = maxN
	}
	if *target >= 0 {
		req.Target = target
	}
	if *window >= 0 {
		w := window.String()
		req.ScaleInWindow = &w
	}
	c, err := apiClient(d)
	if err != nil {
		return err
	}
	tok, err := operatorToken(d)
	if err != nil {
		return err
	}
	c.Token = tok
	var as api.Autoscaling
	if err := c.Post(context.Background(), api.APIPathScale, req, &as); err != nil {
		return usageIfRefused(err, http.StatusBadRequest)
	}
	fmt.Printf("min %d, max %d, target %.2f; desired now %d\n", as.Min, as.Max, as.Target, as.Desired)
	return nil
}

func runNodes(args []string) error {
	fs := newFlags("nodes")
	var d dirFlags
	d.register(fs, true)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	c, err := apiClient(d)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st.Nodes)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tADDR\tUTIL\tPIDS\tNOTE")
	for _, n := range st.Nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.2f\t%v\t%s\n", n.ID, n.State, n.Addr, n.Utilization, n.PIDs, n.Error)
	}
	tw.Flush()
	if a := st.Autoscaling; a != nil {
		fmt.Printf("autoscaling: min %d, max %d, desired %d, target %.2f, utilisation %.2f\n", a.Min, a.Max, a.Desired, a.Target, a.Utilization)
	}
	return nil
}

func runEvents(args []string) error {
	fs := newFlags("events")
	var d dirFlags
	d.register(fs, true)
	follow := fs.Bool("f", false, "follow: keep printing new events")
	asJSON := fs.Bool("json", false, "one JSON object per line")
	if err := parse(fs, args); err != nil {
		return err
	}
	c, err := apiClient(d)
	if err != nil {
		return err
	}
	c.HTTP.Timeout = 40 * time.Second
	ctx, cancel := signalContext()
	defer cancel()
	var since uint64
	for {
		wait := "0s"
		if *follow && since > 0 {
			wait = "30s" // long poll: returns as soon as there is a new event
		}
		var page api.Events
		if err := c.Get(ctx, fmt.Sprintf("%s?%s=%d&%s=%s", api.APIPathEvents, api.ParamSince, since, api.ParamWait, wait), &page); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		for _, e := range page.Events {
			if *asJSON {
				b, _ := json.Marshal(e)
				fmt.Println(string(b))
			} else {
				fmt.Printf("%s  %-7s %s\n", e.Time.Local().Format("15:04:05.000"), e.Kind, e.Message)
			}
		}
		if !*follow {
			return nil
		}
		if page.Next == 0 { // an empty log: wait for the first event
			time.Sleep(time.Second)
		}
		since = max(page.Next, since)
	}
}
