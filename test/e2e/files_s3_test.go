package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/token"
	"github.com/scalepress/scalepress/test/tools"
)

// TestFilesS3: the files role keeps the tree in an S3 bucket (versitygw on
// 127.68.5.1). Uploads through WordPress reach every node and the bucket;
// kill -9 of the files role during a stream of uploads loses nothing
// acknowledged; and a files role started on an empty local directory
// resumes from the bucket with the same sequence numbers (no reseeding).
// Block 68.
func TestFilesS3(t *testing.T) {
	gw := tools.StartVersitygw(t, "127.68.5.1:7070")
	gw.MakeBucket(t, "site")
	s := newStack(t, 68, 2)
	keys := filepath.Join(s.dir, "s3")
	if err := os.Mkdir(keys, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"access": gw.AccessKey, "secret": gw.SecretKey} {
		if err := os.WriteFile(filepath.Join(keys, name), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig := func(endpoint, bucket, accessFile string) {
		store := fmt.Sprintf("  store:\n    kind: s3\n    endpoint: %s\n    bucket: %s\n    prefix: e2e\n    access_key_file: %s\n    secret_key_file: %s\n",
			endpoint, bucket, accessFile, filepath.Join(keys, "secret"))
		if err := os.WriteFile(s.config, []byte(stackConfig(68, 2)+store), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("a bad store is refused at up, naming the field", func(t *testing.T) {
		open := filepath.Join(keys, "access-0644")
		if err := os.WriteFile(open, []byte(gw.AccessKey+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name, endpoint, bucket, access, want string
		}{
			{"unreachable endpoint", "http://127.68.5.2:7070", "site", filepath.Join(keys, "access"), "files.store.endpoint"},
			{"missing bucket", gw.Endpoint, "nosuchbucket", filepath.Join(keys, "access"), "files.store.bucket"},
			{"key file others may read", gw.Endpoint, "site", open, "files.store.access_key_file"},
		}
		for _, tt := range tests {
			writeConfig(tt.endpoint, tt.bucket, tt.access)
			r := s.cli(t, "up", "--detach")
			if r.code != 2 || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("%s: up exit %d, stderr %q; want 2 naming %s", tt.name, r.code, r.stderr, tt.want)
			}
			if st := s.cli(t, "status", "--json"); st.code == 0 {
				t.Errorf("%s: something runs after the refused up: %s", tt.name, st.stdout)
			}
		}
	})
	writeConfig(gw.Endpoint, "site", filepath.Join(keys, "access"))
	bucket := filepath.Join(gw.Data, "site", "e2e")
	inBucket := func(name string) bool {
		_, err := os.Stat(filepath.Join(bucket, filepath.FromSlash(name)))
		return err == nil
	}

	took := s.up(t)
	st := s.status(t)
	readToken := s.filesKey(t).Issue("edge-1")
	// filesSeq asks the files role itself (status refreshes its seq only
	// every second); 0 while it is down.
	filesSeq := func() uint64 {
		req, _ := http.NewRequest("GET", "http://"+st.Files.Addr+"/v1/status", nil)
		token.SetBearer(req.Header, readToken)
		resp, err := (&http.Client{Timeout: 2 * time.Second}).Do(req)
		if err != nil {
			return 0
		}
		defer resp.Body.Close()
		var fst api.FilesStoreStatus
		json.NewDecoder(resp.Body).Decode(&fst)
		return fst.Seq
	}
	if st.Files == nil || st.Files.State != "up" || st.Files.Seq == 0 {
		t.Fatalf("files status after up: %+v", st.Files)
	}
	if !inBucket(fmt.Sprintf("log/%020d.log", 1)) {
		t.Fatalf("the seeded log is not in the bucket (%s)", bucket)
	}
	t.Logf("up in %s with the files store in %s, seq %d", took.Round(time.Millisecond), gw.Endpoint, st.Files.Seq)

	pw, _ := os.ReadFile(st.Admin.PasswordFile)
	b := newBrowser(t)
	if p := b.login(s.site, "admin", strings.TrimSpace(string(pw))); !strings.Contains(p.url, "/wp-admin/") {
		t.Fatalf("login failed: %s", p.url)
	}
	nonce := b.restNonce(s.site)
	var uploaded []string
	relOf := func(u string) string {
		rel, ok := strings.CutPrefix(u, s.site+"/")
		if !ok {
			t.Fatalf("source_url %s is not on the site %s", u, s.site)
		}
		return rel
	}
	// blobInBucket checks that rel's content, as node docroot has it, is a
	// blob in the bucket.
	blobInBucket := func(docroot, rel string) {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(docroot, filepath.FromSlash(rel)))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		h := hex.EncodeToString(sum[:])
		if !inBucket("blobs/" + h[:2] + "/" + h) {
			t.Errorf("the blob of %s (%s) is not in the bucket", rel, h[:12])
		}
	}

	t.Run("an upload is on every node and in the bucket", func(t *testing.T) {
		docroots := inServiceDocroots(st)
		u := b.uploadMedia(s.site, nonce, fmt.Sprintf("e2e-s3-%d.jpg", time.Now().UnixNano()), tinyJPEG(t, 1))
		rel := relOf(u)
		uploaded = append(uploaded, rel)
		d := waitEverywhere(t, docroots, rel, true, 5*time.Second)
		for _, dr := range docroots {
			blobInBucket(dr, rel)
		}
		t.Logf("on %d nodes %s after the upload returned", len(docroots), d.Round(time.Millisecond))
	})

	t.Run("kill -9 of files during uploads loses nothing acknowledged", func(t *testing.T) {
		st := s.status(t)
		pid := st.Files.PID
		var urls []string
		var uploadErr error
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := range 8 {
				u, err := b.tryUploadMedia(s.site, nonce, fmt.Sprintf("e2e-s3-kill-%d-%d.jpg", i, time.Now().UnixNano()), tinyJPEG(t, 10+i))
				if err != nil {
					uploadErr = err
					return
				}
				urls = append(urls, u)
			}
		}()
		// Kill it once the stream of uploads is reaching it.
		seq0 := filesSeq()
		for t0 := time.Now(); filesSeq() <= seq0; time.Sleep(5 * time.Millisecond) {
			if time.Since(t0) > 15*time.Second {
				t.Fatalf("files seq still %d 15 s after the uploads began", seq0)
			}
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill -9 files (pid %d): %v", pid, err)
		}
		<-done
		if uploadErr != nil {
			t.Fatalf("an upload failed while files was down: %v", uploadErr)
		}
		back, d := s.waitNodes(t, "files back", 30*time.Second, func(st api.Status) bool {
			return st.Files != nil && st.Files.State == "up" && st.Files.PID != pid && st.Files.PID > 0
		})
		t.Logf("files back (pid %d → %d) after %s", pid, back.Files.PID, d.Round(time.Millisecond))
		docroots := inServiceDocroots(back)
		for _, u := range urls {
			rel := relOf(u)
			waitEverywhere(t, docroots, rel, true, 15*time.Second)
			for _, dr := range docroots {
				blobInBucket(dr, rel)
			}
			uploaded = append(uploaded, rel)
		}
		t.Logf("all %d acknowledged uploads on all %d nodes and in the bucket", len(urls), len(docroots))
	})

	t.Run("a files role on an empty directory resumes from the bucket", func(t *testing.T) {
		before := filesSeq()
		if r := s.cli(t, "down"); r.code != 0 {
			t.Fatalf("down: %d %s", r.code, r.stderr)
		}
		if err := os.RemoveAll(filepath.Join(s.dir, "files")); err != nil {
			t.Fatal(err)
		}
		s.up(t)
		st := s.status(t)
		if got := filesSeq(); st.Files == nil || st.Files.State != "up" || got != before {
			t.Fatalf("files after up on an empty directory: %+v, seq %d; want seq %d (resumed, not reseeded)", st.Files, got, before)
		}
		docroots := inServiceDocroots(st)
		for _, rel := range uploaded {
			waitEverywhere(t, docroots, rel, true, 5*time.Second)
		}
		// The log goes on from there: a new upload gets the next numbers.
		u := b.uploadMedia(s.site, b.restNonce(s.site), fmt.Sprintf("e2e-s3-after-%d.jpg", time.Now().UnixNano()), tinyJPEG(t, 30))
		waitEverywhere(t, docroots, relOf(u), true, 5*time.Second)
		// (status refreshes the files role's seq every second)
		if after := filesSeq(); after <= before {
			t.Errorf("files seq %d after an upload, want more than %d", after, before)
		}
		t.Logf("resumed at seq %d with all %d uploads on %d nodes", before, len(uploaded), len(docroots))
	})
}
