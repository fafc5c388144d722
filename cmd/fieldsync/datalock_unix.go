//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// dataLockFile is the file in the data directory that every process using the
// SQLite store there holds a lock on (see lockDataDir).
const dataLockFile = "fieldsync.lock"

// errDataDirInUse is returned by lockDataDir when the lock is held the other
// way.
var errDataDirInUse = errors.New("in use")

// lockDataDir takes an advisory lock (flock) on the lock file of the data
// directory dir: shared for the processes that use the store (servers,
// fieldsync backup, fieldsync keys), which may be several at once on one file,
// and exclusive for fieldsync restore, which must be alone. It never waits: a
// lock held the other way is errDataDirInUse. The kernel drops the lock when
// the process ends, however it ends, so a crashed server never leaves a stale
// lock behind (the weakness of a PID file).
//
// Why not SQLite's own locks: in WAL mode an idle connection holds none that
// another process could test without disturbing it, so "no one has the file
// open" cannot be asked of SQLite.
func lockDataDir(dir string, exclusive bool) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, dataLockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	if err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errDataDirInUse
		}
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}
