// Package s3store is a small client of S3-compatible object storage (AWS
// S3, MinIO, Ceph RGW, R2, versitygw): the operations the files role needs
// on one bucket under one key prefix, with SigV4 and path-style addressing,
// an optional CA file for HTTPS endpoints, payload hashes the server checks,
// and conditional creates (If-None-Match: *). It knows nothing of what the
// objects mean; internal/filesync keeps its blobs and change log through it.
// See docs/adr/0012-files-on-s3.md.
package s3store

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

var (
	// ErrNotFound means an object (or the bucket) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists means a conditional create found the object already there.
	ErrExists = errors.New("the object exists already")
	// ErrUnreachable, ErrNoBucket and ErrAccessDenied say why Check
	// failed: the endpoint, the bucket or the credentials.
	ErrUnreachable  = errors.New("endpoint unreachable")
	ErrNoBucket     = errors.New("no such bucket")
	ErrAccessDenied = errors.New("credentials refused")
	// ErrHashMismatch means the server refused an upload whose content does
	// not hash to the SHA-256 it was announced with; nothing was stored.
	ErrHashMismatch = errors.New("content does not match its SHA-256")
)

// Config names a bucket and how to reach it.
type Config struct {
	// Endpoint is the base URL of the S3 API, http:// or https://
	// (path-style: the bucket is the first path segment).
	Endpoint string
	// Bucket must exist; it is never created.
	Bucket string
	// Prefix is prepended to every key ("site1" keeps the objects under
	// site1/); "" is the bucket's root.
	Prefix string
	// Region is the SigV4 signing region.
	Region string
	// AccessKey and SecretKey are the SigV4 credentials.
	AccessKey, SecretKey string
	// CAPEM, when set, are the PEM certificates an https endpoint's
	// certificate must chain to, instead of the system's roots.
	CAPEM []byte
	// Timeout bounds one request that carries no body of unknown length
	// (HEAD, DELETE, a listing page, a small PUT); uploads and downloads of
	// blobs are bounded by their context.
	Timeout time.Duration
}

// DefaultConfig returns region us-east-1 and 10 s requests; Endpoint,
// Bucket and the keys have no default.
func DefaultConfig() Config {
	return Config{Region: "us-east-1", Timeout: 10 * time.Second}
}

// Validate reports every invalid field, each by name.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("s3store: config: %s: %s", field, fmt.Sprintf(format, args...)))
	}
	if u, err := url.Parse(c.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		bad("Endpoint", "must be an http:// or https:// URL without credentials, got %q", c.Endpoint)
	} else if len(c.CAPEM) > 0 && u.Scheme != "https" {
		bad("CAPEM", "is set but Endpoint %q is not https", c.Endpoint)
	}
	if !validBucket(c.Bucket) {
		bad("Bucket", "must be 3 to 63 lowercase letters, digits, '.' or '-', got %q", c.Bucket)
	}
	if p := strings.Trim(c.Prefix, "/"); strings.Contains(p, "//") || strings.Contains("/"+p+"/", "/../") || strings.Contains("/"+p+"/", "/./") {
		bad("Prefix", "must be a clean '/'-separated key prefix, got %q", c.Prefix)
	}
	if c.Region == "" {
		bad("Region", "must be set (the SigV4 signing region, us-east-1 for most S3-compatible servers)")
	}
	if c.AccessKey == "" {
		bad("AccessKey", "must be set")
	}
	if c.SecretKey == "" {
		bad("SecretKey", "must be set")
	}
	if len(c.CAPEM) > 0 && !x509.NewCertPool().AppendCertsFromPEM(c.CAPEM) {
		bad("CAPEM", "holds no PEM certificate")
	}
	if c.Timeout <= 0 {
		bad("Timeout", "must be positive, got %s", c.Timeout)
	}
	return errors.Join(errs...)
}

func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for _, r := range b {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-') {
			return false
		}
	}
	return true
}

// Client reaches one bucket under one prefix. It is safe for concurrent
// use.
type Client struct {
	cfg    Config
	prefix string // "" or ending in '/'
	s3     *s3.Client
	logger *slog.Logger
}

// New validates cfg and makes a client; it sends nothing (see Check).
func New(cfg Config, logger *slog.Logger) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // the endpoint is reached directly, never through $HTTPS_PROXY
	tr.MaxIdleConnsPerHost = 64
	tr.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	if len(cfg.CAPEM) > 0 {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(cfg.CAPEM)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	creds := aws.Credentials{AccessKeyID: cfg.AccessKey, SecretAccessKey: cfg.SecretKey, Source: "scalepress files.store"}
	client := s3.New(s3.Options{
		BaseEndpoint: aws.String(strings.TrimRight(cfg.Endpoint, "/")),
		Region:       cfg.Region,
		UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return creds, nil
		}),
		HTTPClient: &http.Client{Transport: tr},
		// Only the checksums S3 requires: the default CRC trailers need
		// aws-chunked uploads, which not every S3-compatible server takes;
		// content is checked by its SHA-256 instead (Put).
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		RetryMaxAttempts:           3,
	})
	prefix := strings.Trim(cfg.Prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &Client{cfg: cfg, prefix: prefix, s3: client, logger: logger}, nil
}

// Where names the bucket and prefix for messages: s3://bucket/prefix at
// endpoint.
func (c *Client) Where() string {
	return fmt.Sprintf("s3://%s/%s at %s", c.cfg.Bucket, c.prefix, c.cfg.Endpoint)
}

func (c *Client) key(name string) string { return c.prefix + name }

// Check makes sure the bucket is reachable and the credentials may list it,
// with an error that says which of endpoint, bucket or credentials is
// wrong. (A listing, not a HEAD: a HEAD's error has no body, and some
// servers answer an unknown key with 404 there.)
func (c *Client) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	_, err := c.s3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(c.cfg.Bucket), Prefix: aws.String(c.prefix), MaxKeys: aws.Int32(1)})
	if err == nil {
		return nil
	}
	switch st, cd := status(err), code(err); {
	case cd == "NoSuchBucket" || st == http.StatusNotFound && cd == "":
		return fmt.Errorf("s3store: bucket %q does not exist at %s: create it first (scalepress never creates buckets): %w", c.cfg.Bucket, c.cfg.Endpoint, ErrNoBucket)
	case cd == "InvalidAccessKeyId" || cd == "XAdminUserNotFound" || cd == "SignatureDoesNotMatch" || cd == "AccessDenied" || cd == "AuthorizationHeaderMalformed" ||
		st == http.StatusForbidden || st == http.StatusUnauthorized:
		return fmt.Errorf("s3store: bucket %q at %s refused the credentials (%s, HTTP %d): check the access and secret key files and the region (%s): %w", c.cfg.Bucket, c.cfg.Endpoint, cd, st, c.cfg.Region, ErrAccessDenied)
	case st == 0:
		return fmt.Errorf("s3store: endpoint %s is unreachable: %w (%w)", c.cfg.Endpoint, unwrapNet(err), ErrUnreachable)
	}
	return fmt.Errorf("s3store: check bucket %q at %s: %w", c.cfg.Bucket, c.cfg.Endpoint, err)
}

// CheckConditional finds out whether the server honours If-None-Match: *
// on PUT, by creating an object probe/<random> twice: the second create
// must fail. The object is removed afterwards.
func (c *Client) CheckConditional(ctx context.Context) error {
	body := []byte(time.Now().UTC().Format(time.RFC3339Nano))
	name := "probe/conditional-create-" + rand.Text()
	if err := c.Create(ctx, name, body); err != nil {
		return fmt.Errorf("s3store: conditional create probe: %w", err)
	}
	defer c.Delete(context.WithoutCancel(ctx), name)
	switch err := c.Create(ctx, name, body); {
	case errors.Is(err, ErrExists):
		return nil
	case err == nil:
		return fmt.Errorf("s3store: %s ignores If-None-Match: * on PUT (a second conditional create of %s succeeded); conditional writes are required so that two files roles cannot fork the change log: use a server that supports them (AWS S3, MinIO, Ceph RGW 18+, R2, versitygw 1.x)", c.cfg.Endpoint, c.key(name))
	default:
		return fmt.Errorf("s3store: conditional create probe: %w", err)
	}
}

// PutOptions qualify an upload.
type PutOptions struct {
	// SHA256 is the lowercase hex SHA-256 of the body. It is signed as the
	// payload hash (x-amz-content-sha256), so that the server stores
	// nothing whose content differs; "" computes it from a seekable body.
	SHA256 string
	// IfAbsent creates the object only if it does not exist (If-None-Match:
	// *); ErrExists otherwise.
	IfAbsent bool
}

// Put uploads size bytes of body as object name, durably when it returns
// nil. body need not be seekable when opts.SHA256 is given.
func (c *Client) Put(ctx context.Context, name string, body io.Reader, size int64, opts PutOptions) error {
	in := &s3.PutObjectInput{
		Bucket:        aws.String(c.cfg.Bucket),
		Key:           aws.String(c.key(name)),
		Body:          body,
		ContentLength: aws.Int64(size),
		ContentType:   aws.String("application/octet-stream"),
	}
	if opts.IfAbsent {
		in.IfNoneMatch = aws.String("*")
	}
	var optFns []func(*s3.Options)
	if opts.SHA256 != "" {
		hash := opts.SHA256
		optFns = append(optFns, func(o *s3.Options) {
			o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
				// Before the payload is hashed (which an unseekable body
				// could not be): the hash is known.
				return st.Finalize.Add(middleware.FinalizeMiddlewareFunc("scalepressPayloadHash",
					func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
						return next.HandleFinalize(v4.SetPayloadHash(ctx, hash), in)
					}), middleware.Before)
			})
			o.RetryMaxAttempts = 1 // the body cannot be read twice
		})
	}
	_, err := c.s3.PutObject(ctx, in, optFns...)
	if err == nil {
		return nil
	}
	switch {
	case status(err) == http.StatusPreconditionFailed || code(err) == "PreconditionFailed":
		return fmt.Errorf("s3store: put %s: %w", name, ErrExists)
	case code(err) == "XAmzContentSHA256Mismatch" || code(err) == "BadDigest":
		return fmt.Errorf("s3store: put %s: %w", name, ErrHashMismatch)
	}
	return fmt.Errorf("s3store: put %s: %w", name, c.explain(err))
}

// Create uploads small data as a new object: ErrExists if name is there.
func (c *Client) Create(ctx context.Context, name string, data []byte) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	return c.Put(ctx, name, strings.NewReader(string(data)), int64(len(data)), PutOptions{IfAbsent: true})
}

// Replace uploads small data as object name, replacing it if present.
func (c *Client) Replace(ctx context.Context, name string, data []byte) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	return c.Put(ctx, name, strings.NewReader(string(data)), int64(len(data)), PutOptions{})
}

// Get reads object name from byte off on; ErrNotFound if it is missing.
// The caller closes the body.
func (c *Client) Get(ctx context.Context, name string, off int64) (io.ReadCloser, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(c.cfg.Bucket), Key: aws.String(c.key(name))}
	if off > 0 {
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", off))
	}
	out, err := c.s3.GetObject(ctx, in)
	if err != nil {
		if status(err) == http.StatusNotFound {
			return nil, fmt.Errorf("s3store: get %s: %w", name, ErrNotFound)
		}
		return nil, fmt.Errorf("s3store: get %s: %w", name, c.explain(err))
	}
	return out.Body, nil
}

// ReadAll reads a small object whole.
func (c *Client) ReadAll(ctx context.Context, name string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	rc, err := c.Get(ctx, name, 0)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("s3store: get %s: %w", name, err)
	}
	return b, nil
}

// Open starts reading an object whole and returns its size with the body
// (one GET, where Head and Get take two); ErrNotFound if it is missing.
func (c *Client) Open(ctx context.Context, name string) (io.ReadCloser, int64, error) {
	out, err := c.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(c.cfg.Bucket), Key: aws.String(c.key(name))})
	if err != nil {
		if status(err) == http.StatusNotFound {
			return nil, 0, fmt.Errorf("s3store: get %s: %w", name, ErrNotFound)
		}
		return nil, 0, fmt.Errorf("s3store: get %s: %w", name, c.explain(err))
	}
	if out.ContentLength == nil {
		out.Body.Close()
		return nil, 0, fmt.Errorf("s3store: get %s: the answer has no Content-Length", name)
	}
	return out.Body, *out.ContentLength, nil
}

// Info describes a stored object; Name is relative to the prefix.
type Info struct {
	Name    string
	Size    int64
	ModTime time.Time
}

// Head returns an object's size and time; ErrNotFound if it is missing.
func (c *Client) Head(ctx context.Context, name string) (Info, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	out, err := c.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(c.cfg.Bucket), Key: aws.String(c.key(name))})
	if err != nil {
		if status(err) == http.StatusNotFound {
			return Info{}, fmt.Errorf("s3store: head %s: %w", name, ErrNotFound)
		}
		return Info{}, fmt.Errorf("s3store: head %s: %w", name, c.explain(err))
	}
	return Info{Name: name, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified)}, nil
}

// List calls fn for every object whose name starts with prefix (and sorts
// after startAfter, when given), in key order, until fn returns an error.
func (c *Client) List(ctx context.Context, prefix, startAfter string, fn func(Info) error) error {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(c.cfg.Bucket), Prefix: aws.String(c.key(prefix))}
	if startAfter != "" {
		in.StartAfter = aws.String(c.key(startAfter))
	}
	for {
		lctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
		out, err := c.s3.ListObjectsV2(lctx, in)
		cancel()
		if err != nil {
			return fmt.Errorf("s3store: list %s: %w", prefix, c.explain(err))
		}
		for _, o := range out.Contents {
			name, ok := strings.CutPrefix(aws.ToString(o.Key), c.prefix)
			if !ok {
				continue
			}
			if err := fn(Info{Name: name, Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified)}); err != nil {
				return err
			}
		}
		if !aws.ToBool(out.IsTruncated) || out.NextContinuationToken == nil {
			return nil
		}
		in.ContinuationToken = out.NextContinuationToken
		in.StartAfter = nil
	}
}

// Delete removes an object; a missing one is not an error.
func (c *Client) Delete(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	_, err := c.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(c.cfg.Bucket), Key: aws.String(c.key(name))})
	if err != nil && status(err) != http.StatusNotFound {
		return fmt.Errorf("s3store: delete %s: %w", name, c.explain(err))
	}
	return nil
}

// explain turns transport failures into "endpoint unreachable" and access
// failures into a hint about the credentials.
func (c *Client) explain(err error) error {
	switch s := status(err); {
	case s == 0 && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("endpoint %s is unreachable: %w", c.cfg.Endpoint, unwrapNet(err))
	case s == http.StatusForbidden:
		return fmt.Errorf("access to bucket %q denied (check the credentials): %w", c.cfg.Bucket, err)
	}
	return err
}

// status is the HTTP status of an S3 error, 0 when there was no response.
func status(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		return re.Response.StatusCode
	}
	return 0
}

// code is the S3 error code ("NoSuchKey", "PreconditionFailed"), or "".
func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	var nk *types.NoSuchKey
	if errors.As(err, &nk) {
		return "NoSuchKey"
	}
	return ""
}

// unwrapNet returns the innermost network error of err (dial, TLS), which
// says more than the SDK's retry wrapping.
func unwrapNet(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue
	}
	return err
}

// ReadSecretFile reads a credential from path: its first line, trimmed. It
// refuses a file that other users may read or write (mode & 0o077), since
// the key would then be theirs too.
func ReadSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("%s is readable or writable by other users (mode %04o): chmod 600 %s", path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 4<<10))
	if err != nil {
		return "", err
	}
	s, _, _ := strings.Cut(string(b), "\n")
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}
