package cli

import (
	"context"
	"fmt"
	"net/http"

	"github.com/scalepress/scalepress/internal/api"
)

// runScale changes the autoscaling policy of the running environment.
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
