package syncer

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

var t0 = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

// side is one version of a test case: data ("" means empty), deleted, and its
// client_modified_at as minutes after t0.
type side struct {
	data    string
	deleted bool
	min     int
}

// wantValue names the side a conflict value comes from ("cur" or "inc"), its
// value ("" = nil) and its Deleted flag.
type wantValue struct {
	side, value string
	deleted     bool
}

type wantConflict struct {
	path, base string // base "" = nil
	values     []wantValue
}

// Base shapes of a case.
const (
	baseHeld    = iota // the server holds the base revision
	baseMissing        // the server does not hold it
	baseNone           // base_rev "" (a create for an existing id)
)

const base3 = `{"a":1,"b":1,"c":1}`

type resolveCase struct {
	name        string
	policy      string
	baseKind    int
	base        side // its min is unused
	cur, inc    side
	tie         string // on equal times: "inc" or "cur" must have the larger hash
	wantStatus  string
	wantApplied bool
	wantData    string // canonical data afterwards
	wantDeleted bool
	conflicts   []wantConflict
}

var resolveCases = []resolveCase{
	// merge, base held.
	{
		name: "merge: disjoint edits, incoming later", policy: domain.PolicyMerge,
		base: side{data: base3}, cur: side{data: `{"a":2,"b":1,"c":1}`, min: 1}, inc: side{data: `{"a":1,"b":3,"c":1}`, min: 2},
		wantStatus: StatusMerged, wantApplied: true, wantData: `{"a":2,"b":3,"c":1}`,
	},
	{
		name: "merge: disjoint edits, current later", policy: domain.PolicyMerge,
		base: side{data: base3}, cur: side{data: `{"a":2,"b":1,"c":1}`, min: 2}, inc: side{data: `{"a":1,"b":3,"c":1,"d":4}`, min: 1},
		wantStatus: StatusMerged, wantApplied: true, wantData: `{"a":2,"b":3,"c":1,"d":4}`,
	},
	{
		name: "merge: clash, incoming later stands", policy: domain.PolicyMerge,
		base: side{data: base3}, cur: side{data: `{"a":2,"b":1,"c":1}`, min: 1}, inc: side{data: `{"a":3,"b":1,"c":1}`, min: 2},
		wantStatus: StatusConflict, wantApplied: true, wantData: `{"a":3,"b":1,"c":1}`,
		conflicts: []wantConflict{{"/a", "1", []wantValue{{"inc", "3", false}, {"cur", "2", false}}}},
	},
	{
		name: "merge: clash, current later stands, other incoming change applied", policy: domain.PolicyMerge,
		base: side{data: base3}, cur: side{data: `{"a":2,"b":1,"c":1}`, min: 2}, inc: side{data: `{"a":3,"b":1,"c":5}`, min: 1},
		wantStatus: StatusConflict, wantApplied: true, wantData: `{"a":2,"b":1,"c":5}`,
		conflicts: []wantConflict{{"/a", "1", []wantValue{{"cur", "2", false}, {"inc", "3", false}}}},
	},
	{
		name: "merge: clash only, current later: nothing applied", policy: domain.PolicyMerge,
		base: side{data: base3}, cur: side{data: `{"a":2,"b":1,"c":1}`, min: 2}, inc: side{data: `{"a":3,"b":1,"c":1}`, min: 1},
		wantStatus: StatusConflict, wantApplied: false, wantData: `{"a":2,"b":1,"c":1}`,
		conflicts: []wantConflict{{"/a", "1", []wantValue{{"cur", "2", false}, {"inc", "3", false}}}},
	},
	{
		name: "merge: clash tie, larger incoming hash stands", policy: domain.PolicyMerge,
		base: side{data: base3}, cur: side{data: `{"a":2,"b":1,"c":1}`, min: 1}, inc: side{data: `{"a":3,"b":1,"c":1}`, min: 1}, tie: "inc",
		wantStatus: StatusConflict, wantApplied: true, wantData: `{"a":3,"b":1,"c":1}`,
		conflicts: []wantConflict{{"/a", "1", []wantValue{{"inc", "3", false}, {"cur", "2", false}}}},
	},
	{
		name: "merge: clash tie, larger current hash stands", policy: domain.PolicyMerge,
		base: side{data: base3}, cur: side{data: `{"a":2,"b":1,"c":1}`, min: 1}, inc: side{data: `{"a":3,"b":1,"c":1}`, min: 1}, tie: "cur",
		wantStatus: StatusConflict, wantApplied: false, wantData: `{"a":2,"b":1,"c":1}`,
		conflicts: []wantConflict{{"/a", "1", []wantValue{{"cur", "2", false}, {"inc", "3", false}}}},
	},
	{
		name: "merge: several clashes, one winner for all", policy: domain.PolicyMerge,
		base:       side{data: `{"r":{"age":30,"g":"f"},"s":[1]}`},
		cur:        side{data: `{"r":{"age":31,"g":"m"},"s":[1,2]}`, min: 5},
		inc:        side{data: `{"r":{"age":32,"g":"x"},"s":[1,3]}`, min: 4},
		wantStatus: StatusConflict, wantApplied: false, wantData: `{"r":{"age":31,"g":"m"},"s":[1,2]}`,
		conflicts: []wantConflict{
			{"/r/age", "30", []wantValue{{"cur", "31", false}, {"inc", "32", false}}},
			{"/r/g", `"f"`, []wantValue{{"cur", `"m"`, false}, {"inc", `"x"`, false}}},
			{"/s", "[1]", []wantValue{{"cur", "[1,2]", false}, {"inc", "[1,3]", false}}},
		},
	},
	{
		name: "merge: removed by incoming against changed by current", policy: domain.PolicyMerge,
		base: side{data: base3}, cur: side{data: `{"a":2,"b":1,"c":1}`, min: 1}, inc: side{data: `{"b":1,"c":1}`, min: 2},
		wantStatus: StatusConflict, wantApplied: true, wantData: `{"b":1,"c":1}`,
		conflicts: []wantConflict{{"/a", "1", []wantValue{{"inc", "", true}, {"cur", "2", false}}}},
	},
	{
		name: "merge: both made the same edit", policy: domain.PolicyMerge,
		base: side{data: base3}, cur: side{data: `{"a":2,"b":1,"c":1}`, min: 1}, inc: side{data: `{"c":1,"b":1,"a":2}`, min: 2},
		wantStatus: StatusMerged, wantApplied: false, wantData: `{"a":2,"b":1,"c":1}`,
	},
	{
		name: "merge: incoming changed nothing", policy: domain.PolicyMerge,
		base: side{data: base3}, cur: side{data: `{"a":2,"b":1,"c":1}`, min: 1}, inc: side{data: base3, min: 2},
		wantStatus: StatusMerged, wantApplied: false, wantData: `{"a":2,"b":1,"c":1}`,
	},
	{
		name: "merge: current content still the base", policy: domain.PolicyMerge,
		base: side{data: base3}, cur: side{data: base3, min: 5}, inc: side{data: `{"a":9,"b":1,"c":1}`, min: 1},
		wantStatus: StatusMerged, wantApplied: true, wantData: `{"a":9,"b":1,"c":1}`,
	},
	{
		name: "merge: default policy is merge", policy: "",
		base: side{data: base3}, cur: side{data: `{"a":2,"b":1,"c":1}`, min: 1}, inc: side{data: `{"a":1,"b":3,"c":1}`, min: 2},
		wantStatus: StatusMerged, wantApplied: true, wantData: `{"a":2,"b":3,"c":1}`,
	},

	// merge, deletes.
	{
		name: "merge: current deleted later against incoming edit", policy: domain.PolicyMerge,
		base: side{data: base3}, cur: side{data: `null`, deleted: true, min: 2}, inc: side{data: `{"a":2,"b":1,"c":1}`, min: 1},
		wantStatus: StatusConflict, wantApplied: false, wantData: `null`, wantDeleted: true,
		conflicts: []wantConflict{{"", base3, []wantValue{{"cur", "null", true}, {"inc", `{"a":2,"b":1,"c":1}`, false}}}},
	},
	{
		name: "merge: incoming delete later against current edit", policy: domain.PolicyMerge,
		base: side{data: base3}, cur: side{data: `{"a":2,"b":1,"c":1}`, min: 1}, inc: side{data: "", deleted: true, min: 2},
		wantStatus: StatusConflict, wantApplied: true, wantData: `null`, wantDeleted: true,
		conflicts: []wantConflict{{"", base3, []wantValue{{"inc", "null", true}, {"cur", `{"a":2,"b":1,"c":1}`, false}}}},
	},
	{
		name: "merge: incoming delete earlier against current edit", policy: domain.PolicyMerge,
		base: side{data: base3}, cur: side{data: `{"a":2,"b":1,"c":1}`, min: 2}, inc: side{data: base3, deleted: true, min: 1},
		wantStatus: StatusConflict, wantApplied: false, wantData: `{"a":2,"b":1,"c":1}`,
		conflicts: []wantConflict{{"", base3, []wantValue{{"cur", `{"a":2,"b":1,"c":1}`, false}, {"inc", base3, true}}}},
	},
	{
		name: "merge: incoming delete, current content unchanged", policy: domain.PolicyMerge,
		base: side{data: base3}, cur: side{data: base3, min: 2}, inc: side{data: `null`, deleted: true, min: 1},
		wantStatus: StatusMerged, wantApplied: true, wantData: `null`, wantDeleted: true,
	},
	{
		name: "merge: both deleted", policy: domain.PolicyMerge,
		base: side{data: base3}, cur: side{data: `null`, deleted: true, min: 1}, inc: side{data: `{"x":1}`, deleted: true, min: 2},
		wantStatus: StatusMerged, wantApplied: false, wantData: `null`, wantDeleted: true,
	},
	{
		name: "merge: undelete from a tombstone base merges against {}", policy: domain.PolicyMerge,
		base: side{data: `null`, deleted: true}, cur: side{data: `{"a":1,"b":1}`, min: 1}, inc: side{data: `{"a":1,"b":2,"c":3}`, min: 2},
		wantStatus: StatusConflict, wantApplied: true, wantData: `{"a":1,"b":2,"c":3}`,
		conflicts: []wantConflict{{"/b", "", []wantValue{{"inc", "2", false}, {"cur", "1", false}}}},
	},
	{
		name: "merge: tombstone pushed again on a tombstone base", policy: domain.PolicyMerge,
		base: side{data: `null`, deleted: true}, cur: side{data: `{"a":1}`, min: 1}, inc: side{data: ``, deleted: true, min: 2},
		wantStatus: StatusMerged, wantApplied: false, wantData: `{"a":1}`,
	},
	{
		name: "merge: current undeleted the base tombstone, incoming edits", policy: domain.PolicyMerge,
		base: side{data: `{"a":1}`, deleted: true}, cur: side{data: `{"a":1}`, min: 1}, inc: side{data: `{"a":1,"b":2}`, deleted: false, min: 2},
		wantStatus: StatusMerged, wantApplied: true, wantData: `{"a":1,"b":2}`,
	},

	// merge, base missing.
	{
		name: "merge, base missing: disjoint edits all clash", policy: domain.PolicyMerge, baseKind: baseMissing,
		cur: side{data: `{"a":2,"b":1,"c":1}`, min: 1}, inc: side{data: `{"a":1,"b":3,"c":1}`, min: 2},
		wantStatus: StatusConflict, wantApplied: true, wantData: `{"a":1,"b":3,"c":1}`,
		conflicts: []wantConflict{
			{"/a", "", []wantValue{{"inc", "1", false}, {"cur", "2", false}}},
			{"/b", "", []wantValue{{"inc", "3", false}, {"cur", "1", false}}},
		},
	},
	{
		name: "merge, base missing: field on one side only clashes", policy: domain.PolicyMerge, baseKind: baseMissing,
		cur: side{data: `{"a":1,"z":1}`, min: 2}, inc: side{data: `{"a":1}`, min: 1},
		wantStatus: StatusConflict, wantApplied: false, wantData: `{"a":1,"z":1}`,
		conflicts: []wantConflict{{"/z", "", []wantValue{{"cur", "1", false}, {"inc", "", true}}}},
	},
	{
		name: "merge, base missing: equal content", policy: domain.PolicyMerge, baseKind: baseMissing,
		cur: side{data: `{"a":1}`, min: 2}, inc: side{data: `{ "a" : 1 }`, min: 1},
		wantStatus: StatusMerged, wantApplied: false, wantData: `{"a":1}`,
	},
	{
		name: "merge, base missing: incoming delete against content", policy: domain.PolicyMerge, baseKind: baseMissing,
		cur: side{data: `{"a":1}`, min: 1}, inc: side{data: `null`, deleted: true, min: 2},
		wantStatus: StatusConflict, wantApplied: true, wantData: `null`, wantDeleted: true,
		conflicts: []wantConflict{{"", "", []wantValue{{"inc", "null", true}, {"cur", `{"a":1}`, false}}}},
	},
	{
		name: "merge, base missing: tie on clash", policy: domain.PolicyMerge, baseKind: baseMissing,
		cur: side{data: `{"a":1}`, min: 3}, inc: side{data: `{"a":2}`, min: 3}, tie: "cur",
		wantStatus: StatusConflict, wantApplied: false, wantData: `{"a":1}`,
		conflicts: []wantConflict{{"/a", "", []wantValue{{"cur", "1", false}, {"inc", "2", false}}}},
	},

	// merge, no base revision (a create pushed for an existing id).
	{
		name: "merge, no base: union of fields, differing ones clash", policy: domain.PolicyMerge, baseKind: baseNone,
		cur: side{data: `{"a":1,"b":1}`, min: 1}, inc: side{data: `{"a":1,"b":2,"c":3}`, min: 2},
		wantStatus: StatusConflict, wantApplied: true, wantData: `{"a":1,"b":2,"c":3}`,
		conflicts: []wantConflict{{"/b", "", []wantValue{{"inc", "2", false}, {"cur", "1", false}}}},
	},
	{
		name: "merge, no base: disjoint fields", policy: domain.PolicyMerge, baseKind: baseNone,
		cur: side{data: `{"a":1}`, min: 2}, inc: side{data: `{"b":2}`, min: 1},
		wantStatus: StatusMerged, wantApplied: true, wantData: `{"a":1,"b":2}`,
	},

	// reject.
	{
		name: "reject: incoming later", policy: domain.PolicyReject,
		base: side{data: base3}, cur: side{data: `{"a":2,"b":1,"c":1}`, min: 1}, inc: side{data: `{"a":1,"b":3,"c":1}`, min: 2},
		wantStatus: StatusConflict, wantApplied: false, wantData: `{"a":2,"b":1,"c":1}`,
		conflicts: []wantConflict{{"", base3, []wantValue{{"cur", `{"a":2,"b":1,"c":1}`, false}, {"inc", `{"a":1,"b":3,"c":1}`, false}}}},
	},
	{
		name: "reject: current later", policy: domain.PolicyReject,
		base: side{data: base3}, cur: side{data: `{"a":2,"b":1,"c":1}`, min: 2}, inc: side{data: `{"a":1,"b":3,"c":1}`, min: 1},
		wantStatus: StatusConflict, wantApplied: false, wantData: `{"a":2,"b":1,"c":1}`,
		conflicts: []wantConflict{{"", base3, []wantValue{{"cur", `{"a":2,"b":1,"c":1}`, false}, {"inc", `{"a":1,"b":3,"c":1}`, false}}}},
	},
	{
		name: "reject: tie", policy: domain.PolicyReject,
		base: side{data: base3}, cur: side{data: `{"a":2,"b":1,"c":1}`, min: 2}, inc: side{data: `{"a":1,"b":3,"c":1}`, min: 2}, tie: "inc",
		wantStatus: StatusConflict, wantApplied: false, wantData: `{"a":2,"b":1,"c":1}`,
		conflicts: []wantConflict{{"", base3, []wantValue{{"cur", `{"a":2,"b":1,"c":1}`, false}, {"inc", `{"a":1,"b":3,"c":1}`, false}}}},
	},
	{
		name: "reject, base missing", policy: domain.PolicyReject, baseKind: baseMissing,
		cur: side{data: `{"a":2}`, min: 1}, inc: side{data: `{"a":3}`, min: 2},
		wantStatus: StatusConflict, wantApplied: false, wantData: `{"a":2}`,
		conflicts: []wantConflict{{"", "", []wantValue{{"cur", `{"a":2}`, false}, {"inc", `{"a":3}`, false}}}},
	},
	{
		name: "reject: incoming delete", policy: domain.PolicyReject,
		base: side{data: base3}, cur: side{data: `{"a":2,"b":1,"c":1}`, min: 1}, inc: side{data: ``, deleted: true, min: 2},
		wantStatus: StatusConflict, wantApplied: false, wantData: `{"a":2,"b":1,"c":1}`,
		conflicts: []wantConflict{{"", base3, []wantValue{{"cur", `{"a":2,"b":1,"c":1}`, false}, {"inc", "null", true}}}},
	},
	{
		name: "reject: stays strict when current content equals the base", policy: domain.PolicyReject,
		base: side{data: base3}, cur: side{data: base3, min: 1}, inc: side{data: `{"a":5,"b":1,"c":1}`, min: 2},
		wantStatus: StatusConflict, wantApplied: false, wantData: base3,
		conflicts: []wantConflict{{"", base3, []wantValue{{"cur", base3, false}, {"inc", `{"a":5,"b":1,"c":1}`, false}}}},
	},
	{
		name: "reject: same edit on both sides is no conflict", policy: domain.PolicyReject,
		base: side{data: base3}, cur: side{data: `{"a":2,"b":1,"c":1}`, min: 1}, inc: side{data: `{"a":2,"b":1,"c":1}`, min: 2},
		wantStatus: StatusMerged, wantApplied: false, wantData: `{"a":2,"b":1,"c":1}`,
	},
	{
		name: "reject: incoming changed nothing", policy: domain.PolicyReject,
		base: side{data: base3}, cur: side{data: `{"a":2,"b":1,"c":1}`, min: 1}, inc: side{data: base3, min: 2},
		wantStatus: StatusMerged, wantApplied: false, wantData: `{"a":2,"b":1,"c":1}`,
	},

	// last-write-wins.
	{
		name: "lww: incoming later wins the whole record", policy: domain.PolicyLastWriteWins,
		base: side{data: base3}, cur: side{data: `{"a":2,"b":1,"c":1}`, min: 1}, inc: side{data: `{"a":1,"b":3,"c":1}`, min: 2},
		wantStatus: StatusMerged, wantApplied: true, wantData: `{"a":1,"b":3,"c":1}`,
		conflicts: []wantConflict{{"", base3, []wantValue{{"inc", `{"a":1,"b":3,"c":1}`, false}, {"cur", `{"a":2,"b":1,"c":1}`, false}}}},
	},
	{
		name: "lww: current later stands", policy: domain.PolicyLastWriteWins,
		base: side{data: base3}, cur: side{data: `{"a":2,"b":1,"c":1}`, min: 2}, inc: side{data: `{"a":1,"b":3,"c":1}`, min: 1},
		wantStatus: StatusConflict, wantApplied: false, wantData: `{"a":2,"b":1,"c":1}`,
		conflicts: []wantConflict{{"", base3, []wantValue{{"cur", `{"a":2,"b":1,"c":1}`, false}, {"inc", `{"a":1,"b":3,"c":1}`, false}}}},
	},
	{
		name: "lww: tie, larger incoming hash wins", policy: domain.PolicyLastWriteWins,
		base: side{data: base3}, cur: side{data: `{"a":2,"b":1,"c":1}`, min: 1}, inc: side{data: `{"a":1,"b":3,"c":1}`, min: 1}, tie: "inc",
		wantStatus: StatusMerged, wantApplied: true, wantData: `{"a":1,"b":3,"c":1}`,
		conflicts: []wantConflict{{"", base3, []wantValue{{"inc", `{"a":1,"b":3,"c":1}`, false}, {"cur", `{"a":2,"b":1,"c":1}`, false}}}},
	},
	{
		name: "lww: tie, larger current hash wins", policy: domain.PolicyLastWriteWins,
		base: side{data: base3}, cur: side{data: `{"a":2,"b":1,"c":1}`, min: 1}, inc: side{data: `{"a":1,"b":3,"c":1}`, min: 1}, tie: "cur",
		wantStatus: StatusConflict, wantApplied: false, wantData: `{"a":2,"b":1,"c":1}`,
		conflicts: []wantConflict{{"", base3, []wantValue{{"cur", `{"a":2,"b":1,"c":1}`, false}, {"inc", `{"a":1,"b":3,"c":1}`, false}}}},
	},
	{
		name: "lww, base missing: incoming later", policy: domain.PolicyLastWriteWins, baseKind: baseMissing,
		cur: side{data: `{"a":2}`, min: 1}, inc: side{data: `{"a":3}`, min: 2},
		wantStatus: StatusMerged, wantApplied: true, wantData: `{"a":3}`,
		conflicts: []wantConflict{{"", "", []wantValue{{"inc", `{"a":3}`, false}, {"cur", `{"a":2}`, false}}}},
	},
	{
		name: "lww, base missing: current later", policy: domain.PolicyLastWriteWins, baseKind: baseMissing,
		cur: side{data: `{"a":2}`, min: 2}, inc: side{data: `{"a":3}`, min: 1},
		wantStatus: StatusConflict, wantApplied: false, wantData: `{"a":2}`,
		conflicts: []wantConflict{{"", "", []wantValue{{"cur", `{"a":2}`, false}, {"inc", `{"a":3}`, false}}}},
	},
	{
		name: "lww: incoming delete later", policy: domain.PolicyLastWriteWins,
		base: side{data: base3}, cur: side{data: `{"a":2,"b":1,"c":1}`, min: 1}, inc: side{data: `null`, deleted: true, min: 2},
		wantStatus: StatusMerged, wantApplied: true, wantData: `null`, wantDeleted: true,
		conflicts: []wantConflict{{"", base3, []wantValue{{"inc", `null`, true}, {"cur", `{"a":2,"b":1,"c":1}`, false}}}},
	},
	{
		name: "lww: current delete later", policy: domain.PolicyLastWriteWins,
		base: side{data: base3}, cur: side{data: `null`, deleted: true, min: 2}, inc: side{data: `{"a":2,"b":1,"c":1}`, min: 1},
		wantStatus: StatusConflict, wantApplied: false, wantData: `null`, wantDeleted: true,
		conflicts: []wantConflict{{"", base3, []wantValue{{"cur", `null`, true}, {"inc", `{"a":2,"b":1,"c":1}`, false}}}},
	},
	{
		name: "lww: current content equals base, earlier incoming applies", policy: domain.PolicyLastWriteWins,
		base: side{data: base3}, cur: side{data: base3, min: 9}, inc: side{data: `{"a":7,"b":1,"c":1}`, min: 1},
		wantStatus: StatusMerged, wantApplied: true, wantData: `{"a":7,"b":1,"c":1}`,
	},
	{
		name: "lww: same edit on both sides", policy: domain.PolicyLastWriteWins,
		base: side{data: base3}, cur: side{data: `{"a":2,"b":1,"c":1}`, min: 2}, inc: side{data: `{"a":2,"b":1,"c":1}`, min: 1},
		wantStatus: StatusMerged, wantApplied: false, wantData: `{"a":2,"b":1,"c":1}`,
	},
	{
		name: "lww: both deleted", policy: domain.PolicyLastWriteWins,
		base: side{data: base3}, cur: side{deleted: true, min: 1}, inc: side{deleted: true, min: 2},
		wantStatus: StatusMerged, wantApplied: false, wantData: `null`, wantDeleted: true,
	},
}

// built is a test case turned into a ResolveInput, with the revisions it made.
type built struct {
	in               ResolveInput
	baseRev, curRev  string
	incRev           string
	curTime, incTime time.Time
}

func build(tb testing.TB, tc resolveCase) built {
	tb.Helper()
	var b built
	switch tc.baseKind {
	case baseHeld, baseMissing:
		b.baseRev = mustRev(tb, mustRev(tb, "", `{"seed":0}`, false), tc.base.data, tc.base.deleted)
	}
	b.incRev = mustRev(tb, b.baseRev, tc.inc.data, tc.inc.deleted)
	// Current descends from the base through a filler revision chosen so that, on
	// a tie, the wanted side has the larger hash.
	for i := 0; ; i++ {
		parent := b.baseRev
		if i > 0 || tc.tie != "" {
			parent = mustRev(tb, b.baseRev, fmt.Sprintf(`{"filler":%d}`, i), false)
		}
		b.curRev = mustRev(tb, parent, tc.cur.data, tc.cur.deleted)
		cmp := CompareRevs(b.incRev, b.curRev)
		if tc.tie == "" || (tc.tie == "inc" && cmp > 0) || (tc.tie == "cur" && cmp < 0) {
			break
		}
	}
	b.curTime = t0.Add(time.Duration(tc.cur.min) * time.Minute)
	b.incTime = t0.Add(time.Duration(tc.inc.min) * time.Minute)
	b.in = ResolveInput{
		Policy:      tc.policy,
		Base:        Version{Rev: b.baseRev, Data: json.RawMessage(tc.base.data), Deleted: tc.base.deleted},
		BaseMissing: tc.baseKind == baseMissing,
		Current: Version{Rev: b.curRev, Data: json.RawMessage(tc.cur.data), Deleted: tc.cur.deleted,
			ClientModifiedAt: b.curTime, DeviceID: "tab-cur", By: "alice"},
		Incoming: Version{Data: json.RawMessage(tc.inc.data), Deleted: tc.inc.deleted,
			ClientModifiedAt: b.incTime, DeviceID: "tab-inc", By: "bob"},
	}
	if tc.baseKind == baseMissing {
		b.in.Base.Data = nil
	}
	return b
}

func (b built) conflicts(ws []wantConflict) []domain.Conflict {
	var out []domain.Conflict
	for _, w := range ws {
		c := domain.Conflict{Path: w.path, Base: rawOrNil(w.base)}
		for _, v := range w.values {
			cv := domain.ConflictValue{Value: rawOrNil(v.value), Deleted: v.deleted}
			if v.side == "cur" {
				cv.Rev, cv.ClientModifiedAt, cv.DeviceID, cv.By = b.curRev, b.curTime, "tab-cur", "alice"
			} else {
				cv.Rev, cv.ClientModifiedAt, cv.DeviceID, cv.By = b.incRev, b.incTime, "tab-inc", "bob"
			}
			c.Values = append(c.Values, cv)
		}
		out = append(out, c)
	}
	return out
}

func rawOrNil(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	return json.RawMessage(s)
}

func TestResolve(t *testing.T) {
	for _, tc := range resolveCases {
		t.Run(tc.name, func(t *testing.T) {
			b := build(t, tc)
			got, err := Resolve(b.in)
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			wantRev := b.curRev
			if tc.wantApplied {
				wantRev = mustRev(t, b.curRev, tc.wantData, tc.wantDeleted)
			}
			want := ResolveOutput{
				Status:      tc.wantStatus,
				Applied:     tc.wantApplied,
				Rev:         wantRev,
				Data:        json.RawMessage(tc.wantData),
				Deleted:     tc.wantDeleted,
				IncomingRev: b.incRev,
				Conflicts:   b.conflicts(tc.conflicts),
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Resolve\n got %s\nwant %s", dump(got), dump(want))
			}

			// Deterministic, and the computed incoming rev is accepted when given.
			b.in.Incoming.Rev = b.incRev
			again, err := Resolve(b.in)
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Errorf("second run differs: %s, %v", dump(again), err)
			}
		})
	}
}

func dump(o ResolveOutput) string {
	b, _ := json.MarshalIndent(struct {
		ResolveOutput
		Data json.RawMessage
	}{o, o.Data}, "", "  ")
	return string(b)
}

// TestResolveConflictWire checks that a recorded clash has the shape the protocol
// names: {"path","base","values":[{"rev","value","client_modified_at","device_id"}]}.
func TestResolveConflictWire(t *testing.T) {
	b := build(t, resolveCases[2]) // merge: clash, incoming later stands
	got, err := Resolve(b.in)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(got.Conflicts)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"path":"/a","base":1,"values":[` +
		`{"rev":"` + b.incRev + `","value":3,"client_modified_at":"2025-03-01T10:02:00Z","device_id":"tab-inc","by":"bob"},` +
		`{"rev":"` + b.curRev + `","value":2,"client_modified_at":"2025-03-01T10:01:00Z","device_id":"tab-cur","by":"alice"}]}]`
	if string(raw) != want {
		t.Errorf("wire form\n got %s\nwant %s", raw, want)
	}
}

func TestResolveErrors(t *testing.T) {
	ok := resolveCases[0]
	tests := []struct {
		name   string
		modify func(b *built)
		want   error // nil: any error
	}{
		{"unknown policy", func(b *built) { b.in.Policy = "first-write-wins" }, nil},
		{"base is current", func(b *built) { b.in.Base.Rev = b.in.Current.Rev }, ErrNotStale},
		{"malformed current rev", func(b *built) { b.in.Current.Rev = "x" }, ErrBadRev},
		{"empty current rev", func(b *built) { b.in.Current.Rev = "" }, ErrBadRev},
		{"malformed base rev", func(b *built) { b.in.Base.Rev = "2-xyz" }, ErrBadRev},
		{"wrong incoming rev", func(b *built) { b.in.Incoming.Rev = b.curRev }, nil},
		{"invalid incoming data", func(b *built) { b.in.Incoming.Data = json.RawMessage(`{"a":`) }, ErrInvalidJSON},
		{"duplicate key in current", func(b *built) { b.in.Current.Data = json.RawMessage(`{"a":1,"a":2}`) }, ErrDuplicateKey},
		{"invalid base data", func(b *built) { b.in.Base.Data = json.RawMessage(`[`) }, ErrInvalidJSON},
		{"current data not an object", func(b *built) { b.in.Current.Data = json.RawMessage(`[1]`) }, ErrNotObject},
		{"incoming data not an object", func(b *built) { b.in.Incoming.Data = json.RawMessage(`"x"`) }, ErrNotObject},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := build(t, ok)
			tc.modify(&b)
			got, err := Resolve(b.in)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Errorf("Resolve = %s, %v; want error %v", dump(got), err, tc.want)
			}
		})
	}
}

// TestResolveSidesSymmetric checks the winner rule from both directions: swapping
// which side is current and which is incoming (and their times) gives the same
// resulting data under merge and last-write-wins.
func TestResolveSidesSymmetric(t *testing.T) {
	for _, policy := range []string{domain.PolicyMerge, domain.PolicyLastWriteWins} {
		for _, mins := range [][2]int{{1, 2}, {2, 1}} {
			baseRev := mustRev(t, "", base3, false)
			x := Version{Data: json.RawMessage(`{"a":2,"b":1,"c":1,"d":1}`), ClientModifiedAt: t0.Add(time.Duration(mins[0]) * time.Minute)}
			y := Version{Data: json.RawMessage(`{"a":3,"b":2,"c":1}`), ClientModifiedAt: t0.Add(time.Duration(mins[1]) * time.Minute)}
			run := func(cur, inc Version) ResolveOutput {
				cur.Rev = mustRev(t, baseRev, string(cur.Data), false)
				out, err := Resolve(ResolveInput{Policy: policy, Base: Version{Rev: baseRev, Data: json.RawMessage(base3)}, Current: cur, Incoming: inc})
				if err != nil {
					t.Fatal(err)
				}
				return out
			}
			a, b := run(x, y), run(y, x)
			if string(a.Data) != string(b.Data) {
				t.Errorf("%s %v: data %s vs %s", policy, mins, a.Data, b.Data)
			}
		}
	}
}
