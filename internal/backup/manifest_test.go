package backup

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func validManifest() Manifest {
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	h := strings.Repeat("ab", 32)
	return Manifest{
		Format: Format, ID: NewID(t0), Version: "0.1.0", Started: t0, Finished: t0.Add(time.Minute),
		Artefacts: []Artefact{{Name: ArtDB, Size: 10, SHA256: h}, {Name: ArtFiles, Size: 2, SHA256: h}, {Name: ArtSecrets, Size: 3, SHA256: h}},
		DB:        DBInfo{Member: "db-1", Database: "wordpress", GaleraSeqno: -1, GTID: "0-1-42", Rows: map[string]int64{"wp_posts": 3}},
		Files:     FilesInfo{Seq: 7, Files: 2, Bytes: 100, NewBlobs: 1, NewBytes: 50},
	}
}

func TestManifestRoundTrip(t *testing.T) {
	m := validManifest()
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(m, got); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}
	if got.Size() != 10+2+3+50 {
		t.Errorf("Size = %d", got.Size())
	}
}

func TestManifestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Manifest)
		want   string
		newer  bool
	}{
		{name: "newer format", change: func(m *Manifest) { m.Format = Format + 1 }, want: "newer scalepress", newer: true},
		{name: "no format", change: func(m *Manifest) { m.Format = 0 }, want: "format 0"},
		{name: "bad id", change: func(m *Manifest) { m.ID = "../x" }, want: `id "../x"`},
		{name: "finished before started", change: func(m *Manifest) { m.Finished = m.Started.Add(-time.Second) }, want: "finished"},
		{name: "bad member", change: func(m *Manifest) { m.DB.Member = "DB 1" }, want: "db.member"},
		{name: "bad database", change: func(m *Manifest) { m.DB.Database = "a`b" }, want: "db.database"},
		{name: "bad gtid", change: func(m *Manifest) { m.DB.GTID = "0-1-x" }, want: "db.gtid"},
		{name: "bad table", change: func(m *Manifest) { m.DB.Rows["a b"] = 1 }, want: "db.rows"},
		{name: "negative rows", change: func(m *Manifest) { m.DB.Rows["wp_posts"] = -1 }, want: "db.rows"},
		{name: "unknown artefact", change: func(m *Manifest) { m.Artefacts[0].Name = "../../etc/passwd" }, want: "is not an artefact"},
		{name: "twice", change: func(m *Manifest) { m.Artefacts[1].Name = ArtDB }, want: "listed twice"},
		{name: "bad hash", change: func(m *Manifest) { m.Artefacts[0].SHA256 = "abc" }, want: "sha256"},
		{name: "missing db", change: func(m *Manifest) { m.Artefacts = m.Artefacts[1:] }, want: "db.xbstream is missing"},
		{name: "negative files", change: func(m *Manifest) { m.Files.NewBytes = -1 }, want: "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := validManifest()
			tt.change(&m)
			err := m.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want an error with %q", err, tt.want)
			}
			if errors.Is(err, ErrNewerFormat) != tt.newer || errors.Is(err, ErrCorrupt) == tt.newer {
				t.Errorf("Validate = %v: newer %v, corrupt %v", err, errors.Is(err, ErrNewerFormat), errors.Is(err, ErrCorrupt))
			}
		})
	}
}

func FuzzParseManifest(f *testing.F) {
	good, _ := json.Marshal(validManifest())
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"format":2}`))
	f.Add([]byte(`{"format":1,"id":"20261207T090000Z","artefacts":[{"name":"db.xbstream","size":-1}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNewerFormat) {
				t.Fatalf("ParseManifest error %v is neither corrupt nor newer", err)
			}
			return
		}
		// What parses names only known artefacts and a valid id, and
		// survives a round trip.
		for _, a := range m.Artefacts {
			if !knownArts[a.Name] || strings.ContainsAny(a.Name, "/\\") {
				t.Fatalf("artefact name %q parsed", a.Name)
			}
		}
		if !ValidID(m.ID) {
			t.Fatalf("id %q parsed", m.ID)
		}
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseManifest(again); err != nil {
			t.Fatalf("re-encoded manifest does not parse: %v", err)
		}
	})
}
