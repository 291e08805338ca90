package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/scalepress/scalepress/internal/token"
)

// maxAnswer bounds an answer the client reads.
const maxAnswer = 16 << 20

// Client talks JSON over HTTP to a role: the controller's control API, a
// node agent, the files role.
type Client struct {
	Base string // e.g. http://127.0.0.1:9090
	HTTP *http.Client
	// Token, when set, goes with every request as "Authorization: Bearer
	// TOKEN".
	Token string
}

// NewClient returns a client for the API at base.
func NewClient(base string) *Client {
	return &Client{Base: base, HTTP: &http.Client{Timeout: 10 * time.Second}}
}

// HTTPError is an answer outside 2xx. Body is its text, trimmed.
type HTTPError struct {
	Method, Path string
	Code         int
	Status       string
	Body         string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("api: %s %s: %s: %s", e.Method, e.Path, e.Status, e.Body)
}

// Get fetches path and decodes the JSON answer into v.
func (c *Client) Get(ctx context.Context, path string, v any) error {
	return c.do(ctx, http.MethodGet, path, nil, v)
}

// Post sends in as JSON (Content-Type: application/json) to path and
// decodes the JSON answer into out, unless out is nil.
func (c *Client) Post(ctx context.Context, path string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("api: POST %s: %w", path, err)
	}
	return c.do(ctx, http.MethodPost, path, b, out)
}

func (c *Client) do(ctx context.Context, method, path string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		token.SetBearer(req.Header, c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("api: %s %s: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &HTTPError{Method: method, Path: path, Code: resp.StatusCode, Status: resp.Status, Body: strings.TrimSpace(string(answer))}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(answer, out); err != nil {
		return fmt.Errorf("api: %s %s: %w", method, path, err)
	}
	return nil
}

// Status returns the environment's status document.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var st Status
	if err := c.Get(ctx, APIPathStatus, &st); err != nil {
		return nil, err
	}
	return &st, nil
}
