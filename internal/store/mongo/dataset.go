package mongo

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// defaultQueryLimit is the page size of QueryRecords when the query names none.
const defaultQueryLimit = 1000

// QueryRecords returns one page of a form's records in (created_at,
// record_id) order, a range of the index records.by_form_created (see
// ensureIndexes); newest first (q.Descending), the same range walked
// backwards: a sort whose every key is reversed, after equality on the
// index's prefix (project_id, form_id), is the index read in reverse
// (MongoDB manual, "Use Indexes to Sort Query Results"), so the descending
// order needs no index of its own and no in-memory sort. Records whose write
// is pending are settled first, as GetRecords does, so a page never shows a
// state the feed does not announce.
// The filter names project_id, so on a sharded cluster the query goes to the
// shards that hold the project.
func (s *Store) QueryRecords(ctx context.Context, q domain.RecordQuery) (domain.RecordQueryPage, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = defaultQueryLimit
	}
	filter := recordQueryFilter(q)
	// The cursor's side: after it (ascending) or before it (descending).
	beyond, dir := "$gt", 1
	if q.Descending {
		beyond, dir = "$lt", -1
	}
	if !q.After.IsZero() {
		at := ms(q.After.CreatedAt)
		filter = append(filter, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "created_at", Value: bson.D{{Key: beyond, Value: at}}}},
			bson.D{{Key: "created_at", Value: at}, {Key: "record_id", Value: bson.D{{Key: beyond, Value: q.After.ID}}}},
		}})
	}

	docs, err := findAll[recordDoc](ctx, s.records, filter, options.Find().
		SetSort(bson.D{{Key: "created_at", Value: dir}, {Key: "record_id", Value: dir}}).
		SetLimit(int64(limit)))
	if err != nil {
		return domain.RecordQueryPage{}, err
	}
	if docs, err = s.settle(ctx, docs); err != nil {
		return domain.RecordQueryPage{}, err
	}
	page := domain.RecordQueryPage{Next: q.After}
	if len(docs) > 0 {
		page.Records = make([]domain.Record, 0, len(docs))
	}
	for _, d := range docs {
		r, err := d.record()
		if err != nil {
			return domain.RecordQueryPage{}, err
		}
		page.Records = append(page.Records, r)
	}
	if n := len(page.Records); n > 0 {
		last := page.Records[n-1]
		page.Next = domain.RecordCursor{CreatedAt: last.CreatedAt, ID: last.ID}
		page.More = n == limit
	}
	return page, nil
}

// CountRecords counts what QueryRecords would page through, with the same
// filter over records.by_form_created. (A record whose write is pending
// counts as its document stands, as a page read at that moment would show
// it once settled either way.)
func (s *Store) CountRecords(ctx context.Context, q domain.RecordQuery) (int, error) {
	n, err := s.records.CountDocuments(ctx, recordQueryFilter(q))
	if err != nil {
		return 0, translate(err)
	}
	return int(n), nil
}

// recordQueryFilter is the filter of q without its cursor.
func recordQueryFilter(q domain.RecordQuery) bson.D {
	filter := bson.D{{Key: "project_id", Value: q.ProjectID}, {Key: "form_id", Value: q.FormID}}
	created := bson.D{}
	if !q.Since.IsZero() {
		created = append(created, bson.E{Key: "$gte", Value: ms(domain.CeilMilli(q.Since))})
	}
	if !q.Until.IsZero() {
		created = append(created, bson.E{Key: "$lt", Value: ms(domain.CeilMilli(q.Until))})
	}
	if len(created) > 0 {
		filter = append(filter, bson.E{Key: "created_at", Value: created})
	}
	if !q.IncludeDeleted {
		filter = append(filter, bson.E{Key: "deleted", Value: false})
	}
	in := func(field string, vals []string) {
		if len(vals) > 0 {
			filter = append(filter, bson.E{Key: field, Value: bson.D{{Key: "$in", Value: vals}}})
		}
	}
	in("review_state", q.ReviewStates)
	in("form_version", q.Versions)
	in("device_id", q.Devices)
	return filter
}
