package syncer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// Status words of protocol.md §3 that Resolve returns.
const (
	// StatusMerged: the policy settled the stale push without a clash.
	StatusMerged = "merged"
	// StatusConflict: a clash was recorded for an analyst (or the policy is
	// reject, or the pushed edit lost under last-write-wins).
	StatusConflict = "conflict"
)

// ErrNotStale is returned by Resolve when the edit's base is the current
// revision: that push is a plain update ("updated"), which needs no policy.
var ErrNotStale = errors.New("base revision is the current revision")

// Version is one state of a record as Resolve sees it: a revision's content and
// who made it, where and when (by the device's clock).
type Version struct {
	Rev              string
	Data             json.RawMessage // any key order or spacing; empty means null
	Deleted          bool
	ClientModifiedAt time.Time
	// OrderAt, when set, is the time Resolve orders this version by instead of
	// ClientModifiedAt (which conflict entries still report as it was sent):
	// the caller bounds a device clock that runs ahead (see records).
	OrderAt  time.Time
	DeviceID string
	By       string // the user or device subject that wrote it
}

// orderAt is the time the version is ordered by.
func (v Version) orderAt() time.Time {
	if !v.OrderAt.IsZero() {
		return v.OrderAt
	}
	return v.ClientModifiedAt
}

// ResolveInput is a pushed edit whose base_rev is older than the record's current
// revision, with everything the policy needs to settle it.
type ResolveInput struct {
	// Policy is the form's conflict_policy: domain.PolicyMerge (also for ""; it is
	// the protocol's default), domain.PolicyReject or domain.PolicyLastWriteWins.
	Policy string
	// Base is the revision the edit was made from. Base.Rev is the pushed
	// base_rev; Data and Deleted are its content unless BaseMissing. Base.Rev ""
	// (a create pushed for an id that exists) means the edit has no ancestor: its
	// base is the empty record {}, and BaseMissing is ignored.
	Base Version
	// BaseMissing says the server does not hold Base's content (it never received
	// that revision, or no longer keeps it). See Resolve for what that changes.
	BaseMissing bool
	// Current is the record's current revision on the server.
	Current Version
	// Incoming is the pushed edit. Its Rev may be left empty; when set it must be
	// NewRev(Base.Rev, Incoming.Data, Incoming.Deleted).
	Incoming Version
	// Validate, when set, checks data the outcome would apply against the
	// schema of the form version the new revision will carry (the incoming
	// edit's), returning its findings, none when the data is valid. Each side
	// may be valid on its own and their field-level merge still break a rule
	// that ties fields together ("no age without consent"), so the outcome is
	// checked, not only the pushed edit. See Resolve for what a refusal does.
	Validate func(data json.RawMessage) []domain.Finding
}

// ResolveOutput is the outcome of a stale push.
type ResolveOutput struct {
	// Status is StatusMerged or StatusConflict, the word the push result carries.
	Status string
	// Applied says a new revision is to be stored as the child of Current.Rev:
	// Rev, Data and Deleted below. When false the record's content stays as it is
	// (Conflicts may still have to be added to it).
	Applied bool
	// Rev, Data (canonical) and Deleted are the record's content afterwards: the
	// new revision when Applied, the current one otherwise.
	Rev     string
	Data    json.RawMessage
	Deleted bool
	// IncomingRev is the edit's own revision, NewRev(Base.Rev, Incoming.Data,
	// Incoming.Deleted). Conflict entries name it; the caller can keep it in the
	// history to recognise a retried push (Resolve itself cannot: run again
	// against the record it produced, it records the clashes a second time).
	IncomingRev string
	// Conflicts are the entries to append to the record's conflicts, in a
	// deterministic order; nil when there are none.
	Conflicts []domain.Conflict
	// Findings are why Validate refused the data the policy would have
	// applied (JSON pointers relative to the data); nil when it did not.
	Findings []domain.Finding
}

// Resolve applies the form's conflict policy (protocol.md §3) to an edit pushed on
// a stale base_rev. It is pure and deterministic: the same input gives the same
// output on every instance.
//
// Who wins: the side with the later ClientModifiedAt (OrderAt where set); on equal times the side
// with the larger revision hash (CompareRevs of Current.Rev and IncomingRev). One
// comparison serves every clash of the edit, since all its fields were saved at
// the same time.
//
// Before any policy, two cases lose nothing and are StatusMerged without a
// conflict and without a new revision: the edit equals the current content (two
// devices made the same edit, or a tombstone meets a tombstone), or the edit
// equals its base (it changed nothing). Tombstones are compared by their deleted
// flag alone; the data a tombstone carries never makes a conflict.
//
// merge: a three-way Merge of the current and incoming data against the base data
// (a base that is a tombstone or has no object data counts as {}). No clash:
// StatusMerged. Clashes: StatusConflict, the merged data is still applied with the
// winner's value at every clash, and each clash becomes a Conflict with its Path,
// the Base value and two Values: the winner's (the value that stands) first, then
// the loser's. A side that removed the field has Value null and Deleted true
// (Deleted means "nothing at Path on this side"); Base is nil (null on the wire)
// both for a base without the field and for a missing base. A tombstone on one
// side against an edit on the other is a whole-record clash (Path "", Values with
// whole data and Deleted flags, winner first): the winner stands, StatusConflict;
// unless the current content still equals the base, in which case the incoming
// delete or undelete simply applies (StatusMerged). With BaseMissing nothing
// counts as unchanged: every field where the two sides differ, including a field
// only one side has, is a clash, and a tombstone against an edit always clashes.
//
// reject: nothing is applied; StatusConflict with one whole-record Conflict
// holding the current content (which stands) and the incoming edit. It stays strict even
// when the current content equals the base: the point of the policy is that no
// edit made on a stale base applies without a person.
//
// last-write-wins: the winner's whole content stands. Incoming wins: it is
// applied and StatusMerged (the pusher's edit is what the record now holds), and
// the overridden current content is kept as a whole-record Conflict. Current wins:
// nothing is applied, StatusConflict (the pusher's edit did not make it, which
// the push result must not hide), and the incoming edit is kept as a whole-record
// Conflict. If the current content still equals the base, the incoming edit
// applies without a conflict whatever the clocks say: nothing is overridden.
// Whole-record entries hold both sides, the one that stands first and the one
// that did not make it second (an analyst settling the clash sees both without
// looking up the record), Base being the base data (nil when missing or when
// Base.Rev is "").
//
// Validate: whatever the policy, data that would be applied (not a tombstone)
// and that Validate refuses is not applied. The outcome is then the reject
// policy's: nothing applied, StatusConflict, one whole-record Conflict holding
// the current content and the incoming edit, with Validate's findings in Findings. So with Validate
// set, Resolve never applies data the form refuses; it only ever has to
// refuse a merge (the other policies apply the incoming data, which the
// caller checked against the same schema before).
//
// Resolve returns an error, and no outcome, for an unknown policy, a Base.Rev
// equal to Current.Rev (ErrNotStale), malformed revisions (ErrBadRev), an
// Incoming.Rev that is not the edit's revision, data Canonical refuses
// (*JSONError), and non-object data of a side that is not deleted under the
// merge policy (ErrNotObject).
func Resolve(in ResolveInput) (ResolveOutput, error) {
	policy := in.Policy
	if policy == "" {
		policy = domain.PolicyMerge
	}
	switch policy {
	case domain.PolicyMerge, domain.PolicyReject, domain.PolicyLastWriteWins:
	default:
		return ResolveOutput{}, fmt.Errorf("syncer: unknown conflict policy %q", in.Policy)
	}
	if _, _, err := ParseRev(in.Current.Rev); err != nil {
		return ResolveOutput{}, fmt.Errorf("syncer: current rev: %w", err)
	}
	if in.Base.Rev == in.Current.Rev {
		return ResolveOutput{}, ErrNotStale
	}
	cur, err := stateOf(in.Current)
	if err != nil {
		return ResolveOutput{}, fmt.Errorf("syncer: current data: %w", err)
	}
	inc, err := stateOf(in.Incoming)
	if err != nil {
		return ResolveOutput{}, fmt.Errorf("syncer: incoming data: %w", err)
	}
	incomingRev, err := revOf(in.Base.Rev, inc.data, inc.deleted)
	if err != nil {
		return ResolveOutput{}, fmt.Errorf("syncer: base rev: %w", err)
	}
	if in.Incoming.Rev != "" && in.Incoming.Rev != incomingRev {
		return ResolveOutput{}, fmt.Errorf("syncer: incoming rev %q is not the edit's revision %q", in.Incoming.Rev, incomingRev)
	}
	known := true
	var base state
	var baseDoc json.RawMessage // the Base of whole-record entries
	switch {
	case in.Base.Rev == "":
		base = state{data: []byte("{}")}
	case in.BaseMissing:
		known = false
	default:
		if base, err = stateOf(in.Base); err != nil {
			return ResolveOutput{}, fmt.Errorf("syncer: base data: %w", err)
		}
		baseDoc = base.data
	}

	r := resolver{in: in, cur: cur, inc: inc, incomingRev: incomingRev, baseDoc: baseDoc}
	r.out = ResolveOutput{
		Status:      StatusMerged,
		Rev:         in.Current.Rev,
		Data:        cur.data,
		Deleted:     cur.deleted,
		IncomingRev: incomingRev,
	}
	ct, it := in.Current.orderAt(), in.Incoming.orderAt()
	r.incomingWins = it.After(ct) || (it.Equal(ct) && CompareRevs(incomingRev, in.Current.Rev) > 0)

	if cur.same(inc) || (known && inc.same(base)) {
		return r.out, nil
	}
	currentUnchanged := known && cur.same(base)
	switch policy {
	case domain.PolicyReject:
		r.out.Status = StatusConflict
		r.wholeRecord(r.currentValue(), r.incomingValue())
	case domain.PolicyLastWriteWins:
		switch {
		case currentUnchanged:
			err = r.apply(inc)
		case r.incomingWins:
			err = r.apply(inc)
			r.wholeRecord(r.incomingValue(), r.currentValue())
		default:
			r.out.Status = StatusConflict
			r.wholeRecord(r.currentValue(), r.incomingValue())
		}
	default: // merge
		switch {
		case cur.deleted || inc.deleted:
			if currentUnchanged {
				err = r.apply(inc)
				break
			}
			r.out.Status = StatusConflict
			if r.incomingWins {
				err = r.apply(inc)
				r.wholeRecord(r.incomingValue(), r.currentValue())
			} else {
				r.wholeRecord(r.currentValue(), r.incomingValue())
			}
		default:
			var baseData []byte
			if known {
				baseData = base.data
				if base.deleted || !isObject(baseData) {
					baseData = []byte("{}")
				}
			}
			err = r.merge(baseData)
		}
	}
	if err != nil {
		return ResolveOutput{}, err
	}
	if in.Validate != nil && r.out.Applied && !r.out.Deleted {
		if f := in.Validate(r.out.Data); len(f) > 0 {
			r.refuse(f)
		}
	}
	return r.out, nil
}

// refuse undoes the outcome the policy chose, whose data the form refuses
// (findings f), and keeps the incoming edit as a whole-record conflict, as the
// reject policy does: the record stays valid, and an analyst decides.
func (r *resolver) refuse(f []domain.Finding) {
	r.out = ResolveOutput{
		Status:      StatusConflict,
		Rev:         r.in.Current.Rev,
		Data:        r.cur.data,
		Deleted:     r.cur.deleted,
		IncomingRev: r.incomingRev,
		Findings:    f,
	}
	r.wholeRecord(r.currentValue(), r.incomingValue())
}

// state is a record's content: canonical data and the deleted flag.
type state struct {
	data    []byte
	deleted bool
}

func stateOf(v Version) (state, error) {
	data := []byte(v.Data)
	if len(data) == 0 {
		data = []byte("null")
	}
	c, err := Canonical(data)
	return state{data: c, deleted: v.Deleted}, err
}

// same says two contents are equal; all tombstones are equal.
func (s state) same(o state) bool {
	return s.deleted == o.deleted && (s.deleted || bytes.Equal(s.data, o.data))
}

// resolver holds one Resolve call's inputs and its output in the making.
type resolver struct {
	in           ResolveInput
	cur, inc     state
	incomingRev  string
	baseDoc      json.RawMessage
	incomingWins bool
	out          ResolveOutput
}

// apply makes s the new revision, a child of the current one.
func (r *resolver) apply(s state) error {
	rev, err := revOf(r.in.Current.Rev, s.data, s.deleted)
	if err != nil {
		return err
	}
	r.out.Applied, r.out.Rev, r.out.Data, r.out.Deleted = true, rev, s.data, s.deleted
	return nil
}

func (r *resolver) merge(baseData []byte) error {
	ours, theirs := r.cur.data, r.inc.data
	if r.incomingWins {
		ours, theirs = theirs, ours
	}
	if !isObject(ours) || !isObject(theirs) {
		return ErrNotObject
	}
	// The data is canonical already: merge it without canonicalising again.
	merged, clashes := mergeCanonical(baseData, ours, theirs, baseData != nil)
	for _, c := range clashes {
		cv, iv := c.Ours, c.Theirs
		if r.incomingWins {
			cv, iv = iv, cv
		}
		cur := fieldValue(r.in.Current, r.in.Current.Rev, cv)
		inc := fieldValue(r.in.Incoming, r.incomingRev, iv)
		values := []domain.ConflictValue{cur, inc}
		if r.incomingWins {
			values = []domain.ConflictValue{inc, cur}
		}
		r.out.Conflicts = append(r.out.Conflicts, domain.Conflict{Path: c.Path, Base: c.Base, Values: values})
	}
	if len(clashes) > 0 {
		r.out.Status = StatusConflict
	}
	if !bytes.Equal(merged, r.cur.data) {
		return r.apply(state{data: merged})
	}
	return nil
}

func fieldValue(v Version, rev string, value json.RawMessage) domain.ConflictValue {
	return domain.ConflictValue{
		Rev:              rev,
		Value:            value,
		Deleted:          value == nil,
		ClientModifiedAt: v.ClientModifiedAt,
		DeviceID:         v.DeviceID,
		By:               v.By,
	}
}

func (r *resolver) currentValue() domain.ConflictValue {
	return wholeValue(r.in.Current, r.in.Current.Rev, r.cur)
}

func (r *resolver) incomingValue() domain.ConflictValue {
	return wholeValue(r.in.Incoming, r.incomingRev, r.inc)
}

func wholeValue(v Version, rev string, s state) domain.ConflictValue {
	return domain.ConflictValue{
		Rev:              rev,
		Value:            s.data,
		Deleted:          s.deleted,
		ClientModifiedAt: v.ClientModifiedAt,
		DeviceID:         v.DeviceID,
		By:               v.By,
	}
}

func (r *resolver) wholeRecord(values ...domain.ConflictValue) {
	r.out.Conflicts = append(r.out.Conflicts, domain.Conflict{Path: "", Base: r.baseDoc, Values: values})
}
