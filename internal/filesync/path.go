package filesync

import (
	"github.com/scalepress/scalepress/internal/fileperm"

	"errors"
	"fmt"
	"path"
	"strings"
	"unicode/utf8"
)

const (
	// MaxPathLen is the longest path, in bytes, a log record can hold. A
	// push is held to the tighter filesystem limits below.
	MaxPathLen = 4096
	// MaxSyncPathLen is the longest path, in bytes, a push may name: Linux's
	// PATH_MAX (4096) counts the terminating NUL.
	MaxSyncPathLen = 4095
	// MaxSegmentLen is the longest file or directory name, in bytes, a push
	// may name: NAME_MAX of every Linux filesystem a docroot lives on.
	MaxSegmentLen = 255
	// hardMaxDepth bounds Rules.MaxDepth and is what the log decoder
	// accepts, whatever the configuration.
	hardMaxDepth = 256
	// tempPrefix starts the name of every temporary file the agent writes
	// in the docroot; such names are never synced.
	tempPrefix = ".filesync-"
)

// The rules a rejected change can break (RejectError.Rule).
const (
	RuleEmpty            = "empty"
	RuleEncoding         = "utf-8"
	RuleNUL              = "nul"
	RuleControl          = "control-character"
	RuleBackslash        = "backslash"
	RuleTooLong          = "too-long"
	RuleSegmentTooLong   = "segment-too-long"
	RuleAbsolute         = "absolute"
	RuleEmptySegment     = "empty-segment"
	RuleDotSegment       = "dot-segment"
	RuleDotDot           = "dot-dot"
	RuleTooDeep          = "too-deep"
	RuleReserved         = "reserved"
	RuleExcluded         = "excluded"
	RuleSymlink          = "symlink"
	RuleMode             = "mode"
	RuleOp               = "op"
	RuleHash             = "hash"
	RuleSize             = "size"
	RuleTooLarge         = "too-large"
	RuleRequestTooLarge  = "request-too-large"
	RuleBlob             = "blob"
	RuleSeq              = "seq"
	RuleOrigin           = "origin"
	RuleTooManyChanges   = "too-many-changes"
	RuleMalformedRequest = "malformed"
	RuleUnit             = "unit"
)

// ErrRejected is what every RejectError matches with errors.Is.
var ErrRejected = errors.New("change rejected")

// RejectError says which change was refused and why. The store keeps nothing
// of a push that contains one.
type RejectError struct {
	// Path is the path of the offending change (empty for a request-wide
	// rule such as RuleTooManyChanges).
	Path string
	// Rule is one of the Rule constants.
	Rule string
	// Reason says what the rule requires.
	Reason string
}

func (e *RejectError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("%s: %s", e.Rule, e.Reason)
	}
	return fmt.Sprintf("path %q: %s: %s", e.Path, e.Rule, e.Reason)
}

// Is makes errors.Is(err, ErrRejected) true.
func (e *RejectError) Is(target error) bool { return target == ErrRejected }

// TooLarge reports whether the rule is a size limit (HTTP 413).
func (e *RejectError) TooLarge() bool {
	return e.Rule == RuleTooLarge || e.Rule == RuleRequestTooLarge
}

func reject(p, rule, format string, args ...any) *RejectError {
	return &RejectError{Path: p, Rule: rule, Reason: fmt.Sprintf(format, args...)}
}

// checkPathSyntax checks that p is a clean relative slash-separated path of
// at most maxDepth segments.
func checkPathSyntax(p string, maxDepth int) error {
	switch {
	case p == "":
		return reject(p, RuleEmpty, "the path is empty")
	case !utf8.ValidString(p):
		return reject(p, RuleEncoding, "the path is not valid UTF-8")
	case strings.IndexByte(p, 0) >= 0:
		return reject(p, RuleNUL, "the path contains a NUL byte")
	case strings.IndexFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
		return reject(p, RuleControl, "the path contains a control character")
	case strings.IndexByte(p, '\\') >= 0:
		return reject(p, RuleBackslash, "the path contains a backslash; use '/' between segments")
	case len(p) > MaxPathLen:
		return reject(p, RuleTooLong, "the path is %d bytes, more than %d", len(p), MaxPathLen)
	case p[0] == '/':
		return reject(p, RuleAbsolute, "the path must be relative to the docroot, without a leading '/'")
	}
	depth := 0
	for seg := range strings.SplitSeq(p, "/") {
		depth++
		switch seg {
		case "":
			return reject(p, RuleEmptySegment, "the path has an empty segment (a trailing '/' or '//')")
		case ".":
			return reject(p, RuleDotSegment, "the path has a '.' segment")
		case "..":
			return reject(p, RuleDotDot, "the path has a '..' segment")
		}
		if strings.HasPrefix(seg, tempPrefix) {
			return reject(p, RuleReserved, "names starting with %q are the agent's temporary files", tempPrefix)
		}
	}
	if depth > maxDepth {
		return reject(p, RuleTooDeep, "the path has %d segments, more than %d", depth, maxDepth)
	}
	return nil
}

// checkFSLimits checks that a filesystem can hold p: at most MaxSyncPathLen
// bytes, no segment over MaxSegmentLen. Every push is held to it, so that a
// node never gets a record it cannot write (ENAMETOOLONG); the log decoder
// is not, so that a store that already holds such a record still opens (the
// agents quarantine it).
func checkFSLimits(p string) error {
	if len(p) > MaxSyncPathLen {
		return reject(p, RuleTooLong, "the path is %d bytes; a filesystem holds at most %d (PATH_MAX)", len(p), MaxSyncPathLen)
	}
	for seg := range strings.SplitSeq(p, "/") {
		if len(seg) > MaxSegmentLen {
			return reject(p, RuleSegmentTooLong, "the name %.40q... is %d bytes; a filesystem holds at most %d per name (NAME_MAX)", seg, len(seg), MaxSegmentLen)
		}
	}
	return nil
}

// pattern is one compiled Exclude entry.
type pattern struct {
	glob     string // path.Match syntax, no leading or trailing '/'
	anchored bool   // matched against the path from the root, else against every segment
}

// compilePattern parses an Exclude entry. A pattern that contains a '/'
// (other than a trailing one) is anchored at the docroot and matches a path
// or any of its leading directories, e.g. "wp-content/cache/"; one without
// matches any single segment at any depth, e.g. "*.tmp" or ".git". A match
// on a directory excludes everything below it. A trailing '/' is allowed
// for readability and changes nothing.
func compilePattern(p string) (pattern, error) {
	g := strings.TrimSuffix(p, "/")
	anchored := strings.Contains(g, "/")
	g = strings.TrimPrefix(g, "/")
	if g == "" {
		return pattern{}, fmt.Errorf("pattern %q is empty", p)
	}
	if _, err := path.Match(g, ""); err != nil {
		return pattern{}, fmt.Errorf("pattern %q: %w", p, err)
	}
	return pattern{glob: g, anchored: anchored}, nil
}

// excluder matches paths against the compiled Exclude patterns.
type excluder []pattern

func newExcluder(patterns []string) (excluder, error) {
	e := make(excluder, 0, len(patterns))
	for _, p := range patterns {
		c, err := compilePattern(p)
		if err != nil {
			return nil, err
		}
		e = append(e, c)
	}
	return e, nil
}

// match reports whether p, or a directory that contains it, is excluded.
func (e excluder) match(p string) bool {
	if len(e) == 0 {
		return false
	}
	start := 0
	for end := 0; end <= len(p); end++ {
		if end < len(p) && p[end] != '/' {
			continue
		}
		prefix, seg := p[:end], p[start:end]
		for _, pat := range e {
			var ok bool
			if pat.anchored {
				ok, _ = path.Match(pat.glob, prefix)
			} else {
				ok, _ = path.Match(pat.glob, seg)
			}
			if ok {
				return true
			}
		}
		start = end + 1
	}
	return false
}

// pathRules is Rules compiled for checking paths.
type pathRules struct {
	maxDepth int
	maxSize  int64
	exclude  excluder
	perms    fileperm.Policy
}

func compileRules(r Rules) (pathRules, error) {
	e, err := newExcluder(r.Exclude)
	if err != nil {
		return pathRules{}, err
	}
	return pathRules{maxDepth: r.MaxDepth, maxSize: r.MaxFileSize, exclude: e, perms: r.Perms}, nil
}

// checkPath checks the syntax of p, that a filesystem can hold it and that
// it is not excluded.
func (r pathRules) checkPath(p string) error {
	if err := checkPathSyntax(p, r.maxDepth); err != nil {
		return err
	}
	if err := checkFSLimits(p); err != nil {
		return err
	}
	if r.exclude.match(p) {
		return reject(p, RuleExcluded, "the path matches an Exclude pattern and is never synced")
	}
	return nil
}

// ignored reports whether the agent leaves p alone: excluded, or one of its
// own temporary files.
func (r pathRules) ignored(p string) bool {
	if r.exclude.match(p) {
		return true
	}
	for seg := range strings.SplitSeq(p, "/") {
		if strings.HasPrefix(seg, tempPrefix) {
			return true
		}
	}
	return false
}

// parentDirs returns the ancestors of p, shortest first ("a", "a/b" for
// "a/b/c").
func parentDirs(p string) []string {
	var out []string
	for i := 0; i < len(p); i++ {
		if p[i] == '/' {
			out = append(out, p[:i])
		}
	}
	return out
}

// isBelow reports whether p is strictly below dir.
func isBelow(p, dir string) bool {
	return len(p) > len(dir) && p[len(dir)] == '/' && p[:len(dir)] == dir
}
