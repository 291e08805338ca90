package pagecache

import (
	"hash/maphash"
	"sync"
)

// Tag limits. A tag is a purge handle like "post-12", "term-3" or "home".
const (
	maxTagLen        = 128
	maxTagsPerObject = 256
)

// parseTags splits the tag header's values on spaces, tabs and commas. It
// keeps valid tags (the purge API's ^[A-Za-z0-9_.:-]{1,128}$, anything else
// could never be purged), once each, at most maxTagsPerObject.
func parseTags(values []string) []string {
	var tags []string
	for _, v := range values {
		for len(v) > 0 {
			i := 0
			for i < len(v) && !isTagSep(v[i]) {
				i++
			}
			tok := v[:i]
			if i < len(v) {
				i++
			}
			v = v[i:]
			if tagProblem(tok) != "" || containsString(tags, tok) {
				continue
			}
			if len(tags) == maxTagsPerObject {
				return tags
			}
			tags = append(tags, tok)
		}
	}
	return tags
}

func isTagSep(b byte) bool { return b == ' ' || b == '\t' || b == ',' }

// tagProblem says what is wrong with a tag, or "" if it is valid.
func tagProblem(t string) string {
	switch {
	case t == "":
		return "is empty"
	case len(t) > maxTagLen:
		return "is longer than 128 characters"
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == ':' || c == '-') {
			return "has characters outside [A-Za-z0-9_.:-]"
		}
	}
	return ""
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// tagIndex maps a tag to the stored objects that carry it, so that a purge
// costs O(objects of the tag). It is sharded by tag to keep stores and
// evictions on different tags apart.
//
// Lock order: a cache shard's mutex, then a tag shard's; never the other
// way (purge copies the set under the tag lock, releases it, then locks
// cache shards).
type tagIndex struct {
	seed   maphash.Seed
	shards [16]tagShard
}

type tagShard struct {
	mu sync.Mutex
	m  map[string]map[*object]struct{}
}

func newTagIndex() *tagIndex {
	t := &tagIndex{seed: maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i].m = make(map[string]map[*object]struct{})
	}
	return t
}

func (t *tagIndex) shard(tag string) *tagShard {
	return &t.shards[maphash.String(t.seed, tag)%uint64(len(t.shards))]
}

func (t *tagIndex) add(o *object) {
	for _, tag := range o.tags {
		s := t.shard(tag)
		s.mu.Lock()
		set := s.m[tag]
		if set == nil {
			set = make(map[*object]struct{})
			s.m[tag] = set
		}
		set[o] = struct{}{}
		s.mu.Unlock()
	}
}

func (t *tagIndex) remove(o *object) {
	for _, tag := range o.tags {
		s := t.shard(tag)
		s.mu.Lock()
		if set := s.m[tag]; set != nil {
			delete(set, o)
			if len(set) == 0 {
				delete(s.m, tag)
			}
		}
		s.mu.Unlock()
	}
}

// objects returns a copy of the objects that carry tag.
func (t *tagIndex) objects(tag string) []*object {
	s := t.shard(tag)
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.m[tag]
	out := make([]*object, 0, len(set))
	for o := range set {
		out = append(out, o)
	}
	return out
}

func (t *tagIndex) clear() {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		s.m = make(map[string]map[*object]struct{})
		s.mu.Unlock()
	}
}
