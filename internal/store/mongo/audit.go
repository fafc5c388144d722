package mongo

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// auditDoc is one security event, keyed by its ID: 16 hex digits of the storing
// instance's strictly increasing nanosecond clock (Store.tick), then 8 random hex
// digits that keep IDs of two instances in the same nanosecond apart. IDs sort
// as text in time order, increasing in commit order within an instance.
type auditDoc struct {
	ID          string            `bson:"_id"`
	Time        *time.Time        `bson:"time,omitempty"`
	Type        string            `bson:"type"`
	Actor       string            `bson:"actor"`
	ProjectID   string            `bson:"project_id"`
	Subject     string            `bson:"subject"`
	RemoteAddr  string            `bson:"remote_addr"`
	Detail      map[string]string `bson:"detail,omitempty"`
	DetailPairs []kv              `bson:"detail_pairs,omitempty"`
}

// AppendAudit stores an event, assigns its ID and returns it.
func (s *Store) AppendAudit(ctx context.Context, e domain.AuditEvent) (domain.AuditEvent, error) {
	e.ID = fmt.Sprintf("%016x%s", s.tick(), randomHex(4))
	if !e.Time.IsZero() {
		e.Time = ms(e.Time)
	}
	detail, pairs := encodeMap(e.Detail)
	_, err := s.audit.InsertOne(ctx, auditDoc{ID: e.ID, Time: timePtr(e.Time), Type: e.Type, Actor: e.Actor,
		ProjectID: e.ProjectID, Subject: e.Subject, RemoteAddr: e.RemoteAddr, Detail: detail, DetailPairs: pairs})
	if err != nil {
		return domain.AuditEvent{}, translate(err)
	}
	return e, nil
}

// ListAudit returns matching events newest first (by ID), after the cursor, which
// is the ID of the last event of the previous page. Since is inclusive, Until
// exclusive.
func (s *Store) ListAudit(ctx context.Context, f domain.AuditFilter, cursor string, limit int) ([]domain.AuditEvent, string, error) {
	if limit <= 0 {
		limit = 100
	}
	filter := bson.D{}
	if f.Type != "" {
		filter = append(filter, bson.E{Key: "type", Value: f.Type})
	}
	if f.Actor != "" {
		filter = append(filter, bson.E{Key: "actor", Value: f.Actor})
	}
	if f.ProjectID != "" {
		filter = append(filter, bson.E{Key: "project_id", Value: f.ProjectID})
	}
	timeCond := bson.D{}
	if !f.Since.IsZero() {
		timeCond = append(timeCond, bson.E{Key: "$gte", Value: f.Since})
	}
	if !f.Until.IsZero() {
		timeCond = append(timeCond, bson.E{Key: "$lt", Value: f.Until})
	}
	if len(timeCond) > 0 {
		filter = append(filter, bson.E{Key: "time", Value: timeCond})
	}
	if cursor != "" {
		if !isAuditID(cursor) {
			return nil, "", domain.Errorf(domain.KindBadRequest, "invalid_cursor", "The cursor is not valid")
		}
		filter = append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$lt", Value: cursor}}})
	}
	docs, err := findAll[auditDoc](ctx, s.audit, filter,
		options.Find().SetSort(bson.D{{Key: "_id", Value: -1}}).SetLimit(int64(limit)+1))
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(docs) > limit {
		docs = docs[:limit]
		next = docs[limit-1].ID
	}
	out := make([]domain.AuditEvent, len(docs))
	for i, d := range docs {
		out[i] = domain.AuditEvent{ID: d.ID, Time: timeVal(d.Time), Type: d.Type, Actor: d.Actor,
			ProjectID: d.ProjectID, Subject: d.Subject, RemoteAddr: d.RemoteAddr,
			Detail: decodeMap(d.Detail, d.DetailPairs)}
	}
	return out, next, nil
}

// isAuditID reports whether s has the shape of an audit event ID (24 lowercase
// hex digits), the only cursor ListAudit hands out.
func isAuditID(s string) bool {
	if len(s) != 24 {
		return false
	}
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
