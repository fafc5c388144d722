package mongo

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// quarantineDoc is a quarantined item, keyed by "<project>/<item id>".
type quarantineDoc struct {
	ID             string        `bson:"_id"`
	ProjectID      string        `bson:"project_id"`
	ItemID         string        `bson:"item_id"`
	RecordID       string        `bson:"record_id"`
	FormID         string        `bson:"form_id"`
	FormVersion    string        `bson:"form_version"`
	Submission     bson.RawValue `bson:"submission,omitempty"`
	SubmissionJSON string        `bson:"submission_json,omitempty"`
	Errors         []findingDoc  `bson:"errors,omitempty"`
	SubmittedBy    string        `bson:"submitted_by"`
	DeviceID       string        `bson:"device_id"`
	FirstSeen      time.Time     `bson:"first_seen"`
	LastSeen       time.Time     `bson:"last_seen"`
	Attempts       int64         `bson:"attempts"`
	ResolvedAt     *time.Time    `bson:"resolved_at,omitempty"`
	// Reason is domain.QuarantineItem.Reason; absent (documents of earlier
	// versions) means rejected.
	Reason string `bson:"reason,omitempty"`
}

// findingDoc is one reason an item was quarantined.
type findingDoc struct {
	Path    string `bson:"path"`
	Keyword string `bson:"keyword,omitempty"`
	Message string `bson:"message"`
}

func (d quarantineDoc) item() (domain.QuarantineItem, error) {
	sub, err := decodeJSON(d.Submission, d.SubmissionJSON)
	if err != nil {
		return domain.QuarantineItem{}, err
	}
	it := domain.QuarantineItem{ProjectID: d.ProjectID, ID: d.ItemID, RecordID: d.RecordID, FormID: d.FormID,
		FormVersion: d.FormVersion, Submission: sub, SubmittedBy: d.SubmittedBy, DeviceID: d.DeviceID,
		FirstSeen: d.FirstSeen.UTC(), LastSeen: d.LastSeen.UTC(), Attempts: int(d.Attempts), ResolvedAt: utcPtr(d.ResolvedAt),
		Reason: domain.QuarantineRejected}
	if d.Reason != "" {
		it.Reason = d.Reason
	}
	for _, f := range d.Errors {
		it.Errors = append(it.Errors, domain.Finding(f))
	}
	return it, nil
}

// PutQuarantine stores an item, or counts one more attempt of a known one, in one
// upsert: $setOnInsert gives a new item its FirstSeen, $inc counts attempts, and
// ResolvedAt is cleared.
func (s *Store) PutQuarantine(ctx context.Context, item domain.QuarantineItem) (domain.QuarantineItem, error) {
	sub, subJSON, err := encodeJSON(item.Submission)
	if err != nil {
		return domain.QuarantineItem{}, err
	}
	doc := quarantineDoc{ID: key(item.ProjectID, item.ID), ProjectID: item.ProjectID, ItemID: item.ID,
		RecordID: item.RecordID, FormID: item.FormID, FormVersion: item.FormVersion,
		Submission: sub, SubmissionJSON: subJSON, SubmittedBy: item.SubmittedBy, DeviceID: item.DeviceID,
		LastSeen: ms(item.LastSeen), Reason: item.Reason}
	if doc.Reason == "" {
		doc.Reason = domain.QuarantineRejected
	}
	for _, f := range item.Errors {
		doc.Errors = append(doc.Errors, findingDoc(f))
	}
	update, err := setUnset(doc, "first_seen", "attempts")
	if err != nil {
		return domain.QuarantineItem{}, err
	}
	update = append(update,
		bson.E{Key: "$inc", Value: bson.D{{Key: "attempts", Value: int64(1)}}},
		bson.E{Key: "$setOnInsert", Value: bson.D{{Key: "first_seen", Value: ms(item.LastSeen)}}})
	var out quarantineDoc
	err = retryUpsert(func() error {
		return s.quarantine.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: doc.ID}, {Key: "project_id", Value: doc.ProjectID}}, update,
			options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After)).Decode(&out)
	})
	if err != nil {
		return domain.QuarantineItem{}, translate(err)
	}
	return out.item()
}

// defaultQuarantineLimit is the page size when the caller names none.
const defaultQuarantineLimit = 100

// ListQuarantine returns items in the order they were first seen (then by id),
// after the cursor, which encodes the last item's (first seen, id).
func (s *Store) ListQuarantine(ctx context.Context, projectID string, includeResolved bool, cursor string, limit int) ([]domain.QuarantineItem, string, error) {
	if limit <= 0 {
		limit = defaultQuarantineLimit
	}
	filter := bson.D{{Key: "project_id", Value: projectID}}
	if !includeResolved {
		filter = append(filter, bson.E{Key: "resolved_at", Value: nil})
	}
	if cursor != "" {
		at, id, err := parseQuarantineCursor(cursor)
		if err != nil {
			return nil, "", domain.Errorf(domain.KindBadRequest, "invalid_cursor", "The cursor is not valid")
		}
		filter = append(filter, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "first_seen", Value: bson.D{{Key: "$gt", Value: at}}}},
			bson.D{{Key: "first_seen", Value: at}, {Key: "item_id", Value: bson.D{{Key: "$gt", Value: id}}}},
		}})
	}
	docs, err := findAll[quarantineDoc](ctx, s.quarantine, filter, options.Find().
		SetSort(bson.D{{Key: "first_seen", Value: 1}, {Key: "item_id", Value: 1}}).
		SetLimit(int64(limit)+1))
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(docs) > limit {
		docs = docs[:limit]
		last := docs[limit-1]
		next = quarantineCursor(last.FirstSeen, last.ItemID)
	}
	out := make([]domain.QuarantineItem, len(docs))
	for i, d := range docs {
		if out[i], err = d.item(); err != nil {
			return nil, "", err
		}
	}
	return out, next, nil
}

func quarantineCursor(firstSeen time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(firstSeen.UnixMilli(), 10) + ":" + id))
}

func parseQuarantineCursor(c string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", err
	}
	msText, id, ok := strings.Cut(string(b), ":")
	if !ok {
		return time.Time{}, "", fmt.Errorf("no separator")
	}
	n, err := strconv.ParseInt(msText, 10, 64)
	if err != nil {
		return time.Time{}, "", err
	}
	return time.UnixMilli(n).UTC(), id, nil
}

// ResolveQuarantine marks every unresolved item of the given records resolved.
func (s *Store) ResolveQuarantine(ctx context.Context, projectID string, recordIDs []string, at time.Time) error {
	if len(recordIDs) == 0 {
		return nil
	}
	_, err := s.quarantine.UpdateMany(ctx,
		bson.D{{Key: "project_id", Value: projectID}, {Key: "record_id", Value: bson.D{{Key: "$in", Value: recordIDs}}},
			{Key: "resolved_at", Value: nil}, {Key: "reason", Value: bson.D{{Key: "$ne", Value: domain.QuarantineForbidden}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "resolved_at", Value: ms(at)}}}})
	return translate(err)
}
