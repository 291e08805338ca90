package backup

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scalepress/scalepress/internal/galera"
	"github.com/scalepress/scalepress/test/tools"
)

// s3Settings starts a versitygw with bucket "backups" and returns how to
// reach it.
func s3Settings(t *testing.T) (S3Settings, *tools.Versitygw) {
	t.Helper()
	gw := tools.StartVersitygw(t, "127.0.0.1:0")
	gw.MakeBucket(t, "backups")
	dir := t.TempDir()
	ak, sk := filepath.Join(dir, "access"), filepath.Join(dir, "secret")
	os.WriteFile(ak, []byte(gw.AccessKey+"\n"), 0o600)
	os.WriteFile(sk, []byte(gw.SecretKey+"\n"), 0o600)
	return S3Settings{Endpoint: gw.Endpoint, Region: "us-east-1", AccessKeyFile: ak, SecretKeyFile: sk, Spool: t.TempDir()}, gw
}

// TestTargets holds both targets to the same behaviour.
func TestTargets(t *testing.T) {
	ctx := context.Background()
	s3, _ := s3Settings(t)
	targets := map[string]string{"dir": filepath.Join(t.TempDir(), "b"), "s3": "s3://backups/site/one"}
	for name, to := range targets {
		t.Run(name, func(t *testing.T) {
			tg, err := OpenTarget(ctx, to, s3)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range []string{"20261207T090000Z/manifest.json", "20261207T090000Z/db.xbstream", "20261207T100000Z/db.xbstream", "blobs/ab/abcd", "binlog/db-1/archived.json"} {
				if _, err := tg.Put(ctx, n, strings.NewReader("content of "+n)); err != nil {
					t.Fatal(err)
				}
			}
			got, err := tg.List(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff([]string{"20261207T090000Z", "20261207T100000Z", "binlog", "blobs"}, got); d != "" {
				t.Errorf("List(\"\") (-want +got):\n%s", d)
			}
			if got, _ := tg.List(ctx, "20261207T090000Z"); !cmp.Equal(got, []string{"db.xbstream", "manifest.json"}) {
				t.Errorf("List(id) = %v", got)
			}
			for n, want := range map[string]bool{"20261207T090000Z": true, "20261207T090000Z/db.xbstream": true, "20261207T09": false, "nothing": false} {
				if has, err := tg.Has(ctx, n); err != nil || has != want {
					t.Errorf("Has(%q) = %v, %v; want %v", n, has, err, want)
				}
			}
			r, err := tg.Open(ctx, "blobs/ab/abcd")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(r)
			r.Close()
			if string(b) != "content of blobs/ab/abcd" {
				t.Errorf("Open = %q", b)
			}
			if _, err := tg.Open(ctx, "20261207T090000Z/files.json"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Open of a missing object = %v, want ErrNotFound", err)
			}
			if err := tg.RemoveAll(ctx, "20261207T090000Z"); err != nil {
				t.Fatal(err)
			}
			if got, _ := tg.List(ctx, ""); !cmp.Equal(got, []string{"20261207T100000Z", "binlog", "blobs"}) {
				t.Errorf("after RemoveAll: %v", got)
			}
			if err := tg.RemoveAll(ctx, ""); err == nil {
				t.Error("RemoveAll of the whole target was allowed")
			}
		})
	}
}

// TestBackupS3 backs up to versitygw, verifies and restores from it; an
// unreachable bucket is a clear error that writes nothing.
func TestBackupS3(t *testing.T) {
	db := startMember(t)
	ctx := context.Background()
	db.sql(t, "CREATE DATABASE wordpress; CREATE TABLE wordpress.wp_posts (id INT PRIMARY KEY AUTO_INCREMENT, title TEXT); INSERT INTO wordpress.wp_posts (title) VALUES ('one'), ('two');")
	s3, gw := s3Settings(t)
	target, err := OpenTarget(ctx, "s3://backups/site", s3)
	if err != nil {
		t.Fatal(err)
	}
	files := &fakeFiles{blobs: map[string][]byte{}}
	files.add("media")
	o := Options{Tools: db.tools, Scratch: t.TempDir()}
	src := Source{Member: db.m, Database: "wordpress", Files: files, Secrets: map[string]string{"admin-password": "pw\n"}}
	m, err := Run(ctx, src, target, o)
	if err != nil {
		t.Fatal(err)
	}
	if listed, err := List(ctx, target); err != nil || len(listed) != 1 || listed[0].ID != m.ID {
		t.Fatalf("List = %+v, %v", listed, err)
	}
	if _, err := Verify(ctx, target, m.ID, o); err != nil {
		t.Fatalf("verify: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "restored")
	req := RestoreRequest{ID: m.ID, Dir: dir, MemberDir: "db/db-1", FilesDir: "files", Files: restoreFiles, Prepared: galera.MarkInitialized}
	if _, err := Restore(ctx, target, req, o); err != nil {
		t.Fatal(err)
	}
	if got := titles(t, db.tools, filepath.Join(dir, "db/db-1/data")); got != "one,two" {
		t.Errorf("restored posts %q", got)
	}
	// Damage in the bucket: verify says so.
	flip(t, filepath.Join(gw.Data, "backups", "site", m.ID, ArtSecrets), 0)
	if _, err := Verify(ctx, target, m.ID, o); !errors.Is(err, ErrCorrupt) {
		t.Errorf("verify of a damaged object = %v, want ErrCorrupt", err)
	}

	bad := s3
	bad.Endpoint = "http://127.71.251.1:9" // nothing listens there
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := OpenTarget(tctx, "s3://backups/site", bad); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("unreachable endpoint: %v", err)
	}
	if _, err := OpenTarget(ctx, "s3://nobucket/site", s3); err == nil || !strings.Contains(err.Error(), "no such bucket") {
		t.Errorf("missing bucket: %v", err)
	}
}
