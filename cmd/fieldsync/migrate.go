package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/store/mongo"
	"github.com/fieldsync/fieldsync/internal/store/sqlite"
)

// migrateUsage is the help of fieldsync migrate.
const migrateUsage = `Usage: fieldsync migrate -to mongodb://… [flags]

  Copy the SQLite store of the data directory (-data-dir) whole into an empty
  MongoDB database: users, projects and members, devices and their sessions
  (tablets stay signed in), signing keys, settings, forms with their versions,
  records with their history in feed order, the quarantine and the audit log.
  Stop the server first: the copy refuses a store in use. The SQLite store is
  left as it was. Then start the servers with FIELDSYNC_STORE set to the same
  URI and the secret key of the SQLite server (FIELDSYNC_SECRET_KEY_FILE=
  <data-dir>/secret-key unless one was set): the signing keys are copied sealed.
`

// exporter is what the SQLite store offers beyond the contract for a whole copy.
type exporter interface {
	ListSettings(ctx context.Context) (map[string]string, error)
	ListTokenFamilies(ctx context.Context) ([]domain.TokenFamily, error)
	ListRefreshTokens(ctx context.Context) ([]domain.RefreshToken, error)
}

// Migrate copies the SQLite store into the MongoDB database at uri
// (fieldsync migrate). It holds the data directory's lock exclusively, so no
// server writes while it copies, and it refuses a database that has users or
// projects already, so it never merges two stores.
func (m *Main) Migrate(ctx context.Context, uri string) error {
	if storeKind(m.Config.Store) != "sqlite" {
		return errors.New("fieldsync migrate copies the SQLite store (FIELDSYNC_STORE=sqlite) to MongoDB")
	}
	if k := storeKind(uri); k != "mongodb://" && k != "mongodb+srv://" {
		return errors.New("-to: give a mongodb:// or mongodb+srv:// URI")
	}
	unlock, err := lockDataDir(m.Config.DataDir, true)
	if errors.Is(err, errDataDirInUse) {
		return fmt.Errorf("the store in %s is in use: stop the server first, then migrate", m.Config.DataDir)
	}
	if err != nil {
		return err
	}
	defer unlock()
	src, err := sqlite.Open(ctx, filepath.Join(m.Config.DataDir, dbFile))
	if err != nil {
		return fmt.Errorf("open the SQLite store: %w", err)
	}
	defer src.Close()
	dst, err := mongo.Open(ctx, mongo.Config{URI: uri, Logger: m.Logger})
	if err != nil {
		return fmt.Errorf("open the MongoDB store: %w", err)
	}
	defer dst.Close()
	if users, err := dst.ListUsers(ctx); err != nil {
		return err
	} else if projects, err := dst.ListProjects(ctx); err != nil {
		return err
	} else if len(users)+len(projects) > 0 {
		return fmt.Errorf("the MongoDB database already has %d users and %d projects: migrate into an empty database", len(users), len(projects))
	}
	started := time.Now()
	n, err := copyStore(ctx, src, dst)
	if err != nil {
		return fmt.Errorf("copy (the MongoDB database is now partly filled: drop it before trying again): %w", err)
	}
	m.Logger.Info("store migrated", "uri", redactURI(uri), "took", time.Since(started).Round(time.Millisecond).String(),
		"users", n.users, "projects", n.projects, "devices", n.devices, "records", n.records, "revisions", n.revisions,
		"quarantine", n.quarantine, "audit", n.audit, "reviews", n.reviews, "files", n.files)
	fmt.Fprintf(m.Out, "Copied %d users, %d projects, %d devices, %d forms, %d records (%d revisions), %d quarantined items, %d review entries, %d files and %d audit events to %s.\n"+
		"Start the servers with FIELDSYNC_STORE set to it and the secret key of this server.\n",
		n.users, n.projects, n.devices, n.forms, n.records, n.revisions, n.quarantine, n.reviews, n.files, n.audit, redactURI(uri))
	return nil
}

// copied counts what copyStore copied.
type copied struct {
	users, projects, devices, forms, records, revisions, quarantine, audit int
	reviews, files                                                         int
}

// copyStore copies everything of src into the empty dst through the store
// contract (and src's exporter for what the contract does not list).
func copyStore(ctx context.Context, src *sqlite.Store, dst domain.Store) (copied, error) {
	var n copied
	var ex exporter = src
	settings, err := ex.ListSettings(ctx)
	if err != nil {
		return n, err
	}
	for k, v := range settings {
		if _, _, err := dst.PutSettingIfAbsent(ctx, k, v); err != nil {
			return n, fmt.Errorf("setting %s: %w", k, err)
		}
	}
	keys, err := src.ListSigningKeys(ctx)
	if err != nil {
		return n, err
	}
	for _, k := range slices.Backward(keys) { // oldest first, as they were made
		if err := dst.CreateSigningKey(ctx, k); err != nil {
			return n, fmt.Errorf("signing key %s: %w", k.ID, err)
		}
	}
	users, err := src.ListUsers(ctx)
	if err != nil {
		return n, err
	}
	for _, u := range users {
		if err := dst.CreateUser(ctx, u); err != nil {
			return n, fmt.Errorf("user %s: %w", u.Username, err)
		}
		n.users++
	}
	projects, err := src.ListProjects(ctx)
	if err != nil {
		return n, err
	}
	for _, p := range projects {
		if err := dst.CreateProject(ctx, p); err != nil {
			return n, fmt.Errorf("project %s: %w", p.ID, err)
		}
		n.projects++
	}
	members, err := src.ListMemberships(ctx, domain.MembershipFilter{})
	if err != nil {
		return n, err
	}
	for _, mb := range members {
		if err := dst.PutMembership(ctx, mb); err != nil {
			return n, fmt.Errorf("membership %s/%s: %w", mb.ProjectID, mb.Username, err)
		}
	}
	families, err := ex.ListTokenFamilies(ctx)
	if err != nil {
		return n, err
	}
	for _, f := range families {
		if err := dst.CreateTokenFamily(ctx, f); err != nil {
			return n, fmt.Errorf("token family %s: %w", f.ID, err)
		}
	}
	tokens, err := ex.ListRefreshTokens(ctx)
	if err != nil {
		return n, err
	}
	for _, t := range tokens {
		if err := dst.CreateRefreshToken(ctx, t); err != nil {
			return n, fmt.Errorf("refresh token of family %s: %w", t.FamilyID, err)
		}
	}
	for _, p := range projects {
		if err := copyProject(ctx, src, dst, p.ID, &n); err != nil {
			return n, fmt.Errorf("project %s: %w", p.ID, err)
		}
	}
	if err := copyAudit(ctx, src, dst, &n); err != nil {
		return n, fmt.Errorf("audit: %w", err)
	}
	return n, nil
}

// copyProject copies a project's devices, forms, records and quarantine.
func copyProject(ctx context.Context, src *sqlite.Store, dst domain.Store, projectID string, n *copied) error {
	devices, err := src.ListDevices(ctx, projectID)
	if err != nil {
		return err
	}
	for _, d := range devices {
		if err := dst.CreateDevice(ctx, d); err != nil {
			return fmt.Errorf("device %s: %w", d.ID, err)
		}
		n.devices++
	}
	seen, err := src.DeviceLastSeen(ctx, projectID)
	if err != nil {
		return err
	}
	for id, at := range seen {
		if err := dst.TouchDevice(ctx, id, at); err != nil {
			return fmt.Errorf("device %s: %w", id, err)
		}
	}

	forms, err := src.ListForms(ctx, projectID)
	if err != nil {
		return err
	}
	for _, f := range forms {
		var published []domain.FormVersion
		for _, v := range f.Versions {
			full, err := src.GetFormVersion(ctx, projectID, f.ID, v.Version)
			if err != nil {
				return err
			}
			if _, err := dst.PutFormVersion(ctx, full); err != nil {
				return fmt.Errorf("form %s version %s: %w", f.ID, v.Version, err)
			}
			if full.PublishedAt != nil {
				published = append(published, full)
			}
		}
		// In the order they were published: the last is the current version.
		slices.SortStableFunc(published, func(a, b domain.FormVersion) int { return a.PublishedAt.Compare(*b.PublishedAt) })
		if i := slices.IndexFunc(published, func(v domain.FormVersion) bool { return v.Version == f.CurrentVersion }); i >= 0 {
			cur := published[i]
			published = append(slices.Delete(published, i, i+1), cur)
		}
		for _, v := range published {
			if _, err := dst.PublishFormVersion(ctx, projectID, f.ID, v.Version, *v.PublishedAt); err != nil {
				return fmt.Errorf("publish form %s version %s: %w", f.ID, v.Version, err)
			}
		}
		if f.ClosedAt != nil {
			if err := dst.CloseForm(ctx, projectID, f.ID, *f.ClosedAt); err != nil {
				return fmt.Errorf("close form %s: %w", f.ID, err)
			}
		}
		n.forms++
	}

	// The new feed starts above the last position of the old one, so that a
	// tablet's pull cursor, kept across the move, is below every new position:
	// it pulls the records again rather than skipping any.
	last, err := src.LastFeedPosition(ctx, projectID)
	if err != nil {
		return err
	}
	if fs, ok := dst.(interface {
		StartFeedAfter(ctx context.Context, projectID string, n int64) error
	}); ok && last > 0 {
		if err := fs.StartFeedAfter(ctx, projectID, last); err != nil {
			return fmt.Errorf("start the feed of %s: %w", projectID, err)
		}
	}

	// Records in feed order, each with its whole history in one write, so the
	// new feed lists them in the same order.
	for since := int64(0); ; {
		page, err := src.Changes(ctx, domain.ChangesQuery{ProjectID: projectID, Since: since, Limit: 200})
		if err != nil {
			return err
		}
		writes := make([]domain.RecordWrite, 0, len(page.Records))
		for _, r := range page.Records {
			revs, err := src.ListRevisions(ctx, projectID, r.ID)
			if err != nil {
				return err
			}
			r.Seq, r.Version = 0, 0
			writes = append(writes, domain.RecordWrite{Record: r, Revisions: revs})
			n.revisions += len(revs)
		}
		if len(writes) > 0 {
			results, err := dst.WriteRecords(ctx, writes)
			if err != nil {
				return err
			}
			for i, rerr := range results {
				if rerr != nil {
					return fmt.Errorf("record %s: %w", writes[i].Record.ID, rerr)
				}
			}
			n.records += len(writes)
			if err := copyRecordExtras(ctx, src, dst, projectID, page.Records, n); err != nil {
				return err
			}
		}
		since = page.Next
		if !page.More {
			break
		}
	}

	// The quarantine: each item put as often as it was seen (Attempts), and
	// resolved items resolved again before the open ones are put, so that
	// resolving their record does not settle an item still open.
	var items []domain.QuarantineItem
	for cursor := ""; ; {
		page, next, err := src.ListQuarantine(ctx, projectID, domain.QuarantineFilter{}, cursor, 500)
		if err != nil {
			return err
		}
		items = append(items, page...)
		if next == "" {
			break
		}
		cursor = next
	}
	slices.SortStableFunc(items, func(a, b domain.QuarantineItem) int {
		return boolInt(a.ResolvedAt == nil) - boolInt(b.ResolvedAt == nil)
	})
	for _, it := range items {
		last := it.LastSeen
		for i := range max(1, it.Attempts) {
			it.LastSeen = last
			if i == 0 {
				it.LastSeen = it.FirstSeen
			}
			if _, err := dst.PutQuarantine(ctx, it); err != nil {
				return fmt.Errorf("quarantined item %s: %w", it.ID, err)
			}
		}
		if it.ResolvedAt != nil {
			if err := dst.ResolveQuarantine(ctx, projectID, []string{it.RecordID}, *it.ResolvedAt); err != nil {
				return fmt.Errorf("quarantined item %s: %w", it.ID, err)
			}
		}
		if it.LastReapply != nil {
			// The latest re-apply, and who resolved the item by it: claimed
			// and settled again as it was.
			if _, err := dst.ClaimQuarantine(ctx, projectID, it.ID, "migrate", it.LastReapply.At, it.LastReapply.At); err != nil {
				return fmt.Errorf("quarantined item %s: %w", it.ID, err)
			}
			if _, err := dst.SettleQuarantine(ctx, projectID, it.ID, "migrate", *it.LastReapply); err != nil {
				return fmt.Errorf("quarantined item %s: %w", it.ID, err)
			}
		}
		if it.DismissedAt != nil {
			d := domain.QuarantineDismissal{By: it.DismissedBy, Reason: it.DismissReason, At: *it.DismissedAt}
			if _, err := dst.DismissQuarantine(ctx, projectID, it.ID, d, *it.DismissedAt); err != nil {
				return fmt.Errorf("quarantined item %s: %w", it.ID, err)
			}
		}
		n.quarantine++
	}
	return nil
}

// copyRecordExtras copies what the records of one feed page hold beside
// their history: review threads (comments and review-state changes, in
// order) and attachment files with their links (each file's bytes once).
func copyRecordExtras(ctx context.Context, src *sqlite.Store, dst domain.Store, projectID string, recs []domain.Record, n *copied) error {
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.ID
		for cursor := ""; ; {
			entries, next, err := src.ListReviews(ctx, projectID, r.ID, cursor, 500)
			if err != nil {
				return err
			}
			for _, e := range entries {
				e.ID = "" // the new store numbers them, in the same order
				if _, err := dst.AppendReview(ctx, e); err != nil {
					return fmt.Errorf("review of record %s: %w", r.ID, err)
				}
				n.reviews++
			}
			if next == "" {
				break
			}
			cursor = next
		}
	}
	links, err := src.ListAttachmentLinks(ctx, projectID, ids)
	if err != nil {
		return err
	}
	for _, id := range ids {
		for _, l := range links[id] {
			if err := copyBlob(ctx, src, dst, l); err != nil {
				return fmt.Errorf("attachment %s of record %s: %w", l.Name, id, err)
			}
			if err := dst.PutAttachmentLink(ctx, l); err != nil {
				return fmt.Errorf("attachment %s of record %s: %w", l.Name, id, err)
			}
			n.files++
		}
	}
	return nil
}

// copyBlob copies the bytes of l's file unless dst holds them already
// (identical bytes are stored once), through an upload that dst checks
// against the hash and size like any other.
func copyBlob(ctx context.Context, src *sqlite.Store, dst domain.Store, l domain.AttachmentLink) error {
	if b, err := dst.OpenBlob(ctx, l.SHA256); err == nil {
		return b.Close()
	} else if !errors.Is(err, domain.ErrNotFound) {
		return err
	}
	b, err := src.OpenBlob(ctx, l.SHA256)
	if err != nil {
		return err
	}
	defer b.Close()
	upload := "migrate-" + l.SHA256
	now := time.Now().UTC()
	if _, err := dst.AppendUpload(ctx, upload, 0, b, now); err != nil {
		return err
	}
	return dst.CommitUpload(ctx, upload, l.SHA256, b.Size(), now)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// copyAudit copies the audit log, oldest event first (the new store gives
// the events new ids, in the same order).
func copyAudit(ctx context.Context, src *sqlite.Store, dst domain.Store, n *copied) error {
	var events []domain.AuditEvent
	for cursor := ""; ; {
		page, next, err := src.ListAudit(ctx, domain.AuditFilter{}, cursor, 500)
		if err != nil {
			return err
		}
		events = append(events, page...)
		if next == "" {
			break
		}
		cursor = next
	}
	for _, e := range slices.Backward(events) {
		e.ID = ""
		if _, err := dst.AppendAudit(ctx, e); err != nil {
			return err
		}
		n.audit++
	}
	return nil
}
