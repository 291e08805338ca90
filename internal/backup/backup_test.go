package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/galera"
)

// These tests run one real standalone mariadbd (a member as the controller
// renders it, binary log on) on loopback block 71 and back it up.

type fakeFiles struct{ blobs map[string][]byte }

func (f *fakeFiles) add(content string) string {
	sum := sha256.Sum256([]byte(content))
	h := hex.EncodeToString(sum[:])
	f.blobs[h] = []byte(content)
	return h
}

func (f *fakeFiles) Tree(context.Context) (FilesTree, error) {
	type entry struct {
		Path string `json:"path"`
		Dir  bool   `json:"dir,omitempty"`
		Mode uint32 `json:"mode"`
		Size int64  `json:"size,omitempty"`
		Hash string `json:"hash,omitempty"`
	}
	tree := FilesTree{Seq: uint64(len(f.blobs))}
	var doc struct {
		Seq     uint64  `json:"seq"`
		Entries []entry `json:"entries"`
	}
	doc.Seq = tree.Seq
	i := 0
	for h, b := range f.blobs {
		i++
		doc.Entries = append(doc.Entries, entry{Path: fmt.Sprintf("f%d", i), Mode: 0o644, Size: int64(len(b)), Hash: h})
		tree.Blobs = append(tree.Blobs, Blob{Hash: h, Size: int64(len(b))})
		tree.Files++
		tree.Bytes += int64(len(b))
	}
	tree.Doc, _ = json.Marshal(doc)
	return tree, nil
}

func (f *fakeFiles) GetBlob(_ context.Context, hash string, w io.Writer) (int64, error) {
	b, ok := f.blobs[hash]
	if !ok {
		return 0, fmt.Errorf("no blob %s", hash)
	}
	n, err := w.Write(b)
	return int64(n), err
}

// restoreFiles writes the tree and its blobs as plain files.
func restoreFiles(ctx context.Context, dir string, doc []byte, open func(context.Context, string) (io.ReadCloser, error)) error {
	blobs, err := treeBlobs(doc)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, b := range blobs {
		r, err := open(ctx, b.Hash)
		if err != nil {
			return err
		}
		data, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, b.Hash), data, 0o600); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, "tree.json"), doc, 0o600)
}

type testDB struct {
	m     galera.MemberConfig
	bin   galera.Binaries
	tools Tools
}

func startMember(t *testing.T) *testDB {
	t.Helper()
	tools, err := FindTools()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := galera.FindBinaries()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	m := galera.MemberConfig{ID: "db-1", Addr: "127.71.250.1:3306", Dir: filepath.Join(dir, "db-1"), BufferPool: "32M", UID: -1, GID: -1}
	ctx := context.Background()
	local := galera.NewLocal(nil, bin)
	if err := local.Prepare(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := local.Init(ctx, m); err != nil {
		t.Fatal(err)
	}
	path, args := galera.Command(m, bin)
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	cmd := exec.Command(path, args...)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		galera.RootSQL(context.Background(), m, bin, "SHUTDOWN;")
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	for i := 0; ; i++ {
		if err := galera.Ping(ctx, m, bin); err == nil {
			break
		}
		select {
		case <-done:
			t.Fatalf("mariadbd exited: %s", log.String())
		case <-time.After(100 * time.Millisecond):
		}
		if i > 600 {
			t.Fatalf("mariadbd did not answer: %s", log.String())
		}
	}
	return &testDB{m: m, bin: bin, tools: tools}
}

func (d *testDB) sql(t *testing.T, q string) string {
	t.Helper()
	out, err := galera.RootSQL(context.Background(), d.m, d.bin, q)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// titles lists the post titles a scratch server sees in datadir.
func titles(t *testing.T, tools Tools, datadir string) string {
	t.Helper()
	s, err := startScratch(context.Background(), tools, datadir, filepath.Join(t.TempDir(), "run"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()
	out, err := s.sql(context.Background(), "SELECT GROUP_CONCAT(title ORDER BY id) FROM wordpress.wp_posts;")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

func TestBackupVerifyRestore(t *testing.T) {
	db := startMember(t)
	ctx := context.Background()
	db.sql(t, "CREATE DATABASE wordpress; CREATE TABLE wordpress.wp_posts (id INT PRIMARY KEY AUTO_INCREMENT, title TEXT); CREATE TABLE wordpress.wp_users (id INT PRIMARY KEY); INSERT INTO wordpress.wp_posts (title) VALUES ('one'), ('two'), ('three'); INSERT INTO wordpress.wp_users VALUES (1);")
	files := &fakeFiles{blobs: map[string][]byte{}}
	files.add("media one")
	files.add("plugin code")
	target := &DirTarget{Dir: filepath.Join(t.TempDir(), "backups")}
	scratchDir := t.TempDir()
	now := time.Now().UTC().Truncate(time.Second)
	clock := now
	o := Options{Tools: db.tools, Scratch: scratchDir, Now: func() time.Time { return clock }}
	src := Source{Member: db.m, Database: "wordpress", Files: files, Version: "test",
		Secrets: map[string]string{"admin-password": "pw\n", "db-password": "dbpw\n"}, Config: []byte("site: {}\n")}

	m1, err := Run(ctx, src, target, o)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(map[string]int64{"wp_posts": 3, "wp_users": 1}, m1.DB.Rows); d != "" {
		t.Errorf("rows (-want +got):\n%s", d)
	}
	if m1.Files.NewBlobs != 2 || m1.Files.Files != 2 || m1.DB.GTID == "" {
		t.Errorf("first backup: files %+v, gtid %q", m1.Files, m1.DB.GTID)
	}
	if fi, err := os.Stat(target.Dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("target mode: %v %v", fi.Mode(), err)
	}

	// Incremental: a second backup copies only the new blob.
	files.add("a new upload")
	clock = now.Add(time.Second)
	m2, err := Run(ctx, src, target, o)
	if err != nil {
		t.Fatal(err)
	}
	if m2.Files.NewBlobs != 1 || m2.Files.NewBytes != int64(len("a new upload")) || m2.Files.Files != 3 {
		t.Errorf("second backup copied %+v, want only the new blob", m2.Files)
	}
	listed, err := List(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, l := range listed {
		ids = append(ids, l.ID)
	}
	if d := cmp.Diff([]string{m2.ID, m1.ID}, ids); d != "" {
		t.Errorf("List (-want +got):\n%s", d)
	}
	res, err := Verify(ctx, target, m1.ID, o)
	if err != nil {
		t.Fatalf("verify of a good backup: %v", err)
	}
	if res.Tables != 2 || res.Blobs != 2 || res.Artefacts != 4 {
		t.Errorf("verify checked %+v", res)
	}

	// Later changes, their binlog events dated by the session: a post at
	// +10s, the deletion by mistake at +20s.
	base := time.Now().Unix()
	db.sql(t, fmt.Sprintf("SET timestamp = %d; INSERT INTO wordpress.wp_posts (title) VALUES ('four'); SET timestamp = %d; DELETE FROM wordpress.wp_posts WHERE title = 'one';", base+10, base+20))
	arch := &Archiver{Target: target, Member: db.m, Tools: db.tools}
	if err := arch.Sync(ctx, time.Unix(base+30, 0)); err != nil {
		t.Fatal(err)
	}
	req := func(dir string, at time.Time) RestoreRequest {
		return RestoreRequest{ID: m2.ID, Dir: dir, At: at, MemberDir: "db/db-1", FilesDir: "files", Files: restoreFiles,
			Prepared: galera.MarkInitialized}
	}
	parent := t.TempDir()
	pit := filepath.Join(parent, "pit")
	if _, err := Restore(ctx, target, req(pit, time.Unix(base+15, 0)), o); err != nil {
		t.Fatal(err)
	}
	if got := titles(t, db.tools, filepath.Join(pit, "db/db-1/data")); got != "one,two,three,four" {
		t.Errorf("restore --at between the post and the deletion: posts %q", got)
	}
	for _, f := range []string{"secrets/admin-password", "scalepress.yaml", "files/tree.json", "db/db-1/data/.scalepress-initialized"} {
		if _, err := os.Stat(filepath.Join(pit, f)); err != nil {
			t.Errorf("restored dir lacks %s: %v", f, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(pit, "secrets/admin-password")); err == nil && fi.Mode().Perm() != 0o600 {
		t.Errorf("admin-password mode %v", fi.Mode())
	}
	plain := filepath.Join(parent, "plain")
	if _, err := Restore(ctx, target, req(plain, time.Time{}), o); err != nil {
		t.Fatal(err)
	}
	if got := titles(t, db.tools, filepath.Join(plain, "db/db-1/data")); got != "one,two,three" {
		t.Errorf("restore of the backup itself: posts %q", got)
	}

	// Refusals: nothing is made, nothing is left beside.
	refusals := []struct {
		name string
		req  RestoreRequest
		want string
	}{
		{"existing dir", req(pit, time.Time{}), "exists"},
		{"after the archive", req(filepath.Join(parent, "late"), time.Unix(base+40, 0)), "archived up to"},
		{"before the backup", req(filepath.Join(parent, "early"), m2.Started.Add(-time.Hour)), "before backup"},
		{"no such backup", RestoreRequest{ID: "20200101T000000Z", Dir: filepath.Join(parent, "none")}, "not found"},
	}
	for _, r := range refusals {
		_, err := Restore(ctx, target, r.req, o)
		if err == nil || !strings.Contains(err.Error(), r.want) {
			t.Errorf("%s: Restore = %v, want %q", r.name, err, r.want)
		}
	}
	if d := cmp.Diff([]string{"pit", "plain"}, dirNames(t, parent)); d != "" {
		t.Errorf("after refused restores, beside them (-want +got):\n%s", d)
	}

	// Damage: a flipped byte in the database copy, a changed blob.
	flip(t, filepath.Join(target.Dir, m1.ID, ArtDB), 1000)
	if _, err := Verify(ctx, target, m1.ID, o); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Errorf("verify of a flipped database copy = %v, want a checksum mismatch", err)
	}
	if _, err := Restore(ctx, target, RestoreRequest{ID: m1.ID, Dir: filepath.Join(parent, "bad"), MemberDir: "db/db-1", FilesDir: "files", Files: restoreFiles}, o); !errors.Is(err, ErrCorrupt) {
		t.Errorf("restore of a damaged backup = %v, want ErrCorrupt", err)
	}
	if d := cmp.Diff([]string{"pit", "plain"}, dirNames(t, parent)); d != "" {
		t.Errorf("after a failed restore, beside it (-want +got):\n%s", d)
	}
	for h := range files.blobs {
		flip(t, filepath.Join(target.Dir, blobName(h)), 0)
		break
	}
	if _, err := Verify(ctx, target, m2.ID, o); !errors.Is(err, ErrCorrupt) {
		t.Errorf("verify with a damaged blob = %v, want ErrCorrupt", err)
	}
	// A manifest from a newer scalepress.
	mp := filepath.Join(target.Dir, m2.ID, ManifestArt)
	data, _ := os.ReadFile(mp)
	os.WriteFile(mp, bytes.Replace(data, []byte(`"format": 1`), []byte(`"format": 99`), 1), 0o600)
	if _, err := Verify(ctx, target, m2.ID, o); !errors.Is(err, ErrNewerFormat) {
		t.Errorf("verify of a newer backup = %v, want ErrNewerFormat", err)
	}
	if es, _ := os.ReadDir(scratchDir); len(es) != 0 {
		t.Errorf("scratch directory not cleaned: %v", es)
	}
}

// TestBackupFullDisk backs up to a 4 MiB tmpfs: the copy fails with a clear
// error and leaves no backup behind.
func TestBackupFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root to mount a small tmpfs")
	}
	db := startMember(t)
	db.sql(t, "CREATE DATABASE wordpress;")
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	target := &DirTarget{Dir: mnt}
	files := &fakeFiles{blobs: map[string][]byte{}}
	o := Options{Tools: db.tools, Scratch: t.TempDir()}
	_, err := Run(context.Background(), Source{Member: db.m, Database: "wordpress", Files: files, Secrets: map[string]string{}}, target, o)
	if err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("backup to a full disk = %v, want no space left on device", err)
	}
	listed, lerr := List(context.Background(), target)
	if lerr != nil || len(listed) != 0 {
		t.Errorf("after a failed backup List = %v, %v", listed, lerr)
	}
	if es := dirNames(t, mnt); len(es) != 0 {
		t.Errorf("a failed backup left %v", es)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func flip(t *testing.T, p string, off int64) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}
