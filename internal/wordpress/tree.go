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

// Chown gives the PHP user the directories WordPress writes to (uploads,
// plugin and theme installs, upgrades): wp-content and everything in it.
func Chown(docroot string, uid, gid int) error {
	root := filepath.Join(docroot, "wp-content")
	for _, d := range []string{"uploads", "upgrade"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		return fmt.Errorf("chown %s: %w", root, err)
	}
	return nil
}
