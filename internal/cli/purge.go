package cli

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/scalepress/scalepress/internal/api"
)

// runPurge asks the controller to purge on every edge; it returns once every
// edge applied it (exit 0), or says which edges it is still being retried on.
func runPurge(args []string) error {
	fs := newFlags("purge")
	var d dirFlags
	d.register(fs, true)
	var tags multiFlag
	fs.Var(&tags, "tag", "purge every page with this cache tag (repeatable), e.g. post-12, home")
	all := fs.Bool("all", false, "purge everything")
	hard := fs.Bool("hard", false, "remove entries instead of marking them stale (the next request waits for a node)")
	// Flags may follow the URL: parse what comes before and after it.
	var urls []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		if fs.NArg() == 0 {
			break
		}
		urls = append(urls, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	n := 0
	if len(urls) > 0 {
		n++
	}
	if len(tags) > 0 {
		n++
	}
	if *all {
		n++
	}
	if n != 1 {
		return errUsagef("give exactly one of: URL..., --tag TAG, --all")
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
	req := api.PurgeRequest{URLs: urls, Tags: tags, All: *all, Soft: !*hard}
	var res api.PurgeResult
	if err := c.Post(context.Background(), api.APIPathPurge, req, &res); err != nil {
		return usageIfRefused(err, http.StatusBadRequest, http.StatusRequestEntityTooLarge)
	}
	fmt.Printf("purged %d entries on %d edges %v\n", res.Purged, len(res.Applied), res.Applied)
	if len(res.Pending) > 0 {
		return fmt.Errorf("not yet applied on %v; the controller keeps retrying", res.Pending)
	}
	return nil
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
