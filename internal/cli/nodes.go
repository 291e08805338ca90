package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"
)

// runNodes lists the node group: state, address, utilisation, processes.
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
