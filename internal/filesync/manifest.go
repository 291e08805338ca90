package filesync

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Manifest is the whole tree at one sequence number: the body of
// GET /v1/manifest and the content of a snapshot (snap/<seq>.json).
type Manifest struct {
	Seq uint64 `json:"seq"`
	// Entries are sorted by path; a directory comes before its content.
	Entries []Entry `json:"entries"`
}

// check validates a manifest read from disk or from the network: sorted
// unique valid paths, files with a hash, permission bits only, parents
// present as directories.
func (m Manifest) check() error {
	dirs := make(map[string]bool)
	for i, e := range m.Entries {
		if err := checkPathSyntax(e.Path, hardMaxDepth); err != nil {
			return fmt.Errorf("entry %d: %w", i, err)
		}
		if i > 0 && m.Entries[i-1].Path >= e.Path {
			return fmt.Errorf("entry %d: %q is not sorted after %q", i, e.Path, m.Entries[i-1].Path)
		}
		if e.Mode&^0o777 != 0 {
			return fmt.Errorf("entry %q: mode %#o has bits other than 0777", e.Path, e.Mode)
		}
		if e.Seq > m.Seq {
			return fmt.Errorf("entry %q: seq %d is after the manifest's %d", e.Path, e.Seq, m.Seq)
		}
		if e.Dir {
			if e.Hash != "" || e.Size != 0 {
				return fmt.Errorf("entry %q: a directory has no hash or size", e.Path)
			}
			dirs[e.Path] = true
		} else if !validHash(e.Hash) || e.Size < 0 {
			return fmt.Errorf("entry %q: a file needs a SHA-256 and a size", e.Path)
		}
		for _, d := range parentDirs(e.Path) {
			if !dirs[d] {
				return fmt.Errorf("entry %q: parent %q is not a directory entry", e.Path, d)
			}
		}
	}
	return nil
}

func decodeManifest(data []byte) (Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return Manifest{}, err
	}
	if err := m.check(); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

func snapshotName(seq uint64) string  { return fmt.Sprintf("snap/%020d.json", seq) }
func segmentName(first uint64) string { return fmt.Sprintf("log/%020d.log", first) }

// parseSeqName parses the sequence number out of a segment or snapshot
// name made by segmentName or snapshotName.
func parseSeqName(name, prefix, suffix string) (uint64, bool) {
	if len(name) != len(prefix)+20+len(suffix) || name[:len(prefix)] != prefix || name[len(prefix)+20:] != suffix {
		return 0, false
	}
	v, err := strconv.ParseUint(name[len(prefix):len(prefix)+20], 10, 64)
	return v, err == nil
}
