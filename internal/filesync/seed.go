package filesync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// seedBatch is the number of changes Seed commits in one push.
const seedBatch = 512

// Seed fills an empty files store with the tree under root: every directory
// (mkdir) and regular file (put, blob uploaded first) that Rules allow,
// pushed in batches with origin ControllerID (the identity of the token c
// must send: the files API binds a push's origin to its caller). Symlinks, other special files,
// excluded paths, the agent's temporary files and files over
// Rules.MaxFileSize are skipped. It returns the number of changes pushed.
//
// Seed is for a store that is still empty: it never deletes, so on a store
// that already holds a tree it only adds and overwrites.
func Seed(ctx context.Context, c *Client, root string, rules Rules) (int, error) {
	pr, err := compileRules(rules)
	if err != nil {
		return 0, fmt.Errorf("filesync: seed: %w", err)
	}
	var batch []Change
	total := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if _, err := c.Push(ctx, PushRequest{Origin: ControllerID, Changes: batch}); err != nil {
			return err
		}
		total += len(batch)
		batch = batch[:0]
		return nil
	}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == root {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if pr.ignored(rel) || pr.checkPath(rel) != nil {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		mode := uint32(info.Mode().Perm())
		switch {
		case d.IsDir():
			batch = append(batch, Change{Op: OpMkdir, Path: rel, Mode: mode, MTime: info.ModTime().UnixNano()})
		case info.Mode().IsRegular():
			if info.Size() > rules.MaxFileSize {
				return nil
			}
			hash, err := seedUpload(ctx, c, path, info.Size())
			if err != nil {
				return err
			}
			batch = append(batch, Change{Op: OpPut, Path: rel, Mode: mode, Size: info.Size(), Hash: hash, MTime: info.ModTime().UnixNano()})
		default:
			return nil // symlinks, sockets, devices: never synced
		}
		if len(batch) >= seedBatch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return total, fmt.Errorf("filesync: seed %s: %w", root, err)
	}
	return total, nil
}

// seedUpload hashes the file at path and uploads it unless the store has it.
func seedUpload(ctx context.Context, c *Client, path string, size int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	hash := hex.EncodeToString(h.Sum(nil))
	if ok, err := c.HasBlob(ctx, hash); err == nil && ok {
		return hash, nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	if err := c.PutBlob(ctx, hash, io.LimitReader(f, size), size); err != nil {
		return "", err
	}
	return hash, nil
}
