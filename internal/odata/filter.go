package odata

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// filterFields are the properties $filter may name, and how each is read from
// a record. Only the record's metadata can be filtered (as in ODK Central):
// that is what Power BI and Excel send for an incremental refresh.
var filterFields = map[string]struct {
	date bool
	get  func(r *domain.Record) (t time.Time, s string)
}{
	"__system/submissionDate":   {true, func(r *domain.Record) (time.Time, string) { return r.CreatedAt, "" }},
	"__system/updatedAt":        {true, func(r *domain.Record) (time.Time, string) { return r.UpdatedAt, "" }},
	"__system/clientModifiedAt": {true, func(r *domain.Record) (time.Time, string) { return r.ClientModifiedAt, "" }},
	"__system/reviewState":      {false, func(r *domain.Record) (time.Time, string) { return time.Time{}, reviewState(r) }},
	"__system/submitterId":      {false, func(r *domain.Record) (time.Time, string) { return time.Time{}, r.CreatedBy }},
	"__system/deviceId":         {false, func(r *domain.Record) (time.Time, string) { return time.Time{}, r.DeviceID }},
	"__system/formVersion":      {false, func(r *domain.Record) (time.Time, string) { return time.Time{}, r.FormVersion }},
}

func reviewState(r *domain.Record) string {
	if r.ReviewState == "" {
		return domain.ReviewReceived
	}
	return r.ReviewState
}

// expr is a parsed $filter.
type expr interface {
	eval(r *domain.Record) bool
}

type boolOp struct {
	and  bool
	l, r expr
}

func (b boolOp) eval(r *domain.Record) bool {
	if b.and {
		return b.l.eval(r) && b.r.eval(r)
	}
	return b.l.eval(r) || b.r.eval(r)
}

type notOp struct{ e expr }

func (n notOp) eval(r *domain.Record) bool { return !n.e.eval(r) }

// cmp compares a field with a literal: field op value.
type cmp struct {
	field string
	op    string
	t     time.Time // date fields
	s     string    // string fields
	null  bool      // the literal null
}

func (c cmp) eval(r *domain.Record) bool {
	f := filterFields[c.field]
	t, s := f.get(r)
	var d int // the field compared with the literal: -1, 0, 1
	switch {
	case c.null:
		isNull := (f.date && t.IsZero()) || (!f.date && s == "")
		switch c.op {
		case "eq":
			return isNull
		case "ne":
			return !isNull
		}
		return false // ordering against null is false, as in OData
	case f.date:
		d = t.Compare(c.t)
	default:
		d = strings.Compare(s, c.s)
	}
	switch c.op {
	case "eq":
		return d == 0
	case "ne":
		return d != 0
	case "gt":
		return d > 0
	case "ge":
		return d >= 0
	case "lt":
		return d < 0
	case "le":
		return d <= 0
	}
	return false
}

var flipped = map[string]string{"eq": "eq", "ne": "ne", "gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}

// parseFilter parses a $filter: comparisons (eq ne gt ge lt le) of a
// __system field with a literal (a date-time, a date, a 'string' or null),
// combined with and, or, not and parentheses.
func parseFilter(s string) (expr, error) {
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	e, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.i < len(p.toks) {
		return nil, fmt.Errorf("unexpected %q", p.toks[p.i].text)
	}
	return e, nil
}

type token struct {
	text   string
	quoted bool // a 'string' literal
}

func lex(s string) ([]token, error) {
	var out []token
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == ' ' || c == '\t':
			i++
		case c == '(' || c == ')':
			out = append(out, token{text: string(c)})
			i++
		case c == '\'':
			var b strings.Builder
			j := i + 1
			for ; ; j++ {
				if j >= len(s) {
					return nil, fmt.Errorf("a string literal is not closed")
				}
				if s[j] == '\'' {
					if j+1 < len(s) && s[j+1] == '\'' {
						b.WriteByte('\'')
						j++
						continue
					}
					break
				}
				b.WriteByte(s[j])
			}
			out = append(out, token{text: b.String(), quoted: true})
			i = j + 1
		default:
			j := i
			for j < len(s) && s[j] != ' ' && s[j] != '\t' && s[j] != '(' && s[j] != ')' && s[j] != '\'' {
				j++
			}
			out = append(out, token{text: s[i:j]})
			i = j
		}
	}
	return out, nil
}

type parser struct {
	toks []token
	i    int
}

func (p *parser) peek(word string) bool {
	return p.i < len(p.toks) && !p.toks[p.i].quoted && p.toks[p.i].text == word
}

func (p *parser) or() (expr, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.peek("or") {
		p.i++
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		l = boolOp{and: false, l: l, r: r}
	}
	return l, nil
}

func (p *parser) and() (expr, error) {
	l, err := p.not()
	if err != nil {
		return nil, err
	}
	for p.peek("and") {
		p.i++
		r, err := p.not()
		if err != nil {
			return nil, err
		}
		l = boolOp{and: true, l: l, r: r}
	}
	return l, nil
}

func (p *parser) not() (expr, error) {
	if p.peek("not") {
		p.i++
		e, err := p.not()
		if err != nil {
			return nil, err
		}
		return notOp{e}, nil
	}
	return p.primary()
}

func (p *parser) primary() (expr, error) {
	if p.peek("(") {
		p.i++
		e, err := p.or()
		if err != nil {
			return nil, err
		}
		if !p.peek(")") {
			return nil, fmt.Errorf("a parenthesis is not closed")
		}
		p.i++
		return e, nil
	}
	if p.i+1 < len(p.toks) && p.toks[p.i+1].text == "(" && !p.toks[p.i+1].quoted {
		return nil, fmt.Errorf("functions such as %s() are not supported; compare a __system field with a value", p.toks[p.i].text)
	}
	if p.i+3 > len(p.toks) {
		return nil, fmt.Errorf("expected a comparison such as __system/submissionDate gt 2024-01-01T00:00:00Z")
	}
	a, op, b := p.toks[p.i], p.toks[p.i+1], p.toks[p.i+2]
	if op.quoted || flipped[op.text] == "" {
		return nil, fmt.Errorf("%q is not a supported operator; use eq, ne, gt, ge, lt, le, and, or, not", op.text)
	}
	p.i += 3
	opText := op.text
	if _, ok := filterFields[b.text]; ok && !b.quoted {
		a, b = b, a
		opText = flipped[opText]
	}
	if a.quoted {
		return nil, fmt.Errorf("a comparison needs a field; $filter can name %s", fieldList())
	}
	f, ok := filterFields[a.text]
	if !ok {
		return nil, fmt.Errorf("$filter cannot use %q; it can use %s", a.text, fieldList())
	}
	c := cmp{field: a.text, op: opText}
	switch {
	case !b.quoted && b.text == "null":
		c.null = true
	case f.date:
		if b.quoted {
			return nil, fmt.Errorf("compare %s with a date-time literal (2024-01-31T23:59:59Z) or a date (2024-01-31), without quotes", a.text)
		}
		t, err := parseTimeLiteral(b.text)
		if err != nil {
			return nil, fmt.Errorf("%q is not a date-time (2024-01-31T23:59:59Z) or a date (2024-01-31)", b.text)
		}
		c.t = t
	default:
		if !b.quoted {
			return nil, fmt.Errorf("compare %s with a string in single quotes, such as 'approved'", a.text)
		}
		c.s = b.text
	}
	return c, nil
}

func fieldList() string {
	names := make([]string, 0, len(filterFields))
	for k := range filterFields {
		names = append(names, k)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// parseTimeLiteral reads an OData DateTimeOffset literal, or a Date, which
// means its midnight UTC (as ODK Central reads it).
func parseTimeLiteral(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	// Seconds are optional in OData's DateTimeOffset.
	if t, err := time.Parse("2006-01-02T15:04Z07:00", s); err == nil {
		return t, nil
	}
	return time.Parse(time.DateOnly, s)
}

// bounds are what a filter guarantees of every record it keeps, for a
// Source that can narrow its read: a conjunction's comparisons of
// submissionDate and reviewState. The filter itself is still applied to
// every record, unless exactBounds says the bounds are the whole of it.
func bounds(e expr, f *Filter) {
	switch x := e.(type) {
	case boolOp:
		if x.and {
			bounds(x.l, f)
			bounds(x.r, f)
		}
	case cmp:
		if x.null {
			return
		}
		switch x.field {
		case "__system/submissionDate":
			switch x.op {
			case "eq", "ge", "gt":
				since := x.t
				if x.op == "gt" {
					// Strictly after: the first instant after x.t (the
					// store rounds it up to its next millisecond).
					since = x.t.Add(time.Nanosecond)
				}
				if f.Since.IsZero() || since.After(f.Since) {
					f.Since = since
				}
			}
			switch x.op {
			case "eq", "le":
				if u := x.t.Add(time.Nanosecond); f.Until.IsZero() || u.Before(f.Until) {
					f.Until = u
				}
			case "lt":
				if f.Until.IsZero() || x.t.Before(f.Until) {
					f.Until = x.t
				}
			}
		case "__system/reviewState":
			if x.op == "eq" && f.ReviewStates == nil {
				f.ReviewStates = []string{x.s}
			}
		}
	}
}

// exactBounds reports whether bounds(e) says all that e does: a conjunction
// of comparisons of submissionDate with a date (not null, not ne) and at
// most one reviewState eq. A Source that applies the bounds then selects
// exactly the records e keeps, and can count them without reading them
// (the $count of an incremental refresh's filter).
func exactBounds(e expr) bool {
	states := 0
	var exact func(e expr) bool
	exact = func(e expr) bool {
		switch x := e.(type) {
		case boolOp:
			return x.and && exact(x.l) && exact(x.r)
		case cmp:
			if x.null {
				return false
			}
			switch x.field {
			case "__system/submissionDate":
				return x.op != "ne"
			case "__system/reviewState":
				states++
				return x.op == "eq" && states == 1
			}
		}
		return false
	}
	return exact(e)
}
