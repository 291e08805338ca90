package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Client talks to the controller's control API.
type Client struct {
	Base string // e.g. http://127.0.0.1:9090
	HTTP *http.Client
}

// NewClient returns a client for the API at base.
func NewClient(base string) *Client {
	return &Client{Base: base, HTTP: &http.Client{Timeout: 10 * time.Second}}
}

// Get fetches path and decodes the JSON answer into v.
func (c *Client) Get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Base+path, nil)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("api: GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("api: GET %s: %s: %s", path, resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("api: GET %s: %w", path, err)
	}
	return nil
}

// Status returns the environment's status document.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var st Status
	if err := c.Get(ctx, "/v1/status", &st); err != nil {
		return nil, err
	}
	return &st, nil
}
