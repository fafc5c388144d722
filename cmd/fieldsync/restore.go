package main

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/internal/store/sqlite"
)

// Restore puts the backup in file (made by Backup) into the data directory
// (fieldsync restore). It takes the data directory's lock exclusively first,
// so it refuses while any server, backup or other command uses the store
// there, and no server can start until it is done. The archive is unpacked
// into a directory beside the store and the copy of the store checked
// (SQLite's integrity check, and that this binary can open it) before
// anything in the data directory changes; the store it replaces is renamed,
// never deleted.
func (m *Main) Restore(ctx context.Context, file string) error {
	if storeKind(m.Config.Store) != "sqlite" {
		return errors.New("fieldsync restore restores a SQLite store; restore a MongoDB store with mongorestore (README: Backup and restore)")
	}
	dir := m.Config.DataDir
	unlock, err := lockDataDir(dir, true)
	if errors.Is(err, errDataDirInUse) {
		return fmt.Errorf("the store in %s is in use (a fieldsync server, backup or command has it open): stop the server first, then restore", dir)
	}
	if err != nil {
		return err
	}
	defer unlock()

	tmpDir, err := os.MkdirTemp(dir, ".restore-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmpDir)
	files, err := unpack(file, tmpDir)
	if err != nil {
		return fmt.Errorf("read %s: %w", file, err)
	}
	if err := sqlite.Verify(ctx, filepath.Join(tmpDir, dbFile)); err != nil {
		return fmt.Errorf("%s holds no usable store: %w", file, err)
	}

	// Set the current store aside, its WAL with it (they are a pair: the WAL
	// may hold commits the file does not yet), then move the copy in.
	db := filepath.Join(dir, dbFile)
	aside := ""
	if _, err := os.Stat(db); err == nil {
		aside = db + ".replaced-" + time.Now().UTC().Format("20060102T150405Z")
		for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
			if err := os.Rename(db+suffix, aside+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("set the current store aside: %w", err)
			}
		}
	}
	for _, rel := range files {
		dst := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return err
		}
		if err := os.Rename(filepath.Join(tmpDir, filepath.FromSlash(rel)), dst); err != nil {
			return err
		}
	}
	m.Logger.Info("backup restored", "file", file, "data_dir", dir, "files", len(files), "replaced", aside)
	msg := fmt.Sprintf("Restored %s into %s (%d files).", file, dir, len(files))
	if aside != "" {
		msg += " The store it replaced is kept as " + aside + "; delete it once the server runs well."
	}
	if _, err := os.Stat(filepath.Join(dir, secretKeyFile)); err != nil && m.Config.SecretKey == "" && m.Config.SecretKeyFile == "" {
		msg += " No secret key is set and " + secretKeyFile + " is not in the data directory: put back the one of the backed-up server (FIELDSYNC_SECRET_KEY_FILE), or the signing keys in the store cannot be used."
	}
	fmt.Fprintln(m.Out, msg)
	return nil
}

// unpack extracts the regular files of the .tar.gz at file into dir and
// returns their names (slash-separated, relative). Names that would leave dir
// are refused.
func unpack(file, dir string) ([]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("not a fieldsync backup (.tar.gz): %w", err)
	}
	tr := tar.NewReader(zr)
	var names []string
	seenDB := false
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := path.Clean(h.Name)
		if !filepath.IsLocal(filepath.FromSlash(name)) || strings.HasPrefix(name, ".restore-") {
			return nil, fmt.Errorf("unsafe name %q in the archive", h.Name)
		}
		dst := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return nil, err
		}
		out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, err
		}
		if _, err := io.Copy(out, tr); err != nil {
			out.Close()
			return nil, err
		}
		if err := out.Sync(); err != nil {
			out.Close()
			return nil, err
		}
		if err := out.Close(); err != nil {
			return nil, err
		}
		names = append(names, name)
		seenDB = seenDB || name == dbFile
	}
	if err := zr.Close(); err != nil {
		return nil, err
	}
	if !seenDB {
		return nil, fmt.Errorf("no %s in the archive", dbFile)
	}
	return names, nil
}
