package main

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// dbFile is the SQLite store's file in the data directory.
const dbFile = "fieldsync.db"

// backupUsage is the help of fieldsync backup and restore.
const backupUsage = `Usage: fieldsync backup [flags] FILE
       fieldsync restore [flags] FILE

  backup    write a consistent copy of the SQLite store, and of the other files
            of the data directory (attachments), to FILE (a .tar.gz), while
            the server runs and takes pushes. The secret key and the generated
            admin password are left out: keep the secret key apart from the
            backups (README: "Backup and restore").
  restore   put the copy in FILE back into the data directory. It refuses while
            a server (or a backup) uses the store: stop the server first. The
            store it replaces is kept beside it as fieldsync.db.replaced-TIME.

  Both take the server's flags (the data directory: -data-dir); with a MongoDB
  store use mongodump and mongorestore instead (README).
`

// notBackedUp are the names in the data directory a backup leaves out: the
// store's live files (the snapshot replaces them), the lock, the secrets
// (kept apart from backups, or a stolen backup could mint tokens), the
// certificate cache (its keys are reissued), and what restore set aside.
func notBackedUp(rel string, d fs.DirEntry) bool {
	switch rel {
	case dbFile, dbFile + "-wal", dbFile + "-shm", dbFile + "-journal", dataLockFile, secretKeyFile, adminPasswordFile, acmeCacheDir:
		return true
	}
	return strings.HasPrefix(rel, dbFile+".replaced-") || strings.HasPrefix(rel, ".restore-") || strings.HasPrefix(rel, ".backup-")
}

// Backup writes the store and the other files of the data directory to file
// (fieldsync backup). The store is copied first, as one SQLite snapshot
// (VACUUM INTO): it holds every write acknowledged before the copy began, and
// is consistent whatever is pushed meanwhile. The other files (attachments)
// are copied after it, so every file a record of the snapshot names was
// written before it and is in the archive. The archive is written beside file
// and renamed into place, so a backup that fails half-way never looks whole.
func (m *Main) Backup(ctx context.Context, file string) error {
	if storeKind(m.Config.Store) != "sqlite" {
		return errors.New("fieldsync backup copies the SQLite store; back a MongoDB store up with mongodump (README: Backup and restore)")
	}
	if _, err := os.Stat(filepath.Join(m.Config.DataDir, dbFile)); err != nil {
		return fmt.Errorf("no store to back up in %s: %w", m.Config.DataDir, err)
	}
	st, err := m.OpenStore(ctx, nil)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	m.Store = st
	backuper, ok := st.(interface {
		Backup(ctx context.Context, dst string) error
	})
	if !ok {
		return errors.New("this store cannot be backed up online")
	}
	file, err = filepath.Abs(file)
	if err != nil {
		return err
	}
	tmpDir, err := os.MkdirTemp(filepath.Dir(file), ".backup-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmpDir)
	snapshot := filepath.Join(tmpDir, dbFile)
	started := time.Now()
	if err := backuper.Backup(ctx, snapshot); err != nil {
		return err
	}

	part := filepath.Join(tmpDir, "archive")
	out, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	zw := gzip.NewWriter(out)
	tw := tar.NewWriter(zw)
	if err := addFile(tw, snapshot, dbFile); err != nil {
		return err
	}
	files := 1
	dataDir, err := filepath.Abs(m.Config.DataDir)
	if err != nil {
		return err
	}
	err = filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dataDir, path)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if notBackedUp(rel, d) || path == file || strings.HasPrefix(path, tmpDir) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil // directories are implied by their files; links are not followed
		}
		files++
		return addFile(tw, path, rel)
	})
	if err != nil {
		return fmt.Errorf("copy the data directory: %w", err)
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := out.Sync(); err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if err := os.Rename(part, file); err != nil {
		return err
	}
	fi, err := os.Stat(file)
	if err != nil {
		return err
	}
	m.Logger.Info("backup written", "file", file, "files", files, "bytes", fi.Size(), "took", time.Since(started).Round(time.Millisecond).String())
	fmt.Fprintf(m.Out, "Backup of %s written to %s (%d files, %d bytes). It holds every write acknowledged before %s. Keep the secret key apart from it.\n",
		m.Config.DataDir, file, files, fi.Size(), started.UTC().Format(time.RFC3339))
	return nil
}

// addFile adds the file at path to tw under name.
func addFile(tw *tar.Writer, path, name string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	h, err := tar.FileInfoHeader(fi, "")
	if err != nil {
		return err
	}
	h.Name = name
	h.Uname, h.Gname, h.Uid, h.Gid = "", "", 0, 0
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	// A file that grows while it is copied (an attachment being written) is
	// copied up to the size it had when it was opened.
	_, err = io.CopyN(tw, f, fi.Size())
	return err
}
