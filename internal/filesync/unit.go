package filesync

import "errors"

// A unit push (PushRequest.Unit) replaces the tree at one path as a whole:
// a plugin's directory, a theme, a core tree. The store writes it as one
// group of records in one append: first a delete of the unit, then every
// directory and file of its new tree, each record carrying the group's last
// sequence number (Change.Group). Replayed record by record (an old agent,
// the store's own tree) the group gives the new tree; an agent that knows
// groups builds the new tree beside the live one and swaps the two
// (stage.go), so that no request sees a mix.

// checkUnit checks that a push's unit is a clean path and that every change
// lies at or under it.
func checkUnit(req PushRequest) error {
	if req.Unit == "" {
		return nil
	}
	if err := checkPathSyntax(req.Unit, hardMaxDepth); err != nil {
		var rej *RejectError
		if errors.As(err, &rej) {
			return reject(req.Unit, RuleUnit, "the unit is not a clean relative path: %s", rej.Reason)
		}
		return err
	}
	if err := checkFSLimits(req.Unit); err != nil {
		return err
	}
	for _, c := range req.Changes {
		if c.Path != req.Unit && !isBelow(c.Path, req.Unit) {
			return reject(c.Path, RuleUnit, "the change lies outside the push's unit %q; push it separately", req.Unit)
		}
	}
	return nil
}

// unitGroup returns the records (sequence numbers from next) that replace
// the tree at unit with what the changes cs make of an empty unit, and each
// change's result. When the tree at unit already is that, it returns no
// records and every result is a no-op.
func (t *tree) unitGroup(unit, origin string, cs []Change, next, base uint64) ([]Change, []PushResult) {
	nt := newTree(false)
	for _, c := range cs {
		nt.apply(c)
	}
	var want []Entry
	for _, e := range nt.sorted() {
		if e.Path == unit || isBelow(e.Path, unit) {
			want = append(want, e)
		}
	}
	results := make([]PushResult, len(cs))
	if t.holds(unit, want) {
		for i, c := range cs {
			results[i] = PushResult{Seq: t.pathSeq(c.Path, base), Noop: true}
		}
		return nil, results
	}
	recs := []Change{{Op: OpDelete, Path: unit, Origin: origin, Seq: next}}
	seqOf := make(map[string]uint64, len(want))
	for _, e := range want {
		c := Change{Op: OpPut, Path: e.Path, Mode: e.Mode, Size: e.Size, Hash: e.Hash, MTime: e.MTime, Origin: origin}
		if e.Dir {
			c = Change{Op: OpMkdir, Path: e.Path, Mode: e.Mode, MTime: e.MTime, Origin: origin}
		}
		c.Seq = next + uint64(len(recs))
		seqOf[e.Path] = c.Seq
		recs = append(recs, c)
	}
	last := recs[len(recs)-1].Seq
	for i := range recs {
		recs[i].Group = last
	}
	for i, c := range cs {
		seq, ok := seqOf[c.Path]
		if !ok {
			seq = next // removed: by the group's delete
		}
		results[i] = PushResult{Seq: seq}
	}
	return recs, results
}

// holds reports whether the tree at unit is exactly want (sorted entries
// at or under unit): the same paths, kinds, modes and contents.
func (t *tree) holds(unit string, want []Entry) bool {
	n := 0
	for p := range t.entries {
		if p == unit || isBelow(p, unit) {
			n++
		}
	}
	if n != len(want) {
		return false
	}
	for _, w := range want {
		e, ok := t.entries[w.Path]
		if !ok || e.Dir != w.Dir || e.Mode != w.Mode || e.Hash != w.Hash {
			return false
		}
	}
	return true
}
