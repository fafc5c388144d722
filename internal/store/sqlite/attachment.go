package sqlite

import (
	"context"
	"database/sql"
	"io"
	"net/http"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// The attachment store of a SQLite deployment: bytes in files under the data
// directory (fileBlobs), links in the attachment_links table.

// UploadOffset implements domain.AttachmentStore.
func (s *Store) UploadOffset(ctx context.Context, id string) (int64, error) {
	return s.files.offset(id)
}

// AppendUpload implements domain.AttachmentStore.
func (s *Store) AppendUpload(ctx context.Context, id string, offset int64, r io.Reader, now time.Time) (int64, error) {
	if r == nil {
		r = http.NoBody
	}
	return s.files.append(id, offset, r, now)
}

// CommitUpload implements domain.AttachmentStore.
func (s *Store) CommitUpload(ctx context.Context, id, sha256 string, size int64, now time.Time) error {
	return s.files.commit(id, sha256, size, now)
}

// DeleteUpload implements domain.AttachmentStore.
func (s *Store) DeleteUpload(ctx context.Context, id string) error {
	return s.files.remove(id)
}

// ExpireUploads implements domain.AttachmentStore.
func (s *Store) ExpireUploads(ctx context.Context, before time.Time) (int, error) {
	return s.files.expire(before)
}

// OpenBlob implements domain.AttachmentStore.
func (s *Store) OpenBlob(ctx context.Context, sha256 string) (domain.Blob, error) {
	return s.files.open(sha256)
}

// PutAttachmentLink implements domain.AttachmentStore.
func (s *Store) PutAttachmentLink(ctx context.Context, l domain.AttachmentLink) error {
	if !s.files.has(l.SHA256) {
		return domain.ErrNotFound
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO attachment_links (project_id, record_id, name, sha256, size, content_type, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (project_id, record_id, name) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size,
				content_type = excluded.content_type, created_at = excluded.created_at`,
			l.ProjectID, l.RecordID, l.Name, l.SHA256, l.Size, l.ContentType, ms(l.CreatedAt))
		return err
	})
}

const linkCols = `project_id, record_id, name, sha256, size, content_type, created_at`

func scanLink(sc scanner) (domain.AttachmentLink, error) {
	var l domain.AttachmentLink
	var at sql.NullInt64
	if err := sc.Scan(&l.ProjectID, &l.RecordID, &l.Name, &l.SHA256, &l.Size, &l.ContentType, &at); err != nil {
		return l, err
	}
	l.CreatedAt = fromMS(at)
	return l, nil
}

// GetAttachmentLink implements domain.AttachmentStore.
func (s *Store) GetAttachmentLink(ctx context.Context, projectID, recordID, name string) (domain.AttachmentLink, error) {
	var l domain.AttachmentLink
	err := s.read(ctx, func(tx *sql.Tx) error {
		var err error
		l, err = scanLink(tx.QueryRowContext(ctx, `SELECT `+linkCols+` FROM attachment_links
			WHERE project_id = ? AND record_id = ? AND name = ?`, projectID, recordID, name))
		return err
	})
	return l, err
}

// ListAttachmentLinks implements domain.AttachmentStore.
func (s *Store) ListAttachmentLinks(ctx context.Context, projectID string, recordIDs []string) (map[string][]domain.AttachmentLink, error) {
	out := map[string][]domain.AttachmentLink{}
	if len(recordIDs) == 0 {
		return out, nil
	}
	err := s.read(ctx, func(tx *sql.Tx) error {
		for lo := 0; lo < len(recordIDs); lo += 500 {
			ids := recordIDs[lo:min(lo+500, len(recordIDs))]
			args := []any{projectID}
			for _, id := range ids {
				args = append(args, id)
			}
			rows, err := tx.QueryContext(ctx, `SELECT `+linkCols+` FROM attachment_links
				WHERE project_id = ? AND record_id IN (`+placeholders(len(ids))+`) ORDER BY record_id, name`, args...)
			if err != nil {
				return err
			}
			for rows.Next() {
				l, err := scanLink(rows)
				if err != nil {
					rows.Close()
					return err
				}
				out[l.RecordID] = append(out[l.RecordID], l)
			}
			if err := rows.Close(); err != nil {
				return err
			}
			if err := rows.Err(); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// CollectBlobs implements domain.AttachmentStore.
func (s *Store) CollectBlobs(ctx context.Context, before time.Time) (int, error) {
	return s.files.collect(before, func(sum string) (bool, error) {
		var n int
		err := s.read(ctx, func(tx *sql.Tx) error {
			return tx.QueryRowContext(ctx, `SELECT count(*) FROM attachment_links WHERE sha256 = ?`, sum).Scan(&n)
		})
		return n > 0, err
	})
}

// CountBlobs counts the distinct attachment files held (for operators and
// tests: identical bytes count once).
func (s *Store) CountBlobs(ctx context.Context) (int, error) {
	return s.files.count()
}
