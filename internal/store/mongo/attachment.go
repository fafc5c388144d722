package mongo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// The attachment store of a MongoDB deployment. Everything lives in the
// database, so that every server instance sees every file and a resumed
// upload may land on another instance than its start:
//
//   - attachments.files / attachments.chunks: a GridFS bucket of the complete
//     files, filename = sha256 (unique: identical bytes are stored once). The
//     files document is inserted after the last chunk, so a file is visible
//     only when complete. Chunks are written here rather than through the
//     driver's upload stream, whose 16 MiB buffer per upload would make
//     memory grow with the number of uploads.
//   - uploads: one document per partial upload {_id, offset, updated_at,
//     parts}, and upload_chunks {upload, writer, start, at, data}: an append
//     writes its chunks under a fresh writer id, then moves offset from the
//     value it started at with one conditional update that also adds
//     {start, writer} to parts. A second append racing it loses that update
//     and removes its chunks (ErrStale). Only the chunks of a listed part
//     belong to the upload.
//   - attachment_links: which record holds which file.
type attachmentColls struct {
	files, chunks, uploads, uploadChunks, links *mongodrv.Collection
}

// blobChunkSize is the GridFS chunk size, and the size of the pieces an
// append is cut into: the driver's default, well below the 16 MiB document
// limit.
const blobChunkSize = 255 * 1024

func newAttachmentColls(db *mongodrv.Database) attachmentColls {
	return attachmentColls{
		files:        db.Collection("attachments.files"),
		chunks:       db.Collection("attachments.chunks"),
		uploads:      db.Collection("uploads"),
		uploadChunks: db.Collection("upload_chunks"),
		links:        db.Collection("attachment_links"),
	}
}

func (s *Store) attachmentIndexes() []index {
	a := s.att
	return []index{
		{coll: a.files, name: "by_sha256", keys: bson.D{{Key: "filename", Value: 1}}, unique: true},
		{coll: a.files, name: "by_upload_date", keys: bson.D{{Key: "uploadDate", Value: 1}}},
		{coll: a.chunks, name: "files_id_1_n_1", keys: bson.D{{Key: "files_id", Value: 1}, {Key: "n", Value: 1}}, unique: true},
		{coll: a.uploads, name: "by_updated", keys: bson.D{{Key: "updated_at", Value: 1}}},
		{coll: a.uploadChunks, name: "by_upload", keys: bson.D{{Key: "upload", Value: 1}, {Key: "writer", Value: 1}, {Key: "start", Value: 1}}},
		{coll: a.uploadChunks, name: "by_time", keys: bson.D{{Key: "at", Value: 1}}},
		{coll: a.links, name: "by_record", keys: bson.D{{Key: "project_id", Value: 1}, {Key: "record_id", Value: 1}, {Key: "name", Value: 1}}},
		{coll: a.links, name: "by_sha256", keys: bson.D{{Key: "sha256", Value: 1}}},
	}
}

type uploadPart struct {
	Start  int64  `bson:"start"`
	Writer string `bson:"writer"`
}

type uploadDoc struct {
	ID        string       `bson:"_id"`
	Offset    int64        `bson:"offset"`
	UpdatedAt time.Time    `bson:"updated_at"`
	Parts     []uploadPart `bson:"parts"`
}

type uploadChunkDoc struct {
	Upload string    `bson:"upload"`
	Writer string    `bson:"writer"`
	Start  int64     `bson:"start"`
	At     time.Time `bson:"at"`
	Data   []byte    `bson:"data"`
}

func (s *Store) getUpload(ctx context.Context, id string) (uploadDoc, error) {
	return findOne[uploadDoc](ctx, s.att.uploads, bson.D{{Key: "_id", Value: id}})
}

// UploadOffset implements domain.AttachmentStore.
func (s *Store) UploadOffset(ctx context.Context, id string) (int64, error) {
	u, err := s.getUpload(ctx, id)
	if errors.Is(err, domain.ErrNotFound) {
		return 0, nil
	}
	return u.Offset, err
}

// AppendUpload implements domain.AttachmentStore.
func (s *Store) AppendUpload(ctx context.Context, id string, offset int64, r io.Reader, now time.Time) (int64, error) {
	if r == nil {
		r = http.NoBody
	}
	cur, err := s.UploadOffset(ctx, id)
	if err != nil {
		return 0, err
	}
	if cur != offset {
		return cur, fmt.Errorf("mongo: upload holds %d bytes, not %d: %w", cur, offset, domain.ErrStale)
	}
	writer := randomHex(12)
	buf := make([]byte, blobChunkSize)
	var n int64
	var readErr error
	for readErr == nil {
		k, err := io.ReadFull(r, buf)
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF: //nolint:errorlint // ReadFull's own end-of-input values; a wrapped one is r's failure
			readErr = io.EOF
		case err != nil:
			readErr = err
		}
		if k == 0 {
			continue
		}
		if _, err := s.att.uploadChunks.InsertOne(ctx, uploadChunkDoc{Upload: id, Writer: writer, Start: offset + n, At: now, Data: buf[:k]}); err != nil {
			s.dropWriter(id, writer)
			return offset, translate(err)
		}
		n += int64(k)
	}
	if errors.Is(readErr, io.EOF) {
		readErr = nil
	}
	if n == 0 {
		if offset == 0 && readErr == nil {
			// An empty file is an upload too: it exists, and holds nothing.
			_, err := s.att.uploads.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
				bson.D{{Key: "$setOnInsert", Value: bson.D{{Key: "offset", Value: int64(0)}, {Key: "updated_at", Value: now}, {Key: "parts", Value: bson.A{}}}}},
				options.UpdateOne().SetUpsert(true))
			if err != nil && !isDup(err) {
				return offset, translate(err)
			}
		}
		return offset, readErr
	}
	filter := bson.D{{Key: "_id", Value: id}, {Key: "offset", Value: offset}}
	update := bson.D{
		{Key: "$set", Value: bson.D{{Key: "offset", Value: offset + n}, {Key: "updated_at", Value: now}}},
		{Key: "$push", Value: bson.D{{Key: "parts", Value: uploadPart{Start: offset, Writer: writer}}}},
	}
	res, err := s.att.uploads.UpdateOne(ctx, filter, update, options.UpdateOne().SetUpsert(offset == 0))
	switch {
	case isDup(err) || (err == nil && res.MatchedCount == 0 && res.UpsertedCount == 0):
		s.dropWriter(id, writer)
		cur, _ := s.UploadOffset(ctx, id)
		return cur, fmt.Errorf("mongo: another append to this upload came first: %w", domain.ErrStale)
	case err != nil:
		s.dropWriter(id, writer)
		return offset, translate(err)
	}
	return offset + n, readErr
}

// dropWriter removes the chunks of an append that did not commit. It runs
// detached: the caller may be going away, and the chunks would otherwise wait
// for the expiry sweep.
func (s *Store) dropWriter(id, writer string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = s.att.uploadChunks.DeleteMany(ctx, bson.D{{Key: "upload", Value: id}, {Key: "writer", Value: writer}})
}

// readUpload streams the bytes of an upload's parts, in order, to w.
func (s *Store) readUpload(ctx context.Context, u uploadDoc, w io.Writer) (int64, error) {
	var n int64
	for _, p := range u.Parts {
		cur, err := s.att.uploadChunks.Find(ctx, bson.D{{Key: "upload", Value: u.ID}, {Key: "writer", Value: p.Writer}},
			options.Find().SetSort(bson.D{{Key: "start", Value: 1}}).SetBatchSize(8))
		if err != nil {
			return n, translate(err)
		}
		for cur.Next(ctx) {
			var c struct {
				Data []byte `bson:"data"`
			}
			if err := cur.Decode(&c); err != nil {
				cur.Close(ctx)
				return n, translate(err)
			}
			k, err := w.Write(c.Data)
			n += int64(k)
			if err != nil {
				cur.Close(ctx)
				return n, err
			}
		}
		err = cur.Err()
		cur.Close(ctx)
		if err != nil {
			return n, translate(err)
		}
	}
	return n, nil
}

// gridWriter writes GridFS chunks of one file as bytes come.
type gridWriter struct {
	ctx    context.Context
	chunks *mongodrv.Collection
	fileID bson.ObjectID
	buf    []byte
	n      int32
	length int64
}

func (g *gridWriter) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		k := min(len(p), blobChunkSize-len(g.buf))
		g.buf = append(g.buf, p[:k]...)
		p = p[k:]
		if len(g.buf) == blobChunkSize {
			if err := g.flush(); err != nil {
				return 0, err
			}
		}
	}
	return total, nil
}

func (g *gridWriter) flush() error {
	if len(g.buf) == 0 {
		return nil
	}
	_, err := g.chunks.InsertOne(g.ctx, bson.D{{Key: "files_id", Value: g.fileID}, {Key: "n", Value: g.n}, {Key: "data", Value: g.buf}})
	if err != nil {
		return translate(err)
	}
	g.length += int64(len(g.buf))
	g.n++
	g.buf = g.buf[:0]
	return nil
}

// touchBlob marks blob sum as committed at now, so the collector leaves it
// to the link about to be written; false when it is not held.
func (s *Store) touchBlob(ctx context.Context, sum string, now time.Time) (bool, error) {
	res, err := s.att.files.UpdateOne(ctx, bson.D{{Key: "filename", Value: sum}}, bson.D{{Key: "$set", Value: bson.D{{Key: "uploadDate", Value: now}}}})
	if err != nil {
		return false, translate(err)
	}
	return res.MatchedCount > 0, nil
}

// CommitUpload implements domain.AttachmentStore.
func (s *Store) CommitUpload(ctx context.Context, id, sum string, size int64, now time.Time) error {
	u, err := s.getUpload(ctx, id)
	if err != nil {
		return err
	}
	defer s.dropUpload(id)
	h := sha256.New()
	held, err := s.touchBlob(ctx, sum, now)
	if err != nil {
		return err
	}
	if held {
		// Stored once: check the bytes, keep the copy there is.
		n, err := s.readUpload(ctx, u, h)
		if err != nil {
			return err
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != sum || n != size {
			return &domain.MismatchError{SHA256: got, Size: n}
		}
		return nil
	}
	g := &gridWriter{ctx: ctx, chunks: s.att.chunks, fileID: bson.NewObjectID(), buf: make([]byte, 0, blobChunkSize)}
	drop := func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_, _ = s.att.chunks.DeleteMany(dctx, bson.D{{Key: "files_id", Value: g.fileID}})
	}
	n, err := s.readUpload(ctx, u, io.MultiWriter(h, g))
	if err == nil {
		err = g.flush()
	}
	if err != nil {
		drop()
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum || n != size {
		drop()
		return &domain.MismatchError{SHA256: got, Size: n}
	}
	_, err = s.att.files.InsertOne(ctx, bson.D{{Key: "_id", Value: g.fileID}, {Key: "length", Value: g.length},
		{Key: "chunkSize", Value: int32(blobChunkSize)}, {Key: "uploadDate", Value: now}, {Key: "filename", Value: sum}})
	if isDup(err) {
		// Another commit of the same bytes came first: keep its copy.
		drop()
		_, err = s.touchBlob(ctx, sum, now)
		return err
	}
	if err != nil {
		drop()
		return translate(err)
	}
	return nil
}

// dropUpload removes an upload and its chunks, detached from the caller.
func (s *Store) dropUpload(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = s.DeleteUpload(ctx, id)
}

// DeleteUpload implements domain.AttachmentStore.
func (s *Store) DeleteUpload(ctx context.Context, id string) error {
	if _, err := s.att.uploads.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
		return translate(err)
	}
	_, err := s.att.uploadChunks.DeleteMany(ctx, bson.D{{Key: "upload", Value: id}})
	return translate(err)
}

// ExpireUploads implements domain.AttachmentStore. It also removes old
// chunks no part lists: appends whose instance died before they committed.
func (s *Store) ExpireUploads(ctx context.Context, before time.Time) (int, error) {
	old, err := findAll[uploadDoc](ctx, s.att.uploads, bson.D{{Key: "updated_at", Value: bson.D{{Key: "$lt", Value: before}}}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, u := range old {
		res, err := s.att.uploads.DeleteOne(ctx, bson.D{{Key: "_id", Value: u.ID}, {Key: "updated_at", Value: bson.D{{Key: "$lt", Value: before}}}})
		if err != nil {
			return n, translate(err)
		}
		if res.DeletedCount == 0 {
			continue // appended to meanwhile
		}
		n++
		if _, err := s.att.uploadChunks.DeleteMany(ctx, bson.D{{Key: "upload", Value: u.ID}}); err != nil {
			return n, translate(err)
		}
	}
	type stray struct {
		Upload string `bson:"upload"`
		Writer string `bson:"writer"`
	}
	strays, err := findAll[stray](ctx, s.att.uploadChunks, bson.D{{Key: "at", Value: bson.D{{Key: "$lt", Value: before}}}},
		options.Find().SetProjection(bson.D{{Key: "upload", Value: 1}, {Key: "writer", Value: 1}}))
	if err != nil {
		return n, err
	}
	seen := map[stray]bool{}
	for _, c := range strays {
		if seen[c] {
			continue
		}
		seen[c] = true
		listed, err := exists(ctx, s.att.uploads, bson.D{{Key: "_id", Value: c.Upload}, {Key: "parts.writer", Value: c.Writer}})
		if err != nil {
			return n, err
		}
		if !listed {
			s.dropWriter(c.Upload, c.Writer)
		}
	}
	return n, nil
}

type blobFile struct {
	ID     bson.ObjectID `bson:"_id"`
	Length int64         `bson:"length"`
}

// OpenBlob implements domain.AttachmentStore.
func (s *Store) OpenBlob(ctx context.Context, sum string) (domain.Blob, error) {
	f, err := findOne[blobFile](ctx, s.att.files, bson.D{{Key: "filename", Value: sum}})
	if err != nil {
		return nil, err
	}
	return &gridBlob{ctx: ctx, s: s, id: f.ID, size: f.Length}, nil
}

// gridBlob reads a GridFS file's chunks from pos, seeking by choosing the
// chunk to start from: a range download reads only the chunks it needs.
type gridBlob struct {
	ctx  context.Context
	s    *Store
	id   bson.ObjectID
	size int64
	pos  int64

	cur  *mongodrv.Cursor
	buf  []byte // the rest of the current chunk, from at
	at   int64  // the file offset of buf[0]
	open bool
}

func (b *gridBlob) Size() int64 { return b.size }

func (b *gridBlob) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		off += b.pos
	case io.SeekEnd:
		off += b.size
	}
	if off < 0 {
		return b.pos, errors.New("mongo: seek before the start")
	}
	if off != b.pos {
		b.pos = off
		b.closeCursor()
	}
	return b.pos, nil
}

func (b *gridBlob) closeCursor() {
	if b.cur != nil {
		_ = b.cur.Close(b.ctx)
	}
	b.cur, b.buf, b.open = nil, nil, false
}

func (b *gridBlob) Read(p []byte) (int, error) {
	if b.pos >= b.size {
		return 0, io.EOF
	}
	if !b.open {
		first := b.pos / blobChunkSize
		cur, err := b.s.att.chunks.Find(b.ctx, bson.D{{Key: "files_id", Value: b.id}, {Key: "n", Value: bson.D{{Key: "$gte", Value: first}}}},
			options.Find().SetSort(bson.D{{Key: "n", Value: 1}}).SetBatchSize(4))
		if err != nil {
			return 0, translate(err)
		}
		b.cur, b.open, b.at, b.buf = cur, true, first*blobChunkSize, nil
	}
	for len(b.buf) == 0 || b.pos >= b.at+int64(len(b.buf)) {
		b.at += int64(len(b.buf))
		if !b.cur.Next(b.ctx) {
			if err := b.cur.Err(); err != nil {
				return 0, translate(err)
			}
			return 0, io.ErrUnexpectedEOF // fewer chunks than the length says
		}
		var c struct {
			Data []byte `bson:"data"`
		}
		if err := b.cur.Decode(&c); err != nil {
			return 0, translate(err)
		}
		b.buf = c.Data
	}
	k := copy(p, b.buf[b.pos-b.at:])
	b.pos += int64(k)
	return k, nil
}

func (b *gridBlob) Close() error {
	b.closeCursor()
	return nil
}

type linkDoc struct {
	ID          string    `bson:"_id"`
	ProjectID   string    `bson:"project_id"`
	RecordID    string    `bson:"record_id"`
	Name        string    `bson:"name"`
	SHA256      string    `bson:"sha256"`
	Size        int64     `bson:"size"`
	ContentType string    `bson:"content_type"`
	CreatedAt   time.Time `bson:"created_at"`
}

func (d linkDoc) link() domain.AttachmentLink {
	return domain.AttachmentLink{ProjectID: d.ProjectID, RecordID: d.RecordID, Name: d.Name, SHA256: d.SHA256,
		Size: d.Size, ContentType: d.ContentType, CreatedAt: d.CreatedAt.UTC()}
}

// PutAttachmentLink implements domain.AttachmentStore.
func (s *Store) PutAttachmentLink(ctx context.Context, l domain.AttachmentLink) error {
	held, err := exists(ctx, s.att.files, bson.D{{Key: "filename", Value: l.SHA256}})
	if err != nil {
		return err
	}
	if !held {
		return domain.ErrNotFound
	}
	// The name is the last part: a record id holds no '/', a name may.
	d := linkDoc{ID: key(l.ProjectID, l.RecordID, l.Name), ProjectID: l.ProjectID, RecordID: l.RecordID, Name: l.Name,
		SHA256: l.SHA256, Size: l.Size, ContentType: l.ContentType, CreatedAt: ms(l.CreatedAt)}
	return retryUpsert(func() error {
		_, err := s.att.links.ReplaceOne(ctx, bson.D{{Key: "_id", Value: d.ID}}, d, options.Replace().SetUpsert(true))
		return err
	})
}

// GetAttachmentLink implements domain.AttachmentStore.
func (s *Store) GetAttachmentLink(ctx context.Context, projectID, recordID, name string) (domain.AttachmentLink, error) {
	d, err := findOne[linkDoc](ctx, s.att.links, bson.D{{Key: "_id", Value: key(projectID, recordID, name)}})
	if err != nil {
		return domain.AttachmentLink{}, err
	}
	return d.link(), nil
}

// ListAttachmentLinks implements domain.AttachmentStore.
func (s *Store) ListAttachmentLinks(ctx context.Context, projectID string, recordIDs []string) (map[string][]domain.AttachmentLink, error) {
	out := map[string][]domain.AttachmentLink{}
	if len(recordIDs) == 0 {
		return out, nil
	}
	docs, err := findAll[linkDoc](ctx, s.att.links, bson.D{{Key: "project_id", Value: projectID}, {Key: "record_id", Value: bson.D{{Key: "$in", Value: recordIDs}}}},
		options.Find().SetSort(bson.D{{Key: "project_id", Value: 1}, {Key: "record_id", Value: 1}, {Key: "name", Value: 1}}))
	if err != nil {
		return nil, err
	}
	for _, d := range docs {
		out[d.RecordID] = append(out[d.RecordID], d.link())
	}
	return out, nil
}

// CollectBlobs implements domain.AttachmentStore.
func (s *Store) CollectBlobs(ctx context.Context, before time.Time) (int, error) {
	type fileDoc struct {
		ID       bson.ObjectID `bson:"_id"`
		Filename string        `bson:"filename"`
	}
	old, err := findAll[fileDoc](ctx, s.att.files, bson.D{{Key: "uploadDate", Value: bson.D{{Key: "$lt", Value: before}}}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "filename", Value: 1}}))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, f := range old {
		ref, err := exists(ctx, s.att.links, bson.D{{Key: "sha256", Value: f.Filename}})
		if err != nil {
			return n, err
		}
		if ref {
			continue
		}
		// Conditional: a commit that reused the file meanwhile moved its date.
		res, err := s.att.files.DeleteOne(ctx, bson.D{{Key: "_id", Value: f.ID}, {Key: "uploadDate", Value: bson.D{{Key: "$lt", Value: before}}}})
		if err != nil {
			return n, translate(err)
		}
		if res.DeletedCount == 0 {
			continue
		}
		n++
		if _, err := s.att.chunks.DeleteMany(ctx, bson.D{{Key: "files_id", Value: f.ID}}); err != nil {
			return n, translate(err)
		}
	}
	return n, nil
}

// DatabaseName is the database the store uses: another Store opened on it
// is another server instance on the same data.
func (s *Store) DatabaseName() string { return s.db.Name() }

// CountBlobs counts the distinct attachment files held (for operators and
// tests: identical bytes count once).
func (s *Store) CountBlobs(ctx context.Context) (int, error) {
	n, err := s.att.files.CountDocuments(ctx, bson.D{})
	return int(n), translate(err)
}
