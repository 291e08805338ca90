package balancer

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// HTTPChecker checks a node with a GET of Path; a 200 is healthy.
type HTTPChecker struct {
	// Client makes the request; its Timeout should not be shorter than
	// HealthTimeout, which bounds every check through the context.
	Client *http.Client
	// Path is requested on the node, e.g. "/_scalepress/health".
	Path string
}

// Check implements Checker.
func (c *HTTPChecker) Check(ctx context.Context, addr string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+c.Path, nil)
	if err != nil {
		return fmt.Errorf("balancer: check %s: %w", addr, err)
	}
	client := c.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("balancer: check %s: %w", addr, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // keep the connection reusable
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("balancer: check %s: status %d", addr, resp.StatusCode)
	}
	return nil
}
