package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// recordID makes a UUID-shaped record id, as clients make them.
func recordID(i int) string { return fmt.Sprintf("3f0c5c1e-0000-4000-8000-%012d", i) }

// revFor makes a deterministic rev "<gen>-<hash>" for a record's generation.
func revFor(id string, gen int, salt string) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s/%d/%s", id, gen, salt)))
	return strconv.Itoa(gen) + "-" + hex.EncodeToString(sum[:16])
}

// generation returns the generation of a rev made by revFor.
func generation(rev string) int {
	g, _, _ := strings.Cut(rev, "-")
	n, _ := strconv.Atoi(g)
	return n
}

// testRecord is the state of a record at generation gen, created by createdBy.
func testRecord(project, id, createdBy string, gen int) domain.Record {
	return domain.Record{
		ProjectID: project, ID: id, FormID: "perception", FormVersion: "1", Rev: revFor(id, gen, ""),
		Data: json.RawMessage(fmt.Sprintf(`{"feels_safe_day": "safe", "respondent": {"age": %d, "village": "Gudele"},`+
			` "threats": ["theft", "gbv"], "gen": %d}`, 20+gen, gen)),
		CreatedBy: createdBy, DeviceID: strings.TrimPrefix(createdBy, "device:"), ClientModifiedAt: at(gen),
		CreatedAt: at(0), UpdatedAt: at(gen), ReviewState: domain.ReviewReceived,
	}
}

// next returns r at its next generation.
func next(r domain.Record) domain.Record {
	gen := generation(r.Rev) + 1
	n := testRecord(r.ProjectID, r.ID, r.CreatedBy, gen)
	n.AssignedTo, n.Shared, n.FormID = r.AssignedTo, r.Shared, r.FormID
	return n
}

// revisionOf is the history entry of r's current state.
func revisionOf(r domain.Record, parent string) domain.Revision {
	return domain.Revision{
		ProjectID: r.ProjectID, RecordID: r.ID, Rev: r.Rev, Parent: parent, Deleted: r.Deleted, Data: r.Data,
		FormVersion: r.FormVersion, ClientModifiedAt: r.ClientModifiedAt, CreatedBy: r.CreatedBy,
		DeviceID: r.DeviceID, CreatedAt: r.UpdatedAt,
	}
}

// create is the write that creates r.
func create(r domain.Record) domain.RecordWrite {
	return domain.RecordWrite{Record: r, Revisions: []domain.Revision{revisionOf(r, "")}}
}

// update is the write that moves a record from rev expect to r.
func update(r domain.Record, expect string) domain.RecordWrite {
	return domain.RecordWrite{Record: r, ExpectRev: expect, Revisions: []domain.Revision{revisionOf(r, expect)}}
}

// writeAll runs one WriteRecords batch that must succeed as a whole and returns
// the per-item results and the writes with their Seq set.
func writeAll(tb testing.TB, ctx context.Context, st domain.Store, writes ...domain.RecordWrite) ([]error, []domain.RecordWrite) {
	tb.Helper()
	results, err := st.WriteRecords(ctx, writes)
	noErr(tb, err, "WriteRecords")
	if len(results) != len(writes) {
		tb.Fatalf("WriteRecords: %d results for %d writes", len(results), len(writes))
	}
	return results, writes
}

// mustWrite runs one WriteRecords batch whose every item must be applied, and
// returns the written records with their Seq.
func mustWrite(tb testing.TB, ctx context.Context, st domain.Store, writes ...domain.RecordWrite) []domain.Record {
	tb.Helper()
	results, writes := writeAll(tb, ctx, st, writes...)
	out := make([]domain.Record, len(writes))
	for i, r := range results {
		if r != nil {
			tb.Fatalf("WriteRecords item %d (%s): %v", i, writes[i].Record.ID, r)
		}
		if writes[i].Record.Seq <= 0 || writes[i].Record.Version <= 0 {
			tb.Fatalf("WriteRecords item %d: Seq %d, Version %d: not set on the applied write", i,
				writes[i].Record.Seq, writes[i].Record.Version)
		}
		out[i] = writes[i].Record
	}
	return out
}

// sameRecord fails unless got equals want in every field (Seq included).
func sameRecord(tb testing.TB, what string, got, want domain.Record) {
	tb.Helper()
	same(tb, what, got, want)
}

// getRecord reads a record that must exist.
func getRecord(tb testing.TB, ctx context.Context, st domain.Store, project, id string) domain.Record {
	tb.Helper()
	r, err := st.GetRecord(ctx, project, id)
	noErr(tb, err, "GetRecord "+id)
	return r
}

func (s suite) records(t *testing.T) {
	s.run(t, "CreateGet", func(t *testing.T, ctx context.Context, st domain.Store) {
		r := testRecord("juba", recordID(1), "device:d1", 1)
		w := mustWrite(t, ctx, st, create(r))[0]
		// WriteRecords sets Seq and Version in the caller's slice; everything else
		// is stored as given.
		r.Seq, r.Version = w.Seq, 1
		sameRecord(t, "written record", w, r)
		sameRecord(t, "record", getRecord(t, ctx, st, "juba", r.ID), r)
	})
	s.run(t, "AllFields", func(t *testing.T, ctx context.Context, st domain.Store) {
		r := testRecord("juba", recordID(1), "device:d1", 3)
		r.Deleted, r.Shared = true, true
		r.ReviewState, r.ReviewComment = domain.ReviewHasIssues, "Village name misspelt"
		r.AssignedTo = []string{"device:d2", "bob"}
		r.Attachments = []domain.Attachment{{Name: "site.jpg", SHA256: strings.Repeat("ab", 32), Size: 48213,
			ContentType: "image/jpeg"}}
		r.Conflicts = []domain.Conflict{{
			Path: "/feels_safe_day", Base: json.RawMessage(`"safe"`),
			Values: []domain.ConflictValue{
				{Rev: revFor(r.ID, 2, "a"), Value: json.RawMessage(`"unsafe"`), ClientModifiedAt: at(2), DeviceID: "d1"},
				{Rev: revFor(r.ID, 2, "b"), Value: json.RawMessage(`"very_unsafe"`), ClientModifiedAt: at(3), By: "bob"},
			},
		}}
		r.Seq, r.Version = mustWrite(t, ctx, st, create(r))[0].Seq, 1
		sameRecord(t, "record", getRecord(t, ctx, st, "juba", r.ID), r)
	})
	s.run(t, "CreateExisting", func(t *testing.T, ctx context.Context, st domain.Store) {
		r := testRecord("juba", recordID(1), "device:d1", 1)
		first := mustWrite(t, ctx, st, create(r))[0]
		results, writes := writeAll(t, ctx, st, create(testRecord("juba", recordID(1), "device:d2", 1)))
		isErr(t, results[0], domain.ErrExists, "second create")
		if writes[0].Record.Seq != 0 {
			t.Errorf("Seq %d set on a write that was not applied", writes[0].Record.Seq)
		}
		sameRecord(t, "record after second create", getRecord(t, ctx, st, "juba", r.ID), first)
	})
	s.run(t, "Update", func(t *testing.T, ctx context.Context, st domain.Store) {
		r1 := mustWrite(t, ctx, st, create(testRecord("juba", recordID(1), "device:d1", 1)))[0]
		r2 := next(r1)
		r2.ReviewState, r2.AssignedTo = domain.ReviewApproved, []string{"bob"}
		r2 = mustWrite(t, ctx, st, update(r2, r1.Rev))[0]
		if r2.Seq <= r1.Seq {
			t.Errorf("Seq after update %d, want more than %d", r2.Seq, r1.Seq)
		}
		sameRecord(t, "updated record", getRecord(t, ctx, st, "juba", r1.ID), r2)
	})
	s.run(t, "UpdateStale", func(t *testing.T, ctx context.Context, st domain.Store) {
		r1 := mustWrite(t, ctx, st, create(testRecord("juba", recordID(1), "device:d1", 1)))[0]
		r2 := mustWrite(t, ctx, st, update(next(r1), r1.Rev))[0]
		results, writes := writeAll(t, ctx, st, update(next(r1), r1.Rev))
		isErr(t, results[0], domain.ErrStale, "update on an old rev")
		if writes[0].Record.Seq != 0 {
			t.Errorf("Seq %d set on a write that was not applied", writes[0].Record.Seq)
		}
		sameRecord(t, "record after stale update", getRecord(t, ctx, st, "juba", r1.ID), r2)
	})
	s.run(t, "UpdateMissing", func(t *testing.T, ctx context.Context, st domain.Store) {
		r := testRecord("juba", recordID(1), "device:d1", 2)
		results, _ := writeAll(t, ctx, st, update(r, revFor(r.ID, 1, "")))
		isErr(t, results[0], domain.ErrNotFound, "update of a missing record")
		_, err := st.GetRecord(ctx, "juba", r.ID)
		isErr(t, err, domain.ErrNotFound, "GetRecord after update of a missing record")
	})
	s.run(t, "GetUnknown", func(t *testing.T, ctx context.Context, st domain.Store) {
		mustWrite(t, ctx, st, create(testRecord("juba", recordID(1), "device:d1", 1)))
		_, err := st.GetRecord(ctx, "juba", recordID(2))
		isErr(t, err, domain.ErrNotFound, "GetRecord of unknown id")
		_, err = st.GetRecord(ctx, "wau", recordID(1))
		isErr(t, err, domain.ErrNotFound, "GetRecord in another project")
	})
	s.run(t, "BatchEachOnItsOwn", func(t *testing.T, ctx context.Context, st domain.Store) {
		existing := mustWrite(t, ctx, st, create(testRecord("juba", recordID(9), "device:d1", 1)))[0]
		a1 := testRecord("juba", recordID(1), "device:d1", 1)
		a2 := next(a1)
		c1 := testRecord("juba", recordID(3), "device:d1", 1)
		results, writes := writeAll(t, ctx, st,
			create(a1),               // applied
			create(next(a1)),         // the record exists now: ErrExists
			update(a2, a1.Rev),       // sees the first item: applied
			update(next(a1), a1.Rev), // a1 is no longer current: ErrStale
			update(testRecord("juba", recordID(2), "device:d1", 2), revFor(recordID(2), 1, "")), // ErrNotFound
			create(c1),                      // applied
			update(next(existing), "1-bad"), // ErrStale
		)
		want := []error{nil, domain.ErrExists, nil, domain.ErrStale, domain.ErrNotFound, nil, domain.ErrStale}
		var last int64
		for i, err := range results {
			isErr(t, err, want[i], fmt.Sprintf("item %d", i))
			if want[i] != nil {
				continue
			}
			if writes[i].Record.Seq <= last {
				t.Errorf("item %d: Seq %d not above the previous applied item's %d", i, writes[i].Record.Seq, last)
			}
			last = writes[i].Record.Seq
		}
		a2.Seq, c1.Seq = writes[2].Record.Seq, writes[5].Record.Seq
		a2.Version, c1.Version = 2, 1
		sameRecord(t, "record written twice in one batch", getRecord(t, ctx, st, "juba", a1.ID), a2)
		sameRecord(t, "created record", getRecord(t, ctx, st, "juba", c1.ID), c1)
		sameRecord(t, "record of a stale item", getRecord(t, ctx, st, "juba", existing.ID), existing)
	})
	s.run(t, "VersionCountsWrites", func(t *testing.T, ctx context.Context, st domain.Store) {
		r := mustWrite(t, ctx, st, create(testRecord("juba", recordID(1), "device:d1", 1)))[0]
		if r.Version != 1 {
			t.Errorf("Version after create %d, want 1", r.Version)
		}
		meta := r
		meta.ReviewState = domain.ReviewApproved
		meta.Version = 99 // the store counts; the caller's value does not matter
		meta = mustWrite(t, ctx, st, domain.RecordWrite{Record: meta, ExpectRev: r.Rev})[0]
		if meta.Version != 2 {
			t.Errorf("Version after a metadata write %d, want 2", meta.Version)
		}
		edit := next(meta)
		results, writes := writeAll(t, ctx, st, update(edit, meta.Rev), update(next(edit), edit.Rev))
		for i, err := range results {
			noErr(t, err, fmt.Sprintf("item %d", i))
		}
		if writes[0].Record.Version != 3 || writes[1].Record.Version != 4 {
			t.Errorf("Versions of two writes in one batch %d, %d; want 3, 4", writes[0].Record.Version,
				writes[1].Record.Version)
		}
		sameRecord(t, "record after four writes", getRecord(t, ctx, st, "juba", r.ID), writes[1].Record)
	})
	s.run(t, "ExpectVersion", func(t *testing.T, ctx context.Context, st domain.Store) {
		r := mustWrite(t, ctx, st, create(testRecord("juba", recordID(1), "device:d1", 1)))[0]
		approve := r
		approve.ReviewState = domain.ReviewApproved
		assign := r
		assign.AssignedTo = []string{"device:d2"}
		// Two metadata writes based on the same state: the rev does not tell them
		// apart, the version does.
		approve = mustWrite(t, ctx, st, domain.RecordWrite{Record: approve, ExpectRev: r.Rev, ExpectVersion: r.Version})[0]
		results, _ := writeAll(t, ctx, st, domain.RecordWrite{Record: assign, ExpectRev: r.Rev, ExpectVersion: r.Version})
		isErr(t, results[0], domain.ErrStale, "write on an old version with the current rev")
		sameRecord(t, "record after the refused write", getRecord(t, ctx, st, "juba", r.ID), approve)
		// ExpectVersion 0 checks the rev only.
		assign.ReviewState = domain.ReviewApproved
		assign = mustWrite(t, ctx, st, domain.RecordWrite{Record: assign, ExpectRev: r.Rev})[0]
		if assign.Version != 3 {
			t.Errorf("Version %d, want 3", assign.Version)
		}
		// Both conditions hold: applied.
		edit := next(assign)
		edit = mustWrite(t, ctx, st, domain.RecordWrite{Record: edit, ExpectRev: assign.Rev, ExpectVersion: 3,
			Revisions: []domain.Revision{revisionOf(edit, assign.Rev)}})[0]
		sameRecord(t, "record", getRecord(t, ctx, st, "juba", r.ID), edit)
	})
	s.run(t, "SeqIncreasesPerProject", func(t *testing.T, ctx context.Context, st domain.Store) {
		last := map[string]int64{}
		for i := range 6 {
			project := []string{"juba", "wau"}[i%2]
			batch := []domain.RecordWrite{
				create(testRecord(project, recordID(2*i), "device:d1", 1)),
				create(testRecord(project, recordID(2*i+1), "device:d1", 1)),
			}
			for _, r := range mustWrite(t, ctx, st, batch...) {
				if r.Seq <= last[project] {
					t.Errorf("project %s: Seq %d after %d", project, r.Seq, last[project])
				}
				last[project] = r.Seq
			}
		}
	})
	s.run(t, "EmptyBatch", func(t *testing.T, ctx context.Context, st domain.Store) {
		results, err := st.WriteRecords(ctx, nil)
		noErr(t, err, "WriteRecords of no writes")
		if len(results) != 0 {
			t.Errorf("WriteRecords of no writes: %d results", len(results))
		}
	})
	s.run(t, "GetRecords", func(t *testing.T, ctx context.Context, st domain.Store) {
		a := mustWrite(t, ctx, st, create(testRecord("juba", recordID(1), "device:d1", 1)))[0]
		b := mustWrite(t, ctx, st, create(testRecord("juba", recordID(2), "device:d2", 1)))[0]
		mustWrite(t, ctx, st, create(testRecord("wau", recordID(3), "device:d1", 1)))
		got, err := st.GetRecords(ctx, "juba", []string{recordID(2), recordID(1), recordID(3), recordID(4)})
		noErr(t, err, "GetRecords")
		same(t, "GetRecords", got, map[string]domain.Record{a.ID: a, b.ID: b})
		got, err = st.GetRecords(ctx, "juba", nil)
		noErr(t, err, "GetRecords of no ids")
		if len(got) != 0 {
			t.Errorf("GetRecords of no ids: %d records", len(got))
		}
	})
}

func (s suite) revisions(t *testing.T) {
	s.run(t, "AppendAndList", func(t *testing.T, ctx context.Context, st domain.Store) {
		r1 := mustWrite(t, ctx, st, create(testRecord("juba", recordID(1), "device:d1", 1)))[0]
		// A merge writes the merged state and keeps the incoming edit too.
		edit := next(r1)
		edit.Rev, edit.CreatedBy, edit.DeviceID = revFor(r1.ID, 2, "edit"), "device:d2", "d2"
		merged := next(next(r1))
		w := update(merged, r1.Rev)
		editRev := revisionOf(edit, r1.Rev)
		editRev.CreatedAt = at(2)
		mergedRev := revisionOf(merged, edit.Rev)
		mergedRev.CreatedAt = at(3)
		w.Revisions = []domain.Revision{mergedRev, editRev}
		mustWrite(t, ctx, st, w)

		got, err := st.GetRevision(ctx, "juba", r1.ID, edit.Rev)
		noErr(t, err, "GetRevision")
		same(t, "revision", got, editRev)
		list, err := st.ListRevisions(ctx, "juba", r1.ID)
		noErr(t, err, "ListRevisions")
		// Oldest first: by CreatedAt.
		same(t, "revisions", list, []domain.Revision{revisionOf(r1, ""), editRev, mergedRev})
	})
	s.run(t, "AppendIsIdempotent", func(t *testing.T, ctx context.Context, st domain.Store) {
		r1 := mustWrite(t, ctx, st, create(testRecord("juba", recordID(1), "device:d1", 1)))[0]
		// A metadata write re-sends the current revision with other content: the
		// stored one is left as it is.
		meta := r1
		meta.ReviewState = domain.ReviewApproved
		again := revisionOf(r1, "")
		again.Data, again.CreatedAt = json.RawMessage(`{"changed": true}`), at(30)
		mustWrite(t, ctx, st, domain.RecordWrite{Record: meta, ExpectRev: r1.Rev, Revisions: []domain.Revision{again}})
		list, err := st.ListRevisions(ctx, "juba", r1.ID)
		noErr(t, err, "ListRevisions")
		same(t, "revisions after re-append", list, []domain.Revision{revisionOf(r1, "")})
	})
	s.run(t, "MetadataWriteAppendsNothing", func(t *testing.T, ctx context.Context, st domain.Store) {
		r1 := mustWrite(t, ctx, st, create(testRecord("juba", recordID(1), "device:d1", 1)))[0]
		meta := r1
		meta.AssignedTo = []string{"device:d2"}
		meta = mustWrite(t, ctx, st, domain.RecordWrite{Record: meta, ExpectRev: r1.Rev})[0]
		sameRecord(t, "record after metadata write", getRecord(t, ctx, st, "juba", r1.ID), meta)
		list, err := st.ListRevisions(ctx, "juba", r1.ID)
		noErr(t, err, "ListRevisions")
		same(t, "revisions after metadata write", list, []domain.Revision{revisionOf(r1, "")})
	})
	s.run(t, "RejectedWriteAppendsNothing", func(t *testing.T, ctx context.Context, st domain.Store) {
		r1 := mustWrite(t, ctx, st, create(testRecord("juba", recordID(1), "device:d1", 1)))[0]
		stale := next(r1)
		results, _ := writeAll(t, ctx, st, update(stale, "1-other"), create(next(r1)))
		isErr(t, results[0], domain.ErrStale, "stale update")
		isErr(t, results[1], domain.ErrExists, "create of existing")
		_, err := st.GetRevision(ctx, "juba", r1.ID, stale.Rev)
		isErr(t, err, domain.ErrNotFound, "GetRevision of a rejected write's revision")
		list, err := st.ListRevisions(ctx, "juba", r1.ID)
		noErr(t, err, "ListRevisions")
		same(t, "revisions after rejected writes", list, []domain.Revision{revisionOf(r1, "")})
	})
	s.run(t, "Unknown", func(t *testing.T, ctx context.Context, st domain.Store) {
		r1 := mustWrite(t, ctx, st, create(testRecord("juba", recordID(1), "device:d1", 1)))[0]
		_, err := st.GetRevision(ctx, "juba", r1.ID, "9-nope")
		isErr(t, err, domain.ErrNotFound, "GetRevision of unknown rev")
		_, err = st.GetRevision(ctx, "wau", r1.ID, r1.Rev)
		isErr(t, err, domain.ErrNotFound, "GetRevision in another project")
		// ListRevisions promises no ErrNotFound: an unknown record has no history.
		list, err := st.ListRevisions(ctx, "juba", recordID(2))
		noErr(t, err, "ListRevisions of unknown record")
		if len(list) != 0 {
			t.Errorf("ListRevisions of unknown record: %d revisions", len(list))
		}
	})
}
