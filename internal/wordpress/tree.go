// Package wordpress provisions the site: the site tree copied from Debian's
// wordpress package, wp-config.php rendered by us, and the one-time install
// without a web form. The PHP it runs is embedded in the binary.
package wordpress

import (
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"

	"github.com/scalepress/scalepress/internal/fileperm"
)

// skipAtRoot are files of Debian's package that must not reach a docroot:
// Debian's wp-config.php dispatches to /etc/wordpress, .htaccess links there.
var skipAtRoot = map[string]bool{"wp-config.php": true, ".htaccess": true}

// CopyTree copies the WordPress tree src to dst, dereferencing symlinks
// (Debian links some files into other packages). It writes into a temporary
// sibling directory and renames it into place, so dst is complete or absent.
// dst must not exist.
func CopyTree(src, dst string, logger *slog.Logger) error {
	if _, err := os.Stat(filepath.Join(src, "wp-settings.php")); err != nil {
		return fmt.Errorf("copy tree: %s is not a WordPress tree (install the Debian package wordpress: scripts/install-deps.sh): %w", src, err)
	}
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("copy tree: %s already exists", dst)
	}
	tmp := dst + ".partial"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("copy tree: %w", err)
	}
	if err := copyDir(src, tmp, true, logger); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("copy tree %s: %w", src, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("copy tree: %w", err)
	}
	return nil
}

func copyDir(src, dst string, root bool, logger *slog.Logger) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if root && skipAtRoot[e.Name()] {
			continue
		}
		s, d := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
		info, err := os.Stat(s) // follows symlinks
		if err != nil {
			if logger != nil {
				logger.Warn("skipping unreadable entry in WordPress tree", "path", s, "err", err)
			}
			continue
		}
		switch {
		case info.IsDir():
			if err := copyDir(s, d, false, logger); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			if err := copyFile(s, d, info.Mode().Perm()); err != nil {
				return err
			}
		}
	}
	return nil
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm|0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// SetPermissions makes a tree follow policy (internal/fileperm): every mode
// as the policy says and, with chown, every file owned by uid and group gid
// (the sync agent's user and the PHP user's group), so that PHP writes only
// where the policy lets it. wp-config.php is left as it is (its writer sets
// it). The directories WordPress writes to first (uploads, upgrade) are made
// when missing.
func SetPermissions(docroot string, policy fileperm.Policy, chown bool, uid, gid int) error {
	for _, d := range []string{"uploads", "upgrade"} {
		if err := os.MkdirAll(filepath.Join(docroot, "wp-content", d), 0o755); err != nil {
			return fmt.Errorf("permissions: %w", err)
		}
	}
	err := filepath.WalkDir(docroot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(docroot, p)
		rel = filepath.ToSlash(rel)
		if rel == "wp-config.php" || d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok && info.Mode().IsRegular() && st.Nlink > 1 {
			// Linked from the link pool (ADR 29): changing it here would
			// change every node's copy. The filesync agent made it with
			// its owner and mode and replaces it when they must change.
			return nil
		}
		if chown {
			if err := os.Lchown(p, uid, gid); err != nil {
				return err
			}
		}
		if rel == "." {
			rel = ""
		}
		if want := policy.Mode(rel, d.IsDir(), info.Mode().Perm()); info.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != want {
			return os.Chmod(p, want)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("permissions %s: %w", docroot, err)
	}
	return nil
}
