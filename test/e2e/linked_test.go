package e2e

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// linkedBlock is TestLinkedDocroot's loopback block.
const linkedBlock = 86

// asUser runs sh -c script as the named user, with its groups, the way
// php-fpm runs a worker, and returns the error and output.
func asUser(t *testing.T, name, script string) (string, error) {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("user %s: %v", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	var groups []uint32
	if ids, err := u.GroupIds(); err == nil {
		for _, g := range ids {
			n, _ := strconv.Atoi(g)
			groups = append(groups, uint32(n))
		}
	}
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups}}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func inode(t *testing.T, p string) (ino, links uint64, uid uint32, mode os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return st.Ino, uint64(st.Nlink), st.Uid, fi.Mode()
}

// TestLinkedDocroot (ADR 29): on the default stack (run as root: PHP as
// www-data, the filesync agents as scalepress) the nodes' docroots share
// the inodes of the files PHP may not write, linked from the machine's
// link pool, and copy the ones it may write. The PHP user can neither
// write nor chmod a linked file, so no node, the pool or the store
// changes; a change to a linked file reaches the nodes as a new file.
func TestLinkedDocroot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the stack runs PHP as another user only as root; run the e2e tier as root")
	}
	s := newStack(t, linkedBlock, 2)
	s.up(t)
	st := s.status(t)
	docroots := inServiceDocroots(st)
	one, two := docroots["node-1"], docroots["node-2"]
	if one == "" || two == "" {
		t.Fatalf("nodes in service: %v", docroots)
	}
	pool := filepath.Join(s.dir, "nodes", ".linkpool")
	if fi, err := os.Stat(pool); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("link pool %s: %v (want a directory 0700)", pool, err)
	}
	scalepress, err := user.Lookup("scalepress")
	if err != nil {
		t.Fatal(err)
	}
	agentUID, _ := strconv.Atoi(scalepress.Uid)

	core := "wp-includes/version.php"
	var theme string // a file PHP may write (themes, while installs are allowed)
	filepath.WalkDir(filepath.Join(one, "wp-content", "themes"), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && theme == "" {
			theme, _ = filepath.Rel(one, p)
		}
		return nil
	})
	if theme == "" {
		t.Fatal("no theme file in node-1's docroot")
	}
	// A linked core file the files API serves (it never serves PHP
	// source), to compare the store's copy too.
	asset := "wp-includes/css/dist/block-library/style.min.css"
	original, err := os.ReadFile(filepath.Join(one, asset))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("files PHP may not write are one inode in every docroot, the others copies", func(t *testing.T) {
		i1, links, uid, mode := inode(t, filepath.Join(one, core))
		i2, _, _, _ := inode(t, filepath.Join(two, core))
		if i1 != i2 || links < 3 {
			t.Errorf("%s: inodes %d and %d, %d links: not linked from the pool into both docroots", core, i1, i2, links)
		}
		if int(uid) != agentUID || mode.Perm() != 0o644 {
			t.Errorf("%s: uid %d mode %v, want the agent's uid %d and 0644", core, uid, mode, agentUID)
		}
		t1, tl, _, tmode := inode(t, filepath.Join(one, theme))
		t2, _, _, _ := inode(t, filepath.Join(two, theme))
		if t1 == t2 || tl != 1 || tmode.Perm()&0o020 == 0 {
			t.Errorf("%s (mode %v, PHP may write it): inodes %d and %d, %d links; want a copy of its own on each node", theme, tmode, t1, t2, tl)
		}
		var shared, total int
		filepath.WalkDir(two, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				total++
				if _, l, _, _ := inode(t, p); l > 1 {
					shared++
				}
			}
			return nil
		})
		t.Logf("node-2: %d of %d files linked from the pool", shared, total)
	})

	t.Run("the PHP user cannot write or chmod a linked file; nothing changes", func(t *testing.T) {
		p := filepath.Join(one, asset)
		out, err := asUser(t, "www-data", "printf '<?php // owned' >> '"+p+"'")
		if _, links, _, _ := inode(t, p); links < 3 {
			t.Fatalf("%s is not linked (%d links)", asset, links)
		}
		if err == nil {
			t.Errorf("www-data appended to the linked %s: %s", asset, out)
		}
		out2, err := asUser(t, "www-data", "chmod 666 '"+p+"'")
		if err == nil {
			t.Errorf("www-data chmod-ed the linked %s: %s", asset, out2)
		}
		t.Logf("refused: %s; %s", strings.TrimSpace(out), strings.TrimSpace(out2))
		for _, d := range []string{one, two} {
			got, err := os.ReadFile(filepath.Join(d, asset))
			if err != nil || !bytes.Equal(got, original) {
				t.Errorf("%s changed in %s (%v)", asset, d, err)
			}
			if _, _, _, mode := inode(t, filepath.Join(d, asset)); mode.Perm() != 0o644 {
				t.Errorf("%s in %s: mode %v", asset, d, mode)
			}
		}
		req, _ := http.NewRequest("GET", "http://"+st.Files.Addr+"/v1/files/"+asset, nil)
		req.Header.Set("Authorization", "Bearer "+s.filesKey(t).Issue("edge-1"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(got, original) {
			t.Errorf("the store's %s: %d, changed %v", asset, resp.StatusCode, !bytes.Equal(got, original))
		}
	})

	t.Run("a change to a linked file reaches every node as a new file", func(t *testing.T) {
		rel := "wp-includes/e2e-linked.php"
		write := func(content string) {
			tmp := filepath.Join(one, "wp-includes", "e2e-new.tmp") // *.tmp is never synced
			if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, filepath.Join(one, rel)); err != nil {
				t.Fatal(err)
			}
		}
		wait := func(content string) {
			deadline := time.Now().Add(10 * time.Second)
			for {
				got, err := os.ReadFile(filepath.Join(two, rel))
				if err == nil && string(got) == content {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s on node-2: %q %v, want %q", rel, got, err, content)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		write("<?php // v1")
		wait("<?php // v1")
		if _, links, _, _ := inode(t, filepath.Join(two, rel)); links < 2 {
			t.Errorf("%s on node-2 not linked from the pool (%d links)", rel, links)
		}
		kept := filepath.Join(s.dir, "v1-inode")
		if err := os.Link(filepath.Join(two, rel), kept); err != nil {
			t.Fatal(err)
		}
		write("<?php // v2")
		wait("<?php // v2")
		if got, _ := os.ReadFile(kept); string(got) != "<?php // v1" {
			t.Errorf("the v1 inode was written in place: %q", got)
		}
	})
}
