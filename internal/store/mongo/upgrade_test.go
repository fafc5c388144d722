package mongo_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/store/mongo"
	"github.com/fieldsync/fieldsync/internal/store/mongo/mongotest"
)

// TestUpgradeEarlierWriteProtocol: a database written by the earlier write
// protocol (revisions inserted unconfirmed before their write; a pending record
// naming its revisions by id) is converted at Open: the revision of a write
// that failed is no longer history (the service would take a resend of it for
// a processed edit), and an interrupted write is completed with its revision.
func TestUpgradeEarlierWriteProtocol(t *testing.T) {
	ctx := context.Background()
	cfg := mongotest.Config(t)
	st, err := mongo.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	if err := st.CreateProject(ctx, domain.Project{ID: "p", Title: "p", CreatedBy: "admin", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	db := st.Database()
	rev := func(record, rev string, confirmed bool) bson.D {
		return bson.D{{Key: "_id", Value: "p/" + record + "/" + rev}, {Key: "project_id", Value: "p"}, {Key: "record_id", Value: record},
			{Key: "rev", Value: rev}, {Key: "parent", Value: ""}, {Key: "deleted", Value: false},
			{Key: "data", Value: bson.D{{Key: "name", Value: "x"}}}, {Key: "form_version", Value: "1"},
			{Key: "created_by", Value: "device:t"}, {Key: "device_id", Value: "t"}, {Key: "created_at", Value: now},
			{Key: "stored", Value: int64(1)}, {Key: "confirmed", Value: confirmed}}
	}
	const failedRev, pendingRev = "1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "1-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	if _, err := db.Collection("revisions").InsertMany(ctx, []any{rev("r1", failedRev, false), rev("r2", pendingRev, false)}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Collection("records").InsertOne(ctx, bson.D{{Key: "_id", Value: "p/r2"}, {Key: "project_id", Value: "p"},
		{Key: "record_id", Value: "r2"}, {Key: "form_id", Value: "f"}, {Key: "form_version", Value: "1"}, {Key: "rev", Value: pendingRev},
		{Key: "deleted", Value: false}, {Key: "data", Value: bson.D{{Key: "name", Value: "x"}}}, {Key: "created_by", Value: "device:t"},
		{Key: "device_id", Value: "t"}, {Key: "review_state", Value: "received"}, {Key: "shared", Value: false},
		{Key: "seq", Value: int64(0)}, {Key: "version", Value: int64(1)},
		{Key: "pending", Value: "tok"}, {Key: "pending_at", Value: now}, {Key: "pending_revs", Value: bson.A{"p/r2/" + pendingRev}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Collection("settings").DeleteOne(ctx, bson.D{{Key: "_id", Value: "mongo.write_protocol"}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st, err = mongo.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open a database of the earlier protocol: %v", err)
	}
	defer st.Close()
	if _, err := st.GetRevision(ctx, "p", "r1", failedRev); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("the revision of a failed write is history after the upgrade: %v", err)
	}
	rec, err := st.GetRecord(ctx, "p", "r2")
	if err != nil || rec.Rev != pendingRev {
		t.Fatalf("the interrupted write: %+v, %v", rec, err)
	}
	if _, err := st.GetRevision(ctx, "p", "r2", pendingRev); err != nil {
		t.Errorf("the interrupted write's revision is not history once completed: %v", err)
	}
	page, err := st.Changes(ctx, domain.ChangesQuery{ProjectID: "p"})
	if err != nil || len(page.Records) != 1 || page.Records[0].ID != "r2" {
		t.Errorf("feed after the upgrade: %+v, %v", page, err)
	}
}

// TestNewerSchemaRefused: a database whose schema version was raised by a
// newer fieldsync is refused at Open with a message that says so; the
// current version is recorded by Open.
func TestNewerSchemaRefused(t *testing.T) {
	ctx := context.Background()
	cfg := mongotest.Config(t)
	st, err := mongo.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := st.GetSetting(ctx, "mongo.schema_version"); err != nil || v == "" {
		t.Errorf("schema version after Open: %q, %v", v, err)
	}
	if _, err := st.Database().Collection("settings").UpdateOne(ctx, bson.D{{Key: "_id", Value: "mongo.schema_version"}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "value", Value: "99"}}}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = mongo.Open(ctx, cfg)
	if !errors.Is(err, mongo.ErrNewerSchema) || !strings.Contains(err.Error(), "99") {
		t.Errorf("Open of a newer database: %v", err)
	}
}
