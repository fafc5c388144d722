package mongo

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
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
	// What people decided (issue 11); absent in documents of earlier versions.
	ResolvedBy    string      `bson:"resolved_by,omitempty"`
	DismissedAt   *time.Time  `bson:"dismissed_at,omitempty"`
	DismissedBy   string      `bson:"dismissed_by,omitempty"`
	DismissReason string      `bson:"dismiss_reason,omitempty"`
	LastReapply   *reapplyDoc `bson:"last_reapply,omitempty"`
	Claim         string      `bson:"claim,omitempty"`
	ClaimedAt     *time.Time  `bson:"claimed_at,omitempty"`
}

// reapplyDoc is domain.QuarantineReapply.
type reapplyDoc struct {
	By          string        `bson:"by"`
	At          time.Time     `bson:"at"`
	Applied     bool          `bson:"applied"`
	Status      string        `bson:"status"`
	Rev         string        `bson:"rev,omitempty"`
	FormVersion string        `bson:"form_version,omitempty"`
	Data        bson.RawValue `bson:"data,omitempty"`
	DataJSON    string        `bson:"data_json,omitempty"`
	Errors      []findingDoc  `bson:"errors,omitempty"`
}

// decisionFields are the fields PutQuarantine leaves as they are: a re-push
// does not undo what people decided.
var decisionFields = []string{"dismissed_at", "dismissed_by", "dismiss_reason", "last_reapply", "claim", "claimed_at"}

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
	it.ResolvedBy, it.DismissedAt, it.DismissedBy, it.DismissReason = d.ResolvedBy, utcPtr(d.DismissedAt), d.DismissedBy, d.DismissReason
	it.Claim, it.ClaimedAt = d.Claim, utcPtr(d.ClaimedAt)
	if r := d.LastReapply; r != nil {
		data, err := decodeJSON(r.Data, r.DataJSON)
		if err != nil {
			return domain.QuarantineItem{}, err
		}
		it.LastReapply = &domain.QuarantineReapply{By: r.By, At: r.At.UTC(), Applied: r.Applied, Status: r.Status, Rev: r.Rev,
			FormVersion: r.FormVersion, Data: data}
		for _, f := range r.Errors {
			it.LastReapply.Errors = append(it.LastReapply.Errors, domain.Finding(f))
		}
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
	update, err := setUnset(doc, append([]string{"first_seen", "attempts"}, decisionFields...)...)
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
func (s *Store) ListQuarantine(ctx context.Context, projectID string, f domain.QuarantineFilter, cursor string, limit int) ([]domain.QuarantineItem, string, error) {
	if limit <= 0 {
		limit = defaultQuarantineLimit
	}
	filter := bson.D{{Key: "project_id", Value: projectID}}
	if f.FormID != "" {
		filter = append(filter, bson.E{Key: "form_id", Value: f.FormID})
	}
	if states := stateFilter(f.States); states != nil {
		filter = append(filter, bson.E{Key: "$or", Value: states})
	}
	if cursor != "" {
		at, id, err := parseQuarantineCursor(cursor)
		if err != nil {
			return nil, "", domain.Errorf(domain.KindBadRequest, "invalid_cursor", "The cursor is not valid")
		}
		filter = append(filter, bson.E{Key: "$and", Value: bson.A{bson.D{{Key: "$or", Value: bson.A{
			bson.D{{Key: "first_seen", Value: bson.D{{Key: "$gt", Value: at}}}},
			bson.D{{Key: "first_seen", Value: at}, {Key: "item_id", Value: bson.D{{Key: "$gt", Value: id}}}},
		}}}}})
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

// openFilter matches an open item: neither resolved nor dismissed (a null
// or absent field both match nil).
func openFilter() bson.D {
	return bson.D{{Key: "resolved_at", Value: nil}, {Key: "dismissed_at", Value: nil}}
}

// stateFilter is the $or of the given states, nil for all of them (none
// named, or all three).
func stateFilter(states []string) bson.A {
	seen := map[string]bool{}
	var or bson.A
	for _, st := range states {
		if seen[st] {
			continue
		}
		seen[st] = true
		switch st {
		case domain.QuarantineOpen:
			or = append(or, openFilter())
		case domain.QuarantineResolved:
			or = append(or, bson.D{{Key: "resolved_at", Value: bson.D{{Key: "$ne", Value: nil}}}, {Key: "dismissed_at", Value: nil}})
		case domain.QuarantineDismissed:
			or = append(or, bson.D{{Key: "dismissed_at", Value: bson.D{{Key: "$ne", Value: nil}}}})
		default:
			or = append(or, bson.D{{Key: "_id", Value: bson.D{{Key: "$exists", Value: false}}}}) // no item
		}
	}
	if len(or) == 0 || len(seen) == len(domain.QuarantineStates) && !slices.ContainsFunc(states, func(s string) bool { return !slices.Contains(domain.QuarantineStates, s) }) {
		return nil
	}
	return or
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
			{Key: "resolved_at", Value: nil}, {Key: "dismissed_at", Value: nil},
			{Key: "reason", Value: bson.D{{Key: "$ne", Value: domain.QuarantineForbidden}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "resolved_at", Value: ms(at)}}}})
	return translate(err)
}

// GetQuarantine returns one item; ErrNotFound for an unknown id.
func (s *Store) GetQuarantine(ctx context.Context, projectID, id string) (domain.QuarantineItem, error) {
	d, err := findOne[quarantineDoc](ctx, s.quarantine, bson.D{{Key: "_id", Value: key(projectID, id)}, {Key: "project_id", Value: projectID}})
	if err != nil {
		return domain.QuarantineItem{}, err
	}
	return d.item()
}

// decide applies update to the item if it matches cond, in one
// findOneAndUpdate (single-document atomic), and returns the item afterwards:
// ErrNotFound when there is none, ErrStale when it does not match cond.
func (s *Store) decide(ctx context.Context, projectID, id string, cond bson.D, update bson.D) (domain.QuarantineItem, error) {
	filter := append(bson.D{{Key: "_id", Value: key(projectID, id)}, {Key: "project_id", Value: projectID}}, cond...)
	var out quarantineDoc
	err := s.quarantine.FindOneAndUpdate(ctx, filter, update, options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&out)
	if err = translate(err); errors.Is(err, domain.ErrNotFound) {
		// Unknown, or there but not matching cond: tell which.
		if _, gerr := s.GetQuarantine(ctx, projectID, id); gerr != nil {
			return domain.QuarantineItem{}, gerr
		}
		return domain.QuarantineItem{}, domain.ErrStale
	}
	if err != nil {
		return domain.QuarantineItem{}, err
	}
	return out.item()
}

// unclaimedFilter matches an item without a live claim (none, or one made
// before staleBefore).
func unclaimedFilter(staleBefore time.Time) bson.E {
	return bson.E{Key: "$or", Value: bson.A{
		bson.D{{Key: "claim", Value: nil}},
		bson.D{{Key: "claim", Value: ""}},
		bson.D{{Key: "claimed_at", Value: bson.D{{Key: "$lt", Value: ms(staleBefore)}}}},
	}}
}

// ClaimQuarantine claims an open item for a re-apply (see domain).
func (s *Store) ClaimQuarantine(ctx context.Context, projectID, id, claim string, at, staleBefore time.Time) (domain.QuarantineItem, error) {
	return s.decide(ctx, projectID, id, append(openFilter(), unclaimedFilter(staleBefore)),
		bson.D{{Key: "$set", Value: bson.D{{Key: "claim", Value: claim}, {Key: "claimed_at", Value: ms(at)}}}})
}

// SettleQuarantine records a re-apply made under claim (see domain).
func (s *Store) SettleQuarantine(ctx context.Context, projectID, id, claim string, r domain.QuarantineReapply) (domain.QuarantineItem, error) {
	if claim == "" {
		return domain.QuarantineItem{}, domain.ErrStale
	}
	data, dataJSON, err := encodeJSON(r.Data)
	if err != nil {
		return domain.QuarantineItem{}, err
	}
	rd := reapplyDoc{By: r.By, At: ms(r.At), Applied: r.Applied, Status: r.Status, Rev: r.Rev, FormVersion: r.FormVersion, Data: data, DataJSON: dataJSON}
	for _, f := range r.Errors {
		rd.Errors = append(rd.Errors, findingDoc(f))
	}
	set := bson.D{{Key: "last_reapply", Value: rd}}
	unset := bson.D{{Key: "claim", Value: ""}, {Key: "claimed_at", Value: ""}}
	if r.Applied {
		cur, err := s.GetQuarantine(ctx, projectID, id)
		if err != nil {
			return domain.QuarantineItem{}, err
		}
		if cur.ResolvedAt == nil {
			// Read first, written under the claim: only the claim holder
			// settles, and a push that resolved the item meanwhile keeps
			// its (earlier) time.
			set = append(set, bson.E{Key: "resolved_at", Value: ms(r.At)})
		}
		set = append(set, bson.E{Key: "resolved_by", Value: r.By})
	} else if len(rd.Errors) > 0 {
		set = append(set, bson.E{Key: "errors", Value: rd.Errors})
	} else {
		unset = append(unset, bson.E{Key: "errors", Value: ""})
	}
	return s.decide(ctx, projectID, id, bson.D{{Key: "claim", Value: claim}},
		bson.D{{Key: "$set", Value: set}, {Key: "$unset", Value: unset}})
}

// DismissQuarantine dismisses an open item without a live claim (see domain).
func (s *Store) DismissQuarantine(ctx context.Context, projectID, id string, d domain.QuarantineDismissal, staleBefore time.Time) (domain.QuarantineItem, error) {
	return s.decide(ctx, projectID, id, append(openFilter(), unclaimedFilter(staleBefore)),
		bson.D{{Key: "$set", Value: bson.D{{Key: "dismissed_at", Value: ms(d.At)}, {Key: "dismissed_by", Value: d.By}, {Key: "dismiss_reason", Value: d.Reason}}},
			{Key: "$unset", Value: bson.D{{Key: "claim", Value: ""}, {Key: "claimed_at", Value: ""}}}})
}
