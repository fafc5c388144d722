package sqlite

import (
	"context"
	"database/sql/driver"
	"os"
	"time"
)

// The WAL file, and why the store checkpoints it when writes pause.
//
// Every commit appends its pages to <file>-wal; a checkpoint copies them into
// the database file. wal_autocheckpoint (see dsn) lets the WAL grow to
// ~40 MB before a commit checkpoints it, so that pages every batch touches are
// copied once per 40 MB rather than once per batch; but SQLite then reuses the
// WAL file from its start without shrinking it, so the data directory keeps
// those 40 MB for ever: 2 KB a record for a project of 20,000 (issue 16).
//
// So once writes have paused for walIdleAfter and the WAL holds more than
// walIdleMinBytes, the store checkpoints it with TRUNCATE, which copies every
// page and empties the file. Nothing about durability changes: a commit is
// durable in the WAL when it is acknowledged, and a checkpoint copies and
// syncs the database file before it lets the WAL go. The checkpoint takes this
// process's write turn (writeGate), so it never makes a writer of this process
// wait in SQLite's busy handler; it waits at most half a second for readers, and when they do not let go it copies what it can, as a passive
// checkpoint does, and leaves the file for the next pause.
const (
	walIdleAfter    = time.Second
	walIdleMinBytes = 256 << 10
)

// checkpointWhenIdle runs until Close: see above. wrote is poked after every
// committed write.
func (s *Store) checkpointWhenIdle(path string) {
	defer close(s.idleDone)
	t := time.NewTimer(walIdleAfter)
	t.Stop()
	for {
		select {
		case <-s.closing:
			t.Stop()
			return
		case <-s.wrote:
			t.Reset(walIdleAfter)
		case <-t.C:
			if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() > walIdleMinBytes {
				s.checkpoint()
			}
		}
	}
}

// checkpoint runs PRAGMA wal_checkpoint(TRUNCATE) on a connection of its own,
// with a short busy timeout. Errors are not reported: a checkpoint that did not
// happen loses nothing, and the next pause tries again.
func (s *Store) checkpoint() {
	select {
	case s.writeGate <- struct{}{}:
	case <-s.closing:
		return
	}
	defer func() { <-s.writeGate }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return
	}
	defer conn.Close()
	ok := false
	defer func() {
		if !ok {
			// The connection may keep the short busy timeout: drop it rather
			// than give it back to the pool.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	if _, err := conn.ExecContext(ctx, `PRAGMA busy_timeout = 500`); err != nil {
		return
	}
	var busy, logPages, done int
	_ = conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logPages, &done)
	if _, err := conn.ExecContext(ctx, `PRAGMA busy_timeout = 10000`); err != nil {
		return
	}
	ok = true
}

// poke tells checkpointWhenIdle that a write committed.
func (s *Store) poke() {
	select {
	case s.wrote <- struct{}{}:
	default:
	}
}
