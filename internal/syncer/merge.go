package syncer

import (
	"bytes"
	"encoding/json"
	"errors"
)

// ErrNotObject is returned by Merge when a document is valid JSON but its root is
// not an object: record data is always an object (form schemas are
// "type": "object"), and a merge by field has no fields to work on otherwise.
var ErrNotObject = errors.New("JSON root is not an object")

// Clash is one field changed on both sides of a merge to different values.
//
// Every value is canonical JSON; nil means the field is absent: not in the base
// (or the base is unknown), or removed on that side. JSON null is the bytes
// "null", never nil, so "set to null" and "removed" stay distinct.
type Clash struct {
	// Path is the field's JSON pointer (RFC 6901: "~" is written "~0" and "/"
	// "~1"), for example "/respondent/age". It is never "": the roots of a merge
	// are objects, which merge field by field.
	Path   string
	Base   json.RawMessage
	Ours   json.RawMessage
	Theirs json.RawMessage
}

// Merge merges two edits, ours and theirs, of a common ancestor base, field by
// field, and returns the merged document in canonical form with the clashes in
// the order of their paths in the canonical document.
//
// A field is a leaf path: objects are merged member by member and recursively;
// an array is one value (a multiple choice or a repeat group is taken or clashes
// as a whole, since merging positions of two reorderings would invent answers);
// a scalar, null included, is one value. Values are compared by canonical
// equality. At each path, with b, o and t the values of base, ours and theirs
// there (each possibly absent):
//
//   - o equal to t: taken (unchanged, or changed to the same value on both sides;
//     this includes both sides removing the field);
//   - o equal to b: t is taken (changed, added or removed by theirs only);
//   - t equal to b: o is taken;
//   - o and t both objects: merged member by member, with b's members as the
//     base if b is an object, and as absent otherwise (both sides turned a
//     scalar into an object, or both added the object: their members count as
//     added, so members added on one side only are kept);
//   - otherwise it is a clash, and ours is kept in the merged document. This
//     covers one side removing a field the other changed, and a type change on
//     one side (object to scalar) against any change on the other.
//
// So ours wins every clash: the caller that has a winner passes it as ours (this is
// what Resolve does). Swapping ours and theirs gives the same merge except at the
// clash paths.
//
// An empty base (nil or zero length) means the common ancestor is unknown, as when
// the server no longer holds the base revision: then no value counts as
// unchanged, so every path where ours and theirs differ is a clash (with a nil
// Base), unless both hold objects there, which merge member by member. A field
// one side has and the other lacks is then a clash too: nobody can tell whether
// it was added or removed.
//
// Merge returns a *JSONError for input that Canonical refuses and ErrNotObject
// when a root (base included, when given) is not an object.
func Merge(base, ours, theirs []byte) (merged []byte, clashes []Clash, err error) {
	o, err := canonicalObject(ours)
	if err != nil {
		return nil, nil, err
	}
	t, err := canonicalObject(theirs)
	if err != nil {
		return nil, nil, err
	}
	known := len(base) > 0
	var b []byte
	if known {
		if b, err = canonicalObject(base); err != nil {
			return nil, nil, err
		}
	}
	merged, clashes = mergeCanonical(b, o, t, known)
	return merged, clashes, nil
}

// mergeCanonical is Merge for canonical objects (b nil when unknown).
func mergeCanonical(b, o, t []byte, known bool) ([]byte, []Clash) {
	switch {
	case bytes.Equal(o, t), known && bytes.Equal(t, b):
		return o, nil
	case known && bytes.Equal(o, b):
		return t, nil
	}
	// A survey record has a few dozen members on each path being merged; room
	// for them up front saves regrowing the stack.
	m := merger{out: make([]byte, 0, max(len(o), len(t))+16), stack: make([]cmember, 0, 64)}
	m.object(b, o, t, known)
	return m.out, m.clashes
}

func canonicalObject(doc []byte) ([]byte, error) {
	c, err := Canonical(doc)
	if err != nil {
		return nil, err
	}
	if c[0] != '{' {
		return nil, ErrNotObject
	}
	return c, nil
}

// merger accumulates one merge: the output and the clashes, and the JSON
// pointer of the object being merged.
type merger struct {
	out     []byte
	clashes []Clash
	path    []byte
	stack   []cmember // the members of the objects being merged, outermost first
}

// object writes the merge of three canonical objects (b nil when absent or not an
// object; known false when the base is unknown) into m.out.
func (m *merger) object(b, o, t []byte, known bool) {
	mark := len(m.stack)
	m.stack = members(m.stack, b)
	nb := len(m.stack)
	m.stack = members(m.stack, o)
	no := len(m.stack)
	m.stack = members(m.stack, t)
	// Nested calls append beyond these views and never write inside them.
	bs, os, ts := m.stack[mark:nb], m.stack[nb:no], m.stack[no:]
	defer func() { m.stack = m.stack[:mark] }()
	m.out = append(m.out, '{')
	first := true
	write := func(kv cmember, v []byte) {
		if !first {
			m.out = append(m.out, ',')
		}
		first = false
		m.out = append(m.out, kv.rawKey...)
		m.out = append(m.out, ':')
		m.out = append(m.out, v...)
	}
	for len(os) > 0 || len(ts) > 0 || len(bs) > 0 {
		// Take the smallest key of the three sorted lists; each list holds it at
		// most once because Canonical refuses duplicates.
		var k cmember
		for _, l := range [][]cmember{bs, os, ts} {
			if len(l) > 0 && (k.rawKey == nil || compareKeys(l[0].key, k.key) < 0) {
				k = l[0]
			}
		}
		bv, ov, tv := take(&bs, k.key), take(&os, k.key), take(&ts, k.key)
		switch {
		case same(ov, tv):
			if ov != nil {
				write(k, ov)
			}
		case known && same(ov, bv):
			if tv != nil {
				write(k, tv)
			}
		case known && same(tv, bv):
			if ov != nil {
				write(k, ov)
			}
		case isObject(ov) && isObject(tv):
			if !isObject(bv) {
				bv = nil
			}
			write(k, nil) // the key; the merged object follows
			n := len(m.path)
			m.path = appendPointerToken(m.path, k.key)
			m.object(bv, ov, tv, known)
			m.path = m.path[:n]
		default:
			if !known {
				bv = nil
			}
			m.clashes = append(m.clashes, Clash{
				Path:   string(appendPointerToken(m.path, k.key)),
				Base:   bv,
				Ours:   ov,
				Theirs: tv,
			})
			if ov != nil {
				write(k, ov)
			}
		}
	}
	m.out = append(m.out, '}')
}

// same is canonical equality with absence: nil equals only nil.
func same(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

func isObject(v []byte) bool { return len(v) > 0 && v[0] == '{' }

// take returns the value of the first member of *l if it has key k, and drops it.
func take(l *[]cmember, k []byte) []byte {
	if len(*l) == 0 || compareKeys((*l)[0].key, k) != 0 {
		return nil
	}
	v := (*l)[0].val
	*l = (*l)[1:]
	return v
}

// cmember is one member of a canonical object.
type cmember struct {
	key    []byte // unescaped
	rawKey []byte // as written, with quotes
	val    []byte
}

// members appends the members of a canonical object to ms, in order; none for
// nil. The input is trusted to be canonical: no whitespace, valid escapes.
func members(ms []cmember, obj []byte) []cmember {
	if len(obj) <= 2 {
		return ms
	}
	for i := 1; i < len(obj)-1; {
		ks := i
		i = skipString(obj, i)
		raw := obj[ks:i]
		key := raw[1 : len(raw)-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			key, _ = unescape(nil, key, 0)
		}
		i++ // ':'
		vs := i
		i = skipValue(obj, i)
		ms = append(ms, cmember{key: key, rawKey: raw, val: obj[vs:i:i]})
		i++ // ',' or the closing '}'
	}
	return ms
}

// skipString returns the index after the canonical string starting at b[i].
func skipString(b []byte, i int) int {
	for i++; ; i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
}

// skipValue returns the index after the canonical value starting at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default:
		for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' {
			i++
		}
		return i
	}
}

// appendPointerToken appends "/" and key escaped as RFC 6901 requires.
func appendPointerToken(dst, key []byte) []byte {
	dst = append(dst, '/')
	for _, ch := range key {
		switch ch {
		case '~':
			dst = append(dst, '~', '0')
		case '/':
			dst = append(dst, '~', '1')
		default:
			dst = append(dst, ch)
		}
	}
	return dst
}
