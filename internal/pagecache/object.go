package pagecache

import (
	"hash/maphash"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// hfield is one pre-rendered header: its values are assigned into the
// client's header map as they are, without copying. They are shared by
// every response served from the object, so they have cap == len (an
// append copies) and nothing may write into them.
type hfield struct {
	name string
	vals []string
}

// rep is one stored representation of an object: the identity body, or a
// body the cache compressed (gzip, br, zstd).
type rep struct {
	coding coding // codingIdentity for the body as the origin sent it
	body   []byte
	// hdr holds Content-Length, Content-Encoding, ETag and Vary: the fields
	// that differ by representation.
	hdr []hfield
	// hdr304 is the subset of hdr sent with 304 (ETag, Vary).
	hdr304 []hfield
	// block is the object's and this rep's fields (hdr) rendered as header
	// lines, for a HeaderBlockWriter; nil when it cannot stand for them
	// (no Content-Type: net/http would sniff one).
	block    []byte
	needDate bool // the origin sent no Date: the writer adds one
}

// object is one stored response. Its fields are immutable once stored,
// except the atomics and those guarded by the shard's mutex.
type object struct {
	urlKey  string
	variant string
	hash    uint64 // of urlKey and variant, for the ghost queue
	spec    *varySpec
	seq     uint64 // store order, for PurgeAll(soft)
	tags    []string
	size    int64

	status int
	static bool
	header http.Header // stored origin header, for revalidation merges
	hdr    []hfield    // pre-rendered fields common to every rep
	hdr304 []hfield    // the subset of hdr sent with 304
	id     rep
	enc    []rep // the bodies the cache compressed, smaller than id's

	etag        string // identity ETag as the origin sent it
	lastMod     string
	lastModUnix int64 // valid when lastMod != ""

	noCache       bool
	mayServeStale bool
	initialAge    int64 // seconds
	storedAt      int64 // unix nanoseconds, like the following
	freshUntil    int64
	swrUntil      int64
	sieUntil      int64
	keepUntil     int64

	purgedAt atomic.Int64 // soft purge time, 0 if none
	// failedAt is when a fetch to replace o last failed and o stood in
	// (STALE), 0 if none did: until a fetch succeeds (and replaces o), o
	// is served STALE at once while one background refresh tries again.
	failedAt atomic.Int64
	freq     atomic.Int32 // S3-FIFO access count, capped at 3
	age      atomic.Pointer[ageValue]

	// Guarded by the shard's mutex.
	ue         *urlEntry
	prev, next *object
	queue      uint8
}

// ageValue caches the rendered Age of an object for one second.
type ageValue struct {
	secs int64
	v    [1]string
	line []byte // "Age: N\r\n"
}

// ageHeader returns the Age value at now. An object's age changes once a
// second, so this allocates at most once a second per object.
func (o *object) ageHeader(now int64) []string {
	secs := o.initialAge + max(0, now-o.storedAt)/int64(time.Second)
	if a := o.age.Load(); a != nil && a.secs == secs {
		return a.v[:]
	}
	a := &ageValue{secs: secs}
	a.v[0] = strconv.FormatInt(secs, 10)
	a.line = []byte("Age: " + a.v[0] + "\r\n")
	o.age.Store(a)
	return a.v[:]
}

// ageLine returns the Age header line at now, as ageHeader.
func (o *object) ageLine(now int64) []byte {
	o.ageHeader(now)
	return o.age.Load().line
}

// conditional returns the validators a revalidation sends.
func (o *object) conditional() Conditional {
	if o == nil {
		return Conditional{}
	}
	return Conditional{ETag: o.etag, LastModified: o.lastMod}
}

func (o *object) touch() {
	if o.freq.Load() < 3 {
		o.freq.Add(1)
	}
}

// objState is where an object stands at a given time.
type objState uint8

const (
	stGone       objState = iota // past keepUntil: reclaimable, never served
	stStale                      // needs a fetch; may stand in on error
	stRevalidate                 // served while one background refresh runs
	stFresh                      // served
)

func (c *Cache) state(o *object, now int64) objState {
	if now >= o.keepUntil {
		return stGone
	}
	purged := o.purgedAt.Load()
	if sa := c.softAll.Load(); sa != nil && o.seq <= sa.seq && (purged == 0 || sa.at < purged) {
		purged = sa.at
	}
	switch {
	case purged != 0:
		if o.mayServeStale && now < purged+int64(c.cfg.SoftPurgeGrace) {
			return stRevalidate
		}
		return stStale
	case now < o.freshUntil:
		return stFresh
	case now < o.swrUntil:
		return stRevalidate
	}
	return stStale
}

// canStandIn reports whether o may be served when the origin fails.
func (o *object) canStandIn(now int64) bool { return o != nil && now < o.sieUntil }

// standingIn reports whether o stands in for a failing origin: the last
// fetch to replace it failed, and it may still be served for that.
func (o *object) standingIn(now int64) bool { return o.failedAt.Load() != 0 && o.canStandIn(now) }

// Stored header fields handled apart from the common pre-rendered ones.
const (
	hContentLength   = "Content-Length"
	hContentEncoding = "Content-Encoding"
	hETag            = "Etag"
	hVary            = "Vary"
	hLastModified    = "Last-Modified"
)

// in304 are the common fields repeated in a 304 (RFC 9110 §15.4.5).
var in304 = [...]string{"Cache-Control", "Content-Location", "Date", "Expires", hLastModified}

// storedHeader copies the origin header without what is never stored nor
// served from the cache: hop-by-hop fields, Content-Length (rendered per
// representation), Age (computed per response), Set-Cookie, X-Cache, and
// the tag header.
func (c *Cache) storedHeader(origin http.Header) http.Header {
	h := make(http.Header, len(origin))
	for k, v := range origin {
		k = http.CanonicalHeaderKey(k)
		if len(v) == 0 || isHopByHop(origin, k) {
			continue
		}
		switch k {
		case hContentLength, "Age", "Set-Cookie", HeaderXCache, c.tagHeader:
			continue
		}
		h[k] = slices.Clip(append(h[k], v...))
	}
	return h
}

// newObject builds an object from a stored header and body. enc are the
// compressed bodies of a revalidated object, reused as they are, or nil to
// compress here.
func (c *Cache) newObject(in *fillInput, status int, h http.Header, tags []string, body []byte, enc []rep, p plan, now time.Time) *object {
	o := &object{
		urlKey:        in.d.key,
		status:        status,
		static:        in.d.static,
		header:        h,
		tags:          tags,
		noCache:       p.noCache,
		mayServeStale: p.mayServeStale,
		initialAge:    int64(p.initialAge / time.Second),
	}
	ce := contentEncoding(h)
	if enc == nil && ce == "" && !p.noTransform && len(body) >= minCompress && bodyAllowed(status) && compressible(first(h["Content-Type"])) {
		enc = compressAll(body)
	}

	names, _ := parseVary(h[hVary])
	specNames := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == "Accept-Encoding" })
	o.spec = &varySpec{names: slices.Clip(specNames), ae: ce != ""}
	if (len(enc) > 0 || ce != "") && !slices.Contains(names, "Accept-Encoding") {
		names = append(names, "Accept-Encoding")
		slices.Sort(names)
	}
	o.variant = string(appendVariant(nil, in.hdr, in.d.tls, o.spec))
	var mh maphash.Hash
	mh.SetSeed(c.seed)
	mh.WriteString(o.urlKey)
	mh.WriteByte(0)
	mh.WriteString(o.variant)
	o.hash = mh.Sum64()

	o.etag = first(h[hETag])
	if lm := first(h[hLastModified]); lm != "" {
		if t, err := http.ParseTime(lm); err == nil {
			o.lastMod, o.lastModUnix = lm, t.Unix()
		}
	}

	// Common fields, sorted for a stable output.
	keys := make([]string, 0, len(h))
	for k := range h {
		switch k {
		case hETag, hVary, hContentEncoding, HeaderCDNCacheControl:
			// CDN-Cache-Control is kept for revalidation merges but not
			// served (RFC 9213: see ADR 0020).
		default:
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		f := hfield{k, h[k]}
		o.hdr = append(o.hdr, f)
		if slices.Contains(in304[:], k) {
			o.hdr304 = append(o.hdr304, f)
		}
	}
	if o.static && status == http.StatusOK && len(h["Accept-Ranges"]) == 0 {
		o.hdr = append(o.hdr, hfield{"Accept-Ranges", []string{"bytes"}})
	}
	var vary []string
	if len(names) > 0 {
		vary = []string{strings.Join(names, ", ")}
	}
	o.id = newRep(status, codingIdentity, body, ce, o.etag, vary)
	if len(enc) > 0 {
		o.enc = make([]rep, len(enc))
		for i, e := range enc {
			o.enc[i] = newRep(status, e.coding, e.body, codingNames[e.coding], weakETag(o.etag), vary)
		}
	}

	_, hasDate := h["Date"]
	_, typed := h["Content-Type"]
	for _, r := range o.reps() {
		r.needDate = !hasDate
		if typed || ce != "" || len(r.body) == 0 || !bodyAllowed(status) {
			r.block = renderBlock(o.hdr, r.hdr)
		}
	}

	n := now.UnixNano()
	o.storedAt = n
	lifetime := int64(p.lifetime - p.initialAge)
	o.freshUntil = n + lifetime
	o.swrUntil = o.freshUntil + int64(p.swr)
	o.sieUntil = o.freshUntil + int64(p.sie)
	o.keepUntil = max(o.swrUntil, o.sieUntil, o.freshUntil)
	if o.etag != "" || o.lastMod != "" {
		// Kept, never served, so that the next request revalidates it
		// (RFC 9111 §4.3): a 304 costs the origin less than the page.
		o.keepUntil = max(o.keepUntil, o.freshUntil+int64(keepForRevalidation))
	}
	if p.noCache {
		// Kept for its validators as long as it would have been fresh, and
		// never served without a successful revalidation, not even for a
		// failing origin (RFC 9111 §5.2.2.4, §4.2.4).
		o.freshUntil, o.swrUntil, o.sieUntil = n, n, n
	}
	o.size = o.footprint()
	return o
}

// reps are the object's representations, identity first.
func (o *object) reps() []*rep {
	out := make([]*rep, 0, 1+len(o.enc))
	out = append(out, &o.id)
	for i := range o.enc {
		out = append(out, &o.enc[i])
	}
	return out
}

// renderBlock renders header fields as lines, as net/http writes them:
// values trimmed, CR and LF replaced by spaces.
func renderBlock(fields ...[]hfield) []byte {
	var b []byte
	for _, fs := range fields {
		for _, f := range fs {
			for _, v := range f.vals {
				v = strings.Trim(v, " \t")
				if strings.ContainsAny(v, "\r\n") {
					v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
				}
				b = append(b, f.name...)
				b = append(b, ": "...)
				b = append(b, v...)
				b = append(b, "\r\n"...)
			}
		}
	}
	return slices.Clip(b)
}

func newRep(status int, cd coding, body []byte, ce, etag string, vary []string) rep {
	r := rep{coding: cd, body: body}
	if bodyAllowed(status) {
		r.hdr = append(r.hdr, hfield{hContentLength, []string{strconv.Itoa(len(body))}})
	}
	if ce != "" {
		r.hdr = append(r.hdr, hfield{hContentEncoding, []string{ce}})
	}
	if etag != "" {
		f := hfield{hETag, []string{etag}}
		r.hdr, r.hdr304 = append(r.hdr, f), append(r.hdr304, f)
	}
	if vary != nil {
		f := hfield{hVary, vary}
		r.hdr, r.hdr304 = append(r.hdr, f), append(r.hdr304, f)
	}
	r.hdr, r.hdr304 = slices.Clip(r.hdr), slices.Clip(r.hdr304)
	return r
}

func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// weakETag is the ETag of a compressed body: the same opaque tag, weak,
// since the bytes differ but the content is the same (RFC 9110 §8.8.1).
// One opaque tag for every coding keeps a 304 right whichever body the
// client holds (If-None-Match compares weakly); If-Range, which needs a
// strong match, is only honoured on the identity body, the one ranges are
// served from. See docs/adr/0022-compressed-variants.md.
func weakETag(etag string) string {
	if etag == "" || strings.HasPrefix(etag, "W/") {
		return etag
	}
	return "W/" + etag
}

// keepForRevalidation is how long a stale object with validators is kept
// past its freshness (and stale windows) to be revalidated rather than
// fetched whole. It is never served in that time.
const keepForRevalidation = time.Hour

// objectOverhead approximates the bookkeeping of one object: the struct,
// its map and queue entries, slice headers.
const objectOverhead = 512

// footprint approximates the bytes the object holds.
func (o *object) footprint() int64 {
	n := int64(objectOverhead + 2*len(o.urlKey) + len(o.variant) + len(o.id.body))
	for _, e := range o.enc {
		n += int64(len(e.body)+len(e.block)) + int64(2*len(e.hdr))*40
	}
	n += int64(len(o.id.block))
	for k, vs := range o.header {
		n += int64(len(k)) + 40
		for _, v := range vs {
			n += int64(len(v)) + 16
		}
	}
	n += int64(len(o.hdr)+len(o.hdr304)+2*len(o.id.hdr)) * 40
	for _, t := range o.tags {
		n += int64(len(t)) + 64 // the tag string, the index entry
	}
	return n
}
