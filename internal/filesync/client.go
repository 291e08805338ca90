package filesync

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/token"
)

// Client speaks the files API; the Agent and the controller use it.
type Client struct {
	base  string
	token string
	hc    *http.Client
	// follow, when set, names the file whose first line is the base URL,
	// read before each request: the files role may move (a Nomad job
	// rescheduled on another host) and the file is rewritten where it goes.
	follow string
}

// NewFollowingClient is NewClient with the base URL read from the first
// line of file before each request (see AgentConfig.ServerFile).
func NewFollowingClient(file, tok string, hc *http.Client) *Client {
	c := NewClient("", tok, hc)
	c.follow = file
	return c
}

// ErrNoServer: the followed file names no files role (yet).
var ErrNoServer = errors.New("filesync: no files role address")

// baseURL is the files role's base URL now.
func (c *Client) baseURL() (string, error) {
	if c.follow == "" {
		return c.base, nil
	}
	b, err := os.ReadFile(c.follow)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoServer, err)
	}
	return FirstServer(string(b))
}

// FirstServer is the first line of a followed file that is an http:// or
// https:// URL with a host, without a trailing slash.
func FirstServer(s string) (string, error) {
	for line := range strings.Lines(s) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		u, err := url.Parse(line)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" && u.Path != "/" {
			return "", fmt.Errorf("%w: bad line %q", ErrNoServer, line)
		}
		return strings.TrimSuffix(line, "/"), nil
	}
	return "", fmt.Errorf("%w: the file is empty", ErrNoServer)
}

// NewClient returns a client of the files role at baseURL that sends
// tok, a files token (docs/adr/0009-trust-model.md), with every request. A
// nil hc gets a client with a connection pool sized for parallel transfers
// and no overall timeout (pass deadlines through ctx).
func NewClient(baseURL, tok string, hc *http.Client) *Client {
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 32
		hc = &http.Client{Transport: tr}
	}
	return &Client{base: strings.TrimSuffix(baseURL, "/"), token: tok, hc: hc}
}

// StatusError is an error response without a more specific meaning.
type StatusError struct {
	Code    int
	Message string
}

func (e *StatusError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Code, e.Message) }

// Temporary reports whether retrying may succeed (a 5xx).
func (e *StatusError) Temporary() bool { return e.Code >= 500 }

// ErrRoleMoved: a request to the files role was cut because the followed
// file (NewFollowingClient) names another role now. A lost host does not
// close its connections: without the cut, a push or a blob transfer begun
// just before the role's host was lost would wait out its whole deadline
// (RequestTimeout, 30 s) after the role answered elsewhere.
var ErrRoleMoved = errors.New("filesync: the files role moved")

// moveCheck is how often a following client's request in flight checks
// whether the files role moved (AgentConfig.ServerFile).
const moveCheck = 250 * time.Millisecond

// do sends a request; a body goes with its size and contentType. A
// following client's request, and the reading of its response body, are
// cut with ErrRoleMoved once the followed file names another role.
func (c *Client) do(ctx context.Context, method, path string, body io.Reader, size int64, contentType string) (*http.Response, error) {
	base, err := c.baseURL()
	if err != nil {
		return nil, err
	}
	stop := func() {}
	if c.follow != "" {
		ctx, stop = c.cutOnMove(ctx, base)
	}
	resp, err := c.send(ctx, method, base+path, body, size, contentType)
	if err != nil {
		if errors.Is(context.Cause(ctx), ErrRoleMoved) {
			err = fmt.Errorf("%w: %w", context.Cause(ctx), err)
		}
		stop()
		return nil, err
	}
	resp.Body = &stopOnClose{ReadCloser: resp.Body, ctx: ctx, stop: stop}
	return resp, nil
}

func (c *Client) send(ctx context.Context, method, url string, body io.Reader, size int64, contentType string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = size
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		token.SetBearer(req.Header, c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		return nil, decodeError(resp)
	}
	return resp, nil
}

// cutOnMove returns ctx cancelled with ErrRoleMoved as soon as the followed
// file names a role other than base (checked every moveCheck), and the
// function that ends the watch (the request is done).
func (c *Client) cutOnMove(ctx context.Context, base string) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		t := time.NewTicker(moveCheck)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if now, err := c.baseURL(); err == nil && now != base {
				cancel(fmt.Errorf("%w from %s to %s", ErrRoleMoved, base, now))
				return
			}
		}
	}()
	return ctx, func() { cancel(nil) }
}

// stopOnClose ends a request's move watch when its body is closed, and
// names the move when it cut the body short.
type stopOnClose struct {
	io.ReadCloser
	ctx  context.Context
	stop func()
}

func (b *stopOnClose) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && errors.Is(context.Cause(b.ctx), ErrRoleMoved) {
		err = fmt.Errorf("%w: %w", context.Cause(b.ctx), err)
	}
	return n, err
}

func (b *stopOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.stop()
	return err
}

func decodeError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body apiError
	if json.Unmarshal(data, &body) != nil || body.Error == "" {
		body.Error = strings.TrimSpace(string(data))
	}
	switch {
	case body.Rule != "":
		return &RejectError{Path: body.Path, Rule: body.Rule, Reason: body.Reason}
	case resp.StatusCode == http.StatusConflict:
		return fmt.Errorf("%s: %w", body.Error, ErrFuture)
	case resp.StatusCode == http.StatusNotFound && strings.Contains(body.Error, ErrBlobNotFound.Error()):
		return ErrBlobNotFound
	}
	return &StatusError{Code: resp.StatusCode, Message: body.Error}
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	resp, err := c.do(ctx, http.MethodGet, path, nil, 0, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// Manifest fetches the current manifest.
func (c *Client) Manifest(ctx context.Context) (Manifest, error) {
	return c.manifest(ctx, api.FilesPathManifest)
}

// ManifestAt fetches the manifest as of sequence number at.
func (c *Client) ManifestAt(ctx context.Context, at uint64) (Manifest, error) {
	return c.manifest(ctx, api.FilesPathManifest+"?"+api.ParamAt+"="+strconv.FormatUint(at, 10))
}

func (c *Client) manifest(ctx context.Context, path string) (Manifest, error) {
	var m Manifest
	if err := c.getJSON(ctx, path, &m); err != nil {
		return Manifest{}, fmt.Errorf("filesync: manifest: %w", err)
	}
	if err := m.check(); err != nil {
		return Manifest{}, fmt.Errorf("filesync: manifest: %w", err)
	}
	return m, nil
}

// PathSeq asks which sequence number a node must have applied to serve p as
// it is now.
func (c *Client) PathSeq(ctx context.Context, p string) (PathSeqResponse, error) {
	var r PathSeqResponse
	if err := c.getJSON(ctx, api.FilesPathSeq+"?"+api.ParamPath+"="+url.QueryEscape(p), &r); err != nil {
		return PathSeqResponse{}, fmt.Errorf("filesync: path seq: %w", err)
	}
	return r, nil
}

// HasBlob reports whether the server stores a blob.
func (c *Client) HasBlob(ctx context.Context, hash string) (bool, error) {
	resp, err := c.do(ctx, http.MethodHead, api.FilesPathBlobs+"/"+hash, nil, 0, "")
	if errors.Is(err, ErrBlobNotFound) {
		return false, nil
	}
	var se *StatusError
	if errors.As(err, &se) && se.Code == http.StatusNotFound {
		return false, nil // HEAD responses have no body to tell why
	}
	if err != nil {
		return false, fmt.Errorf("filesync: has blob: %w", err)
	}
	resp.Body.Close()
	return true, nil
}

// PutBlob uploads size bytes of body as blob hash.
func (c *Client) PutBlob(ctx context.Context, hash string, body io.Reader, size int64) error {
	if size == 0 {
		body = http.NoBody
	}
	resp, err := c.do(ctx, http.MethodPut, api.FilesPathBlobs+"/"+hash, body, size, "application/octet-stream")
	if err != nil {
		return fmt.Errorf("filesync: put blob: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return nil
}

// GetBlob downloads blob hash into w and checks its content against hash.
// On ErrHashMismatch w has received the bad content: write to a temporary
// file.
func (c *Client) GetBlob(ctx context.Context, hash string, w io.Writer) (int64, error) {
	resp, err := c.do(ctx, http.MethodGet, api.FilesPathBlobs+"/"+hash, nil, 0, "")
	if err != nil {
		return 0, fmt.Errorf("filesync: get blob: %w", err)
	}
	defer resp.Body.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), resp.Body)
	if err != nil {
		return n, fmt.Errorf("filesync: get blob: %w", err)
	}
	if hex.EncodeToString(h.Sum(nil)) != hash {
		return n, fmt.Errorf("filesync: get blob %s: %w", hash, ErrHashMismatch)
	}
	return n, nil
}

// Push commits changes whose blobs are uploaded.
func (c *Client) Push(ctx context.Context, req PushRequest) (PushResponse, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return PushResponse{}, fmt.Errorf("filesync: push: %w", err)
	}
	resp, err := c.do(ctx, http.MethodPost, api.FilesPathChanges, bytes.NewReader(data), int64(len(data)), "application/json")
	if err != nil {
		return PushResponse{}, fmt.Errorf("filesync: push: %w", err)
	}
	defer resp.Body.Close()
	var out PushResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return PushResponse{}, fmt.Errorf("filesync: push: %w", err)
	}
	if len(out.Results) != len(req.Changes) {
		return PushResponse{}, fmt.Errorf("filesync: push: %d results for %d changes", len(out.Results), len(req.Changes))
	}
	return out, nil
}

// ChangeStream reads a change stream; see Client.Stream.
type ChangeStream struct {
	body   io.ReadCloser
	br     *bufio.Reader
	head   uint64
	cancel context.CancelFunc
	timer  *time.Timer
	idle   time.Duration
}

// Stream opens GET /v1/stream?since=since. If nothing (no change, no
// heartbeat) arrives for idle, the stream is cut and Next fails. An
// ErrFuture error means the server's log ends before since: the node must
// bootstrap again.
func (c *Client) Stream(ctx context.Context, since uint64, idle time.Duration) (*ChangeStream, error) {
	ctx, cancel := context.WithCancel(ctx)
	resp, err := c.do(ctx, http.MethodGet, api.FilesPathStream+"?"+api.ParamSince+"="+strconv.FormatUint(since, 10), nil, 0, "")
	if err != nil {
		cancel()
		return nil, fmt.Errorf("filesync: stream: %w", err)
	}
	head, _ := strconv.ParseUint(resp.Header.Get(api.HeaderFilesSeq), 10, 64)
	s := &ChangeStream{body: resp.Body, br: bufio.NewReaderSize(resp.Body, 64<<10), head: head, cancel: cancel, idle: idle}
	s.timer = time.AfterFunc(idle, cancel)
	return s, nil
}

// Head is the last sequence number of the log when the stream opened.
func (s *ChangeStream) Head() uint64 { return s.head }

// Buffered reports whether more data has already arrived.
func (s *ChangeStream) Buffered() bool { return s.br.Buffered() > 0 }

// Next returns the next change.
func (s *ChangeStream) Next() (Change, error) {
	for {
		line, err := s.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return Change{}, errors.New("filesync: stream: line too long")
		}
		if err != nil {
			return Change{}, fmt.Errorf("filesync: stream: %w", err)
		}
		s.timer.Reset(s.idle)
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue // heartbeat
		}
		var c Change
		if err := json.Unmarshal(line, &c); err != nil {
			return Change{}, fmt.Errorf("filesync: stream: %w", err)
		}
		if err := c.check(true); err != nil {
			return Change{}, fmt.Errorf("filesync: stream: %w", err)
		}
		return c, nil
	}
}

// cut ends the stream from any goroutine: a Next waiting for data fails.
func (s *ChangeStream) cut() { s.cancel() }

// Close ends the stream.
func (s *ChangeStream) Close() error {
	s.timer.Stop()
	s.cancel()
	return s.body.Close()
}
