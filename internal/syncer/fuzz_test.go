package syncer

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// FuzzMerge checks Merge on arbitrary triples of documents.
func FuzzMerge(f *testing.F) {
	for _, tc := range mergeCases {
		f.Add([]byte(tc.base), []byte(tc.ours), []byte(tc.theirs))
	}
	f.Add([]byte(surveyRecord), []byte(surveyRecordOurs), []byte(surveyRecordTheirs))
	f.Add([]byte(`{"a":1}`), []byte(`[]`), []byte(`{`))
	f.Fuzz(func(t *testing.T, base, ours, theirs []byte) {
		checkMerge(t, base, ours, theirs)
	})
}

// FuzzMergeGen derives a base and two edits of it from the fuzzer's bytes, so
// that most inputs are related objects that share keys and clash, which
// arbitrary byte triples rarely are.
func FuzzMergeGen(f *testing.F) {
	f.Add([]byte{}, false)
	f.Add([]byte("\x05\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c"), false)
	f.Add([]byte("merge me, please: some longer seed with many bytes in it"), true)
	f.Fuzz(func(t *testing.T, seed []byte, unknownBase bool) {
		g := &gen{b: seed}
		base := g.object(0)
		ours, theirs := g.mutate(base, 0), g.mutate(base, 0)
		raw := func(v any) []byte {
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		b := raw(base)
		if unknownBase {
			b = nil
		}
		checkMerge(t, b, raw(ours), raw(theirs))
	})
}

// gen turns fuzzer bytes into JSON values over a small alphabet of keys and
// values, so that generated documents collide.
type gen struct {
	b []byte
	i int
}

func (g *gen) next() int {
	if g.i >= len(g.b) {
		return 0
	}
	g.i++
	return int(g.b[g.i-1])
}

var genKeys = []string{"a", "b", "c", "~", "/", "é", "😀", "\uffff", "", "a/b", `q"}`, "\\", "\n"}

func (g *gen) value(depth int) any {
	switch n := g.next() % 9; {
	case n == 0 && depth < 3:
		return g.object(depth + 1)
	case n == 1:
		return []any{json.Number("1"), "x"}
	case n == 2:
		return nil
	case n == 3:
		return true
	case n == 4 && depth%2 == 0:
		return "x"
	case n == 4:
		return "\"}],\\\u2028\x01"
	case n == 5:
		return json.Number("1.5")
	case n == 6:
		return []any{}
	default:
		return json.Number(strconv.Itoa(n))
	}
}

func (g *gen) object(depth int) map[string]any {
	m := map[string]any{}
	for range g.next() % 5 {
		m[genKeys[g.next()%len(genKeys)]] = g.value(depth)
	}
	return m
}

// mutate returns a copy of m with some members removed, changed, recursed into
// or added.
func (g *gen) mutate(m map[string]any, depth int) map[string]any {
	out := make(map[string]any, len(m))
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys) // map order must not leak into the result
	for _, k := range keys {
		switch g.next() % 6 {
		case 0: // removed
		case 1:
			out[k] = g.value(depth)
		case 2:
			if sub, ok := m[k].(map[string]any); ok && depth < 3 {
				out[k] = g.mutate(sub, depth+1)
			} else {
				out[k] = g.value(depth)
			}
		default:
			out[k] = m[k]
		}
	}
	for range g.next() % 3 {
		out[genKeys[g.next()%len(genKeys)]] = g.value(depth)
	}
	return out
}

// checkMerge runs Merge and checks its properties against a reference merge.
func checkMerge(t *testing.T, base, ours, theirs []byte) {
	t.Helper()
	merged, clashes, err := Merge(base, ours, theirs)
	valid := isObjectDoc(ours) && isObjectDoc(theirs) && (len(base) == 0 || isObjectDoc(base))
	if err != nil {
		if valid {
			t.Fatalf("Merge(%q, %q, %q) failed on valid objects: %v", base, ours, theirs, err)
		}
		return
	}
	if !valid {
		t.Fatalf("Merge(%q, %q, %q) accepted invalid input", base, ours, theirs)
	}
	known := len(base) > 0
	b, o, th := mustCanonical(t, base), mustCanonical(t, ours), mustCanonical(t, theirs)

	if c, err := Canonical(merged); err != nil || !bytes.Equal(c, merged) || merged[0] != '{' {
		t.Fatalf("merged %q is not a canonical object", merged)
	}

	// Against the reference merge over decoded values.
	refOut, refClashes := refMerge(t, base, ours, theirs)
	if !bytes.Equal(merged, refOut) {
		t.Fatalf("Merge(%s, %s, %s)\n got %s\nwant %s (reference)", b, o, th, merged, refOut)
	}
	if got := clashStrings(clashes); !slices.Equal(sortedCopy(got), refClashes) {
		t.Fatalf("Merge(%s, %s, %s) clashes\n got %q\nwant %q (reference)", b, o, th, got, refClashes)
	}

	// Clash paths are changes on both sides, to different, not both object, values.
	for _, c := range clashes {
		bv, ov, tv := lookup(t, b, c.Path), lookup(t, o, c.Path), lookup(t, th, c.Path)
		if !same(c.Ours, ov) || !same(c.Theirs, tv) || (known && !same(c.Base, bv)) || (!known && c.Base != nil) {
			t.Fatalf("clash %s does not hold the inputs' values %s %s %s", fmtClashes([]Clash{c}), orAbsent(bv), orAbsent(ov), orAbsent(tv))
		}
		if same(ov, tv) || (known && (same(ov, bv) || same(tv, bv))) || (isObject(ov) && isObject(tv)) {
			t.Fatalf("clash %s is not a change on both sides", fmtClashes([]Clash{c}))
		}
	}

	// One-sided merges are the edit itself.
	if known {
		for _, args := range [][3][]byte{{base, ours, base}, {base, base, ours}, {base, theirs, base}, {base, base, theirs}} {
			got, cl, err := Merge(args[0], args[1], args[2])
			edit := args[1]
			if bytes.Equal(args[1], base) {
				edit = args[2]
			}
			if err != nil || len(cl) != 0 || !bytes.Equal(got, mustCanonical(t, edit)) {
				t.Fatalf("one-sided Merge(%q, %q, %q) = %s, %s, %v", args[0], args[1], args[2], got, fmtClashes(cl), err)
			}
		}
	}
	for _, x := range [][]byte{ours, theirs} {
		got, cl, err := Merge(base, x, x)
		if err != nil || len(cl) != 0 || !bytes.Equal(got, mustCanonical(t, x)) {
			t.Fatalf("Merge(%q, x, x) with x=%q: %s, %s, %v", base, x, got, fmtClashes(cl), err)
		}
	}

	// Swapping the sides swaps the clashes; the results differ only there.
	merged2, clashes2, err := Merge(base, theirs, ours)
	if err != nil || len(clashes2) != len(clashes) {
		t.Fatalf("swapped: %d clashes, want %d (%v)", len(clashes2), len(clashes), err)
	}
	for i, c := range clashes {
		d := clashes2[i]
		if c.Path != d.Path || !same(c.Base, d.Base) || !same(c.Ours, d.Theirs) || !same(c.Theirs, d.Ours) {
			t.Fatalf("swapped clash %d: %s vs %s", i, fmtClashes([]Clash{c}), fmtClashes([]Clash{d}))
		}
	}
	if len(clashes) == 0 && !bytes.Equal(merged, merged2) {
		t.Fatalf("no clashes but swapped merges differ: %s vs %s", merged, merged2)
	}
	patched := decodeDoc(t, merged)
	for _, c := range clashes {
		patched = setPointer(t, patched, c.Path, c.Theirs)
	}
	if got := mustCanonical(t, marshal(t, patched)); !bytes.Equal(got, merged2) {
		t.Fatalf("merged with theirs at the clashes %s, swapped merge %s", got, merged2)
	}
}

func isObjectDoc(doc []byte) bool {
	c, err := Canonical(doc)
	return err == nil && c[0] == '{'
}

func mustCanonical(t *testing.T, doc []byte) []byte {
	t.Helper()
	if len(doc) == 0 {
		return nil
	}
	c, err := Canonical(doc)
	if err != nil {
		t.Fatalf("Canonical(%q): %v", doc, err)
	}
	return c
}

func decodeDoc(t *testing.T, doc []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(doc))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decode %q: %v", doc, err)
	}
	return v
}

func marshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pointerTokens splits a JSON pointer into unescaped tokens.
func pointerTokens(p string) []string {
	if p == "" {
		return nil
	}
	toks := strings.Split(p[1:], "/")
	for i, tok := range toks {
		toks[i] = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
	}
	return toks
}

// lookup returns the canonical value at pointer p in the canonical document doc,
// nil when absent (also below a non-object).
func lookup(t *testing.T, doc []byte, p string) []byte {
	t.Helper()
	if doc == nil {
		return nil
	}
	v := decodeDoc(t, doc)
	for _, tok := range pointerTokens(p) {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		if v, ok = m[tok]; !ok {
			return nil
		}
	}
	return mustCanonical(t, marshal(t, v))
}

// setPointer sets (or, for nil, removes) the value at p; its parent must exist.
func setPointer(t *testing.T, doc any, p string, val []byte) any {
	t.Helper()
	toks := pointerTokens(p)
	m, ok := doc.(map[string]any)
	for _, tok := range toks[:len(toks)-1] {
		if !ok {
			t.Fatalf("no object above %s", p)
		}
		m, ok = m[tok].(map[string]any)
	}
	if !ok {
		t.Fatalf("no object above %s", p)
	}
	last := toks[len(toks)-1]
	if val == nil {
		delete(m, last)
	} else {
		m[last] = decodeDoc(t, val)
	}
	return doc
}

// refMerge is a deliberately plain second implementation of the merge rules over
// decoded values, to check Merge's byte-level one against. It returns the merged
// canonical document and the clashes as sorted strings.
func refMerge(t *testing.T, base, ours, theirs []byte) ([]byte, []string) {
	t.Helper()
	r := refMerger{t: t}
	var b any = absent{}
	if len(base) > 0 {
		b = decodeDoc(t, base)
	}
	out := r.merge(b, decodeDoc(t, ours), decodeDoc(t, theirs), len(base) > 0, "")
	return mustCanonical(t, marshal(t, out)), sortedCopy(r.clashes)
}

type absent struct{}

type refMerger struct {
	t       *testing.T
	clashes []string
}

func (r *refMerger) eq(a, b any) bool {
	_, aa := a.(absent)
	_, ba := b.(absent)
	if aa || ba {
		return aa && ba
	}
	return bytes.Equal(mustCanonical(r.t, marshal(r.t, a)), mustCanonical(r.t, marshal(r.t, b)))
}

func (r *refMerger) merge(b, o, t any, known bool, path string) any {
	switch {
	case r.eq(o, t):
		return o
	case known && r.eq(o, b):
		return t
	case known && r.eq(t, b):
		return o
	}
	om, oOK := o.(map[string]any)
	tm, tOK := t.(map[string]any)
	if oOK && tOK {
		bm, _ := b.(map[string]any)
		keys := map[string]bool{}
		for _, m := range []map[string]any{bm, om, tm} {
			for k := range m {
				keys[k] = true
			}
		}
		out := map[string]any{}
		for k := range keys {
			get := func(m map[string]any) any {
				if v, ok := m[k]; ok {
					return v
				}
				return absent{}
			}
			esc := strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
			v := r.merge(get(bm), get(om), get(tm), known, path+"/"+esc)
			if _, gone := v.(absent); !gone {
				out[k] = v
			}
		}
		return out
	}
	if !known {
		b = absent{}
	}
	r.clashes = append(r.clashes, fmt.Sprintf("%s base=%s ours=%s theirs=%s", path, r.show(b), r.show(o), r.show(t)))
	return o
}

func (r *refMerger) show(v any) string {
	if _, ok := v.(absent); ok {
		return "<absent>"
	}
	return string(mustCanonical(r.t, marshal(r.t, v)))
}

func clashStrings(cs []Clash) []string {
	var out []string
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%s base=%s ours=%s theirs=%s", c.Path, orAbsent(c.Base), orAbsent(c.Ours), orAbsent(c.Theirs)))
	}
	return out
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// FuzzResolve runs the policies on generated edits and checks what every outcome
// must satisfy: determinism, a consistent revision, nothing dropped silently, and
// for merge and last-write-wins the same resulting content whichever edit
// reached the server first.
func FuzzResolve(f *testing.F) {
	f.Add([]byte{}, uint8(0), int8(0))
	f.Add([]byte("some edits of a record"), uint8(0x12), int8(1))
	f.Add([]byte("\x03\x01\x02\x03\x04\x05\x06\x07\x08"), uint8(0xff), int8(-1))
	f.Fuzz(func(t *testing.T, seed []byte, flags uint8, minutes int8) {
		g := &gen{b: seed}
		baseData := g.object(0)
		raw := func(v any) json.RawMessage { return json.RawMessage(marshal(t, v)) }
		policy := []string{domain.PolicyMerge, domain.PolicyReject, domain.PolicyLastWriteWins}[int(flags&3)%3]
		baseDeleted, curDeleted, incDeleted := flags&4 != 0, flags&8 != 0, flags&16 != 0
		missing := flags&32 != 0
		baseRev := mustRev(t, "", string(raw(baseData)), baseDeleted)
		x := Version{Data: raw(g.mutate(baseData, 0)), Deleted: curDeleted, ClientModifiedAt: t0, DeviceID: "x", By: "ux"}
		y := Version{Data: raw(g.mutate(baseData, 0)), Deleted: incDeleted, ClientModifiedAt: t0.Add(time.Duration(minutes) * time.Second), DeviceID: "y", By: "uy"}
		run := func(cur, inc Version) ResolveOutput {
			cur.Rev = mustRev(t, baseRev, string(cur.Data), cur.Deleted)
			in := ResolveInput{Policy: policy, Base: Version{Rev: baseRev, Data: raw(baseData), Deleted: baseDeleted}, BaseMissing: missing, Current: cur, Incoming: inc}
			out, err := Resolve(in)
			if errors.Is(err, ErrNotStale) {
				return ResolveOutput{Rev: "not stale"}
			}
			if err != nil {
				t.Fatalf("Resolve(%+v): %v", in, err)
			}
			again, _ := Resolve(in)
			if !reflect.DeepEqual(out, again) {
				t.Fatalf("not deterministic")
			}
			checkResolveOutput(t, in, out)
			return out
		}
		a, b := run(x, y), run(y, x)
		if a.Rev == "not stale" || b.Rev == "not stale" {
			return
		}
		if policy != domain.PolicyReject && (a.Deleted != b.Deleted || (!a.Deleted && !bytes.Equal(a.Data, b.Data))) {
			t.Fatalf("%s: content depends on arrival order: %s/%v vs %s/%v", policy, a.Data, a.Deleted, b.Data, b.Deleted)
		}
	})
}

func checkResolveOutput(t *testing.T, in ResolveInput, out ResolveOutput) {
	t.Helper()
	cur := state{data: mustCanonical(t, in.Current.Data), deleted: in.Current.Deleted}
	inc := state{data: mustCanonical(t, in.Incoming.Data), deleted: in.Incoming.Deleted}
	if c := mustCanonical(t, out.Data); !bytes.Equal(c, out.Data) {
		t.Fatalf("data %s is not canonical", out.Data)
	}
	if out.IncomingRev != mustRev(t, in.Base.Rev, string(in.Incoming.Data), in.Incoming.Deleted) {
		t.Fatalf("incoming rev %s", out.IncomingRev)
	}
	after := state{data: out.Data, deleted: out.Deleted}
	if out.Applied {
		if out.Rev != mustRev(t, in.Current.Rev, string(out.Data), out.Deleted) || after.same(cur) {
			t.Fatalf("applied %s (%s) is no new revision of %s", out.Rev, out.Data, in.Current.Rev)
		}
	} else if out.Rev != in.Current.Rev || !bytes.Equal(out.Data, cur.data) || out.Deleted != cur.deleted {
		t.Fatalf("not applied, but the content moved: %s", out.Data)
	}
	switch out.Status {
	case StatusConflict:
		if len(out.Conflicts) == 0 {
			t.Fatal("conflict status without conflicts")
		}
	case StatusMerged:
		if len(out.Conflicts) > 0 && !(in.Policy == domain.PolicyLastWriteWins && out.Applied) {
			t.Fatalf("merged with conflicts under %s", in.Policy)
		}
	default:
		t.Fatalf("status %q", out.Status)
	}
	if in.Policy == domain.PolicyReject && out.Applied {
		t.Fatal("reject applied an edit")
	}
	for _, c := range out.Conflicts {
		for _, v := range c.Values {
			if v.Rev != in.Current.Rev && v.Rev != out.IncomingRev {
				t.Fatalf("conflict value of unknown rev %s", v.Rev)
			}
		}
	}
	// Nothing dropped silently. Under merge without a clash both edits' field
	// changes show in the result: merging either edit into the result against the
	// base changes nothing. Otherwise an edit that neither is the result nor is
	// kept in a conflict entry must have changed nothing.
	known := !in.BaseMissing && in.Base.Rev != ""
	var base state
	if known {
		base = state{data: mustCanonical(t, in.Base.Data), deleted: in.Base.Deleted}
	}
	policy := cmp.Or(in.Policy, domain.PolicyMerge)
	if policy == domain.PolicyMerge && known && len(out.Conflicts) == 0 && !cur.deleted && !inc.deleted {
		eff := base.data
		if base.deleted || !isObject(eff) {
			eff = []byte("{}")
		}
		for _, edit := range []state{cur, inc} {
			m, cl := mergeCanonical(eff, edit.data, out.Data, true)
			if len(cl) != 0 || !bytes.Equal(m, out.Data) {
				t.Fatalf("edit %s against base %s is not in the result %s", edit.data, eff, out.Data)
			}
		}
		return
	}
	if !out.Applied && len(out.Conflicts) == 0 && !inc.same(cur) && !(known && inc.same(base)) {
		t.Fatalf("edit %s/%v dropped", inc.data, inc.deleted)
	}
}
