package backup

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Format is the manifest format this binary writes. A backup with a newer
// format is refused rather than misread.
const Format = 1

// ErrNewerFormat means a backup was written by a newer scalepress.
var ErrNewerFormat = errors.New("the backup is from a newer scalepress")

// ErrCorrupt means a backup's manifest or an artefact does not check out.
var ErrCorrupt = errors.New("the backup is damaged")

// Artefact names inside a backup.
const (
	ArtDB       = "db.xbstream"
	ArtFiles    = "files.json"
	ArtSecrets  = "secrets.json"
	ArtConfig   = "scalepress.yaml"
	ManifestArt = "manifest.json"
)

var (
	idRE       = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z(-[0-9]{1,3})?$`)
	hashRE     = regexp.MustCompile(`^[0-9a-f]{64}$`)
	tableRE    = regexp.MustCompile(`^[A-Za-z0-9_$]{1,64}$`)
	gtidRE     = regexp.MustCompile(`^([0-9]+-[0-9]+-[0-9]+)?(,[0-9]+-[0-9]+-[0-9]+)*$`)
	memberRE   = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)
	knownArts  = map[string]bool{ArtDB: true, ArtFiles: true, ArtSecrets: true, ArtConfig: true}
	neededArts = []string{ArtDB, ArtFiles, ArtSecrets}
)

// Manifest describes one complete backup.
type Manifest struct {
	Format   int       `json:"format"`
	ID       string    `json:"id"`
	Version  string    `json:"version"` // scalepress version that wrote it
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Artefacts are the backup's own files with their sizes and SHA-256.
	Artefacts []Artefact `json:"artefacts"`
	DB        DBInfo     `json:"db"`
	Files     FilesInfo  `json:"files"`
}

// Artefact is one file of a backup.
type Artefact struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// DBInfo is where the database copy stands.
type DBInfo struct {
	Member   string `json:"member"`   // the member it was copied from
	Database string `json:"database"` // the site's database
	// GaleraUUID:GaleraSeqno is the cluster position of the copy (empty and
	// -1 for a standalone server).
	GaleraUUID  string `json:"galera_uuid,omitempty"`
	GaleraSeqno int64  `json:"galera_seqno"`
	// GTID is the binary log position of the copy (@@gtid_binlog_pos), the
	// start of a point-in-time replay.
	GTID string `json:"gtid"`
	// Rows are the row counts of the site database's tables.
	Rows map[string]int64 `json:"rows"`
}

// FilesInfo is the files store's tree in the backup.
type FilesInfo struct {
	Seq      uint64 `json:"seq"`
	Files    int    `json:"files"`
	Bytes    int64  `json:"bytes"`     // content of every file of the tree
	NewBlobs int    `json:"new_blobs"` // blobs this backup copied to the target
	NewBytes int64  `json:"new_bytes"`
}

// Size is the bytes this backup added to its target: its artefacts and the
// blobs it copied.
func (m Manifest) Size() int64 {
	n := m.Files.NewBytes
	for _, a := range m.Artefacts {
		n += a.Size
	}
	return n
}

// Artefact returns the artefact called name.
func (m Manifest) Artefact(name string) (Artefact, bool) {
	for _, a := range m.Artefacts {
		if a.Name == name {
			return a, true
		}
	}
	return Artefact{}, false
}

// ValidID reports whether id names a backup (its UTC start time).
func ValidID(id string) bool { return idRE.MatchString(id) }

// NewID names a backup started at t.
func NewID(t time.Time) string { return t.UTC().Format("20060102T150405Z") }

// ParseManifest decodes and validates a manifest.
func ParseManifest(data []byte) (Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return Manifest{}, fmt.Errorf("%w: manifest: %v", ErrCorrupt, err)
	}
	if err := m.Validate(); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

// Validate checks a manifest; the error names the field.
func (m Manifest) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: manifest: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
	switch {
	case m.Format > Format:
		return fmt.Errorf("%w: format %d (written by scalepress %s); this binary reads format %d or older — use a newer scalepress", ErrNewerFormat, m.Format, m.Version, Format)
	case m.Format < 1:
		return bad("format %d is not a format", m.Format)
	case !ValidID(m.ID):
		return bad("id %q is not a backup id", m.ID)
	case m.Started.IsZero() || m.Finished.Before(m.Started):
		return bad("finished %s is before started %s", m.Finished.Format(time.RFC3339), m.Started.Format(time.RFC3339))
	case !memberRE.MatchString(m.DB.Member):
		return bad("db.member %q", m.DB.Member)
	case !tableRE.MatchString(m.DB.Database):
		return bad("db.database %q", m.DB.Database)
	case m.DB.GaleraUUID != "" && !regexp.MustCompile(`^[0-9a-f-]{36}$`).MatchString(m.DB.GaleraUUID):
		return bad("db.galera_uuid %q", m.DB.GaleraUUID)
	case m.DB.GaleraSeqno < -1:
		return bad("db.galera_seqno %d", m.DB.GaleraSeqno)
	case !gtidRE.MatchString(m.DB.GTID):
		return bad("db.gtid %q", m.DB.GTID)
	case m.Files.Files < 0 || m.Files.Bytes < 0 || m.Files.NewBlobs < 0 || m.Files.NewBytes < 0:
		return bad("files counts are negative")
	}
	for t, n := range m.DB.Rows {
		if !tableRE.MatchString(t) || n < 0 {
			return bad("db.rows[%q] = %d", t, n)
		}
	}
	seen := map[string]bool{}
	for i, a := range m.Artefacts {
		switch {
		case !knownArts[a.Name]:
			return bad("artefacts[%d].name %q is not an artefact", i, a.Name)
		case seen[a.Name]:
			return bad("artefacts[%d].name %q is listed twice", i, a.Name)
		case a.Size < 0:
			return bad("artefacts[%d].size %d", i, a.Size)
		case !hashRE.MatchString(a.SHA256):
			return bad("artefacts[%d].sha256 %q", i, a.SHA256)
		}
		seen[a.Name] = true
	}
	for _, n := range neededArts {
		if !seen[n] {
			return bad("artefact %s is missing", n)
		}
	}
	return nil
}
