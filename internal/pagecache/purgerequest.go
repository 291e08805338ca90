package pagecache

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// Limits of a purge request.
const (
	// MaxPurgeBody is the largest purge request body; the edge reads at
	// most MaxPurgeBody+1 bytes (http.MaxBytesReader) and passes them on.
	MaxPurgeBody = 1 << 20
	MaxPurgeURLs = 1000
	MaxPurgeTags = 1000
	maxPurgeURL  = 8 << 10
)

// PurgeRequest is a parsed purge request:
//
//	POST /_scalepress/purge
//	{"urls": ["https://example.com/hello/?x=1"], "tags": ["post-12"], "all": false, "soft": true}
//
// Soft defaults to true. Authentication is the edge's job.
type PurgeRequest struct {
	URLs []string // absolute http(s) URLs with a host
	Tags []string // each matching ^[A-Za-z0-9_.:-]{1,128}$
	All  bool
	Soft bool
}

// ParsePurgeRequest validates a purge request. Its errors say what is
// wrong (`pagecache: purge request: tags[3]: "bad tag!" has characters
// outside [A-Za-z0-9_.:-]`) and match ErrPurgeMethod (answer 405),
// ErrPurgeTooLarge (413) or ErrPurgeInvalid (400).
func ParsePurgeRequest(method string, header http.Header, body []byte) (PurgeRequest, error) {
	if method != http.MethodPost {
		return PurgeRequest{}, &purgeError{ErrPurgeMethod, fmt.Sprintf("method %s: use POST", method)}
	}
	if len(body) > MaxPurgeBody {
		return PurgeRequest{}, &purgeError{ErrPurgeTooLarge, fmt.Sprintf("body: larger than %d bytes", MaxPurgeBody)}
	}
	if ct := header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return PurgeRequest{}, invalid("content-type %q: send application/json", ct)
		}
	}
	var raw struct {
		URLs []string `json:"urls"`
		Tags []string `json:"tags"`
		All  bool     `json:"all"`
		Soft *bool    `json:"soft"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return PurgeRequest{}, invalid(`body: empty; send {"urls": [...], "tags": [...]} or {"all": true}`)
		}
		return PurgeRequest{}, invalid("body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return PurgeRequest{}, invalid("body: data after the JSON object")
	}
	p := PurgeRequest{URLs: raw.URLs, Tags: raw.Tags, All: raw.All, Soft: raw.Soft == nil || *raw.Soft}
	switch {
	case len(p.URLs) > MaxPurgeURLs:
		return PurgeRequest{}, invalid("urls: %d given, at most %d per request", len(p.URLs), MaxPurgeURLs)
	case len(p.Tags) > MaxPurgeTags:
		return PurgeRequest{}, invalid("tags: %d given, at most %d per request", len(p.Tags), MaxPurgeTags)
	case !p.All && len(p.URLs) == 0 && len(p.Tags) == 0:
		return PurgeRequest{}, invalid(`nothing to purge: give "urls", "tags" or "all": true`)
	}
	for i, u := range p.URLs {
		if problem := urlProblem(u); problem != "" {
			return PurgeRequest{}, invalid("urls[%d]: %q %s", i, truncate(u), problem)
		}
	}
	for i, t := range p.Tags {
		if problem := tagProblem(t); problem != "" {
			return PurgeRequest{}, invalid("tags[%d]: %q %s", i, truncate(t), problem)
		}
	}
	return p, nil
}

func invalid(format string, args ...any) error {
	return &purgeError{ErrPurgeInvalid, fmt.Sprintf(format, args...)}
}

// urlProblem says what is wrong with a purge URL, or "".
func urlProblem(s string) string {
	if len(s) > maxPurgeURL {
		return fmt.Sprintf("is longer than %d characters", maxPurgeURL)
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "is not a URL"
	case u.Scheme != "http" && u.Scheme != "https":
		return "must be an absolute http:// or https:// URL"
	case u.Opaque != "":
		return "must be an absolute http:// or https:// URL"
	case u.Host == "" || strings.HasPrefix(u.Host, ":"):
		return "has no host"
	}
	return ""
}

// truncate keeps error messages short.
func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
