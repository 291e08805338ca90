// Package forward signs and checks the forwarded headers an edge sends to a
// node (docs/adr/0009-trust-model.md, "Edge → node"). A node believes
// X-Forwarded-For, -Proto and -Host only from a request whose
// api.HeaderEdge signature checks under the environment's forward key and
// is at most MaxSkew old: never because of the address it came from, since
// every local process has 127.0.0.1.
//
// The signature is "EDGE-ID UNIX-TIME MAC", MAC = base64url(HMAC-SHA256
// under the forward key of the edge id, the time, the method, Host, the
// request URI, X-Forwarded-For, -Proto and -Host, each length-prefixed so
// that no two requests share a message).
package forward

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/token"
)

// MaxSkew is how far a signature's time may be from the verifier's clock.
const MaxSkew = 60 * time.Second

// The headers a signature covers.
const (
	HeaderFor   = "X-Forwarded-For"
	HeaderProto = "X-Forwarded-Proto"
	HeaderHost  = "X-Forwarded-Host"
)

// Errors of Verify.
var (
	ErrMissing = errors.New("forward: no edge signature")
	ErrInvalid = errors.New("forward: edge signature does not check")
	ErrExpired = errors.New("forward: edge signature too old or from the future")
)

const macLen = 43 // base64.RawURLEncoding of sha256.Size bytes

// macer keeps keyed HMAC instances: keying one costs two SHA-256 blocks and
// allocations that every request would otherwise pay.
type macer struct{ pool sync.Pool }

func newMacer(k token.Key) *macer {
	m := &macer{}
	m.pool.New = func() any { return &state{h: k.NewHMAC()} }
	return m
}

type state struct {
	h   hash.Hash
	buf []byte
	sum [sha256.Size]byte
}

// mac computes the MAC of the request fields into st.sum.
func (st *state) mac(id string, unix int64, method, host, uri string, h http.Header) {
	b := st.buf[:0]
	b = append(b, "scalepress-forward-v1"...)
	b = binary.AppendUvarint(b, uint64(len(id)))
	b = append(b, id...)
	// The time's decimal digits, length-prefixed, without a string.
	var num [20]byte
	digits := strconv.AppendInt(num[:0], unix, 10)
	b = binary.AppendUvarint(b, uint64(len(digits)))
	b = append(b, digits...)
	for _, s := range [...]string{method, host, uri,
		first(h, HeaderFor), first(h, HeaderProto), first(h, HeaderHost)} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	st.buf = b
	st.h.Reset()
	st.h.Write(b)
	st.h.Sum(st.sum[:0])
}

// first is the header's only value; a repeated header counts as a forgery
// attempt and signs (and checks) as the joined values, which no edge sends.
func first(h http.Header, k string) string {
	vv := h[k]
	switch len(vv) {
	case 0:
		return ""
	case 1:
		return vv[0]
	}
	return strings.Join(vv, "\x00")
}

// Signer signs requests as one edge.
type Signer struct {
	id string
	m  *macer
}

// NewSigner returns the signer of edge id under the forward key k.
func NewSigner(id string, k token.Key) (*Signer, error) {
	if err := token.ValidID(id); err != nil {
		return nil, fmt.Errorf("forward: %w", err)
	}
	if k.IsZero() {
		return nil, errors.New("forward: no forward key")
	}
	return &Signer{id: id, m: newMacer(k)}, nil
}

// Sign sets api.HeaderEdge on h for a request with method, host and
// request URI (as sent on the wire), covering h's forwarded headers as they
// are now: set those first.
func (s *Signer) Sign(h http.Header, method, host, uri string, now time.Time) {
	st := s.m.pool.Get().(*state)
	unix := now.Unix()
	st.mac(s.id, unix, method, host, uri, h)
	// One allocation for the value and its slice: the builder's bytes
	// become the string without a copy.
	var v strings.Builder
	v.Grow(len(s.id) + 1 + 20 + 1 + macLen)
	v.WriteString(s.id)
	v.WriteByte(' ')
	var num [20]byte
	v.Write(strconv.AppendInt(num[:0], unix, 10))
	v.WriteByte(' ')
	var enc [macLen]byte
	base64.RawURLEncoding.Encode(enc[:], st.sum[:])
	v.Write(enc[:])
	s.m.pool.Put(st)
	vals := [1]string{v.String()}
	h[api.HeaderEdge] = vals[:]
}

// Verifier checks signatures made with the forward key.
type Verifier struct{ m *macer }

// NewVerifier returns a verifier for the forward key k.
func NewVerifier(k token.Key) (*Verifier, error) {
	if k.IsZero() {
		return nil, errors.New("forward: no forward key")
	}
	return &Verifier{m: newMacer(k)}, nil
}

// Verify returns the id of the edge that signed a request with method,
// host and request URI and the headers h, or an error saying why its
// forwarded headers must not be believed.
func (v *Verifier) Verify(h http.Header, method, host, uri string, now time.Time) (string, error) {
	vv := h[api.HeaderEdge]
	if len(vv) == 0 {
		return "", ErrMissing
	}
	if len(vv) > 1 {
		return "", ErrInvalid
	}
	id, rest, ok1 := strings.Cut(vv[0], " ")
	ts, sum, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || len(sum) != macLen || token.ValidID(id) != nil {
		return "", ErrInvalid
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "", ErrInvalid
	}
	var got [sha256.Size + 2]byte
	n, err := base64.RawURLEncoding.Decode(got[:], []byte(sum))
	if err != nil || n != sha256.Size {
		return "", ErrInvalid
	}
	st := v.m.pool.Get().(*state)
	st.mac(id, unix, method, host, uri, h)
	good := hmac.Equal(got[:n], st.sum[:])
	v.m.pool.Put(st)
	if !good {
		return "", ErrInvalid
	}
	if d := now.Sub(time.Unix(unix, 0)); d > MaxSkew || d < -MaxSkew {
		return "", ErrExpired
	}
	return id, nil
}
