package mongo

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// writeProtocolSetting marks a database whose records and revisions follow
// the write protocol of doc.go.
const writeProtocolSetting = "mongo.write_protocol"

// upgradeWriteProtocol brings a database written by an earlier fieldsync to
// the write protocol of doc.go, once (Open runs it; it is idempotent, so an
// interrupted upgrade is finished by the next Open). Earlier versions inserted
// a write's revisions before the write, unconfirmed, and confirmed them after
// it; a pending record named its revisions by _id. Now a revision document
// exists only for a write that completed, and a pending record carries its
// revisions. So:
//
//  1. each record pending under the old protocol gets its revisions copied
//     into its marker (the next reader or the sweep completes it);
//  2. every unconfirmed revision is deleted: its write failed, or it now rides
//     in its record's marker;
//  3. the confirmed flag goes.
//
// Instances of the earlier version must be stopped first: they would go on
// inserting unconfirmed revisions.
func (s *Store) upgradeWriteProtocol(ctx context.Context) error {
	if _, err := s.GetSetting(ctx, writeProtocolSetting); err == nil {
		return nil
	} else if !errors.Is(err, domain.ErrNotFound) {
		return err
	}
	projects, err := s.ListProjects(ctx)
	if err != nil {
		return err
	}
	upgraded := 0
	// Project by project: every filter names the shard key.
	for _, p := range projects {
		n, err := s.upgradeProject(ctx, p.ID)
		if err != nil {
			return fmt.Errorf("project %s: %w", p.ID, err)
		}
		upgraded += n
	}
	if _, _, err := s.PutSettingIfAbsent(ctx, writeProtocolSetting, "2"); err != nil {
		return fmt.Errorf("mark the write protocol: %w", err)
	}
	if upgraded > 0 {
		s.log.Info("mongo: pending writes of an earlier version now carry their revisions", "records", upgraded)
	}
	return nil
}

// upgradeProject runs the steps of upgradeWriteProtocol on one project and
// returns how many pending records it converted.
func (s *Store) upgradeProject(ctx context.Context, projectID string) (int, error) {
	type oldPending struct {
		ID          string `bson:"_id"`
		Pending     string `bson:"pending"`
		PendingRevs []any  `bson:"pending_revs"`
	}
	inProject := bson.E{Key: "project_id", Value: projectID}
	olds, err := findAll[oldPending](ctx, s.records, bson.D{inProject, {Key: "pending", Value: bson.D{{Key: "$exists", Value: true}}}})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range olds {
		var ids []string
		for _, v := range r.PendingRevs {
			if id, ok := v.(string); ok {
				ids = append(ids, id)
			}
		}
		if len(ids) == 0 {
			continue // it carries its revisions already
		}
		revs, err := findAll[revisionDoc](ctx, s.revisions, bson.D{inProject, {Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
		if err != nil {
			return n, err
		}
		docs := make(bson.A, len(revs))
		for i, v := range revs {
			docs[i] = v
		}
		if _, err := s.records.UpdateOne(ctx, bson.D{{Key: "_id", Value: r.ID}, inProject, {Key: "pending", Value: r.Pending}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "pending_revs", Value: docs}, {Key: "write_id", Value: r.Pending}}}}); err != nil {
			return n, translate(err)
		}
		n++
	}
	if _, err := s.revisions.DeleteMany(ctx, bson.D{inProject, {Key: "confirmed", Value: false}}); err != nil {
		return n, translate(err)
	}
	if _, err := s.revisions.UpdateMany(ctx, bson.D{inProject, {Key: "confirmed", Value: true}},
		bson.D{{Key: "$unset", Value: bson.D{{Key: "confirmed", Value: ""}}}}); err != nil {
		return n, translate(err)
	}
	return n, nil
}
