package odata

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// DefaultPageSize is the most rows one answer holds; @odata.nextLink gives
// the rest. Power BI and Excel follow it on their own.
const DefaultPageSize = 1000

// sourcePageSize is how many records the feed asks its Source for at once.
const sourcePageSize = 1000

// Request is one read of an entity set.
type Request struct {
	// Base is the absolute URL of the service root (…/odata), for
	// @odata.context and @odata.nextLink.
	Base      string
	ProjectID string
	FormID    string
	// Set is the entity set's name.
	Set string
	// Query is the request's query string.
	Query url.Values
	// MaxPageSize is the client's odata.maxpagesize preference (0: none);
	// the page size is the smaller of it and DefaultPageSize.
	MaxPageSize int
}

// ServiceDocument is the JSON service document: one entry per entity set.
func ServiceDocument(m *Model, base string) []byte {
	type entry struct {
		Kind string `json:"kind"`
		Name string `json:"name"`
		URL  string `json:"url"`
	}
	doc := struct {
		Context string  `json:"@odata.context"`
		Value   []entry `json:"value"`
	}{Context: base + "/$metadata", Value: []entry{}}
	for _, s := range m.Sets {
		doc.Value = append(doc.Value, entry{Kind: "EntitySet", Name: s.Name, URL: s.Name})
	}
	b, _ := json.Marshal(doc)
	return b
}

// errBadQuery is the 400 of a query option the feed does not take or cannot read.
func errBadQuery(code, title, detail string) error {
	return &domain.Error{Kind: domain.KindBadRequest, Code: code, Title: title, Detail: detail}
}

// supportedOptions are the query options the feed reads; any other answers
// 400 unsupported_query_option, so that a client never takes an unfiltered
// or unsorted answer for what it asked.
var supportedOptions = []string{"$count", "$filter", "$format", "$select", "$skip", "$skiptoken", "$top"}

// options are a request's parsed query options.
type options struct {
	top, skip int // top -1: none
	count     bool
	sel       selection // nil: everything
	selText   string
	filter    expr
	cursor    string // the Source cursor of the skiptoken
	offset    int    // rows to pass over after it
}

func parseOptions(q url.Values, set *Set) (options, error) {
	o := options{top: -1}
	for k, v := range q {
		if !slices.Contains(supportedOptions, k) {
			return o, errBadQuery("unsupported_query_option", "This OData feed does not support the query option "+k,
				"supported: "+strings.Join(supportedOptions, ", "))
		}
		if len(v) != 1 {
			return o, errBadQuery("invalid_query", "The query option "+k+" is given more than once", "")
		}
	}
	num := func(name string) (int, error) {
		s := q.Get(name)
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return 0, errBadQuery("invalid_query", name+" must be a whole number, 0 or more", fmt.Sprintf("got %q", s))
		}
		return n, nil
	}
	var err error
	if q.Has("$top") {
		if o.top, err = num("$top"); err != nil {
			return o, err
		}
	}
	if q.Has("$skip") {
		if o.skip, err = num("$skip"); err != nil {
			return o, err
		}
	}
	switch v := q.Get("$count"); v {
	case "", "false":
	case "true":
		o.count = true
	default:
		return o, errBadQuery("invalid_query", "$count must be true or false", fmt.Sprintf("got %q", v))
	}
	if q.Has("$format") {
		if f := q.Get("$format"); f != "json" && !strings.HasPrefix(f, "application/json") {
			return o, errBadQuery("invalid_query", "This OData feed answers JSON only", `use $format=json, or leave $format out`)
		}
	}
	if q.Has("$filter") {
		s := strings.ReplaceAll(q.Get("$filter"), "$root/Submissions/", "")
		if o.filter, err = parseFilter(s); err != nil {
			return o, errBadQuery("invalid_filter", "The $filter cannot be applied", err.Error())
		}
	}
	if q.Has("$select") {
		o.selText = q.Get("$select")
		if o.sel, err = parseSelect(o.selText, set.Type); err != nil {
			return o, errBadQuery("invalid_select", "The $select names something this entity set does not have", err.Error())
		}
	}
	if q.Has("$skiptoken") {
		if o.cursor, o.offset, err = decodeSkipToken(q.Get("$skiptoken")); err != nil {
			return o, err
		}
	}
	return o, nil
}

// selection is a parsed $select: property name → the selection inside it
// (nil: all of it).
type selection map[string]selection

func parseSelect(s string, t *Type) (selection, error) {
	sel := selection{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "*" {
			return nil, nil
		}
		cur, typ := sel, t
		parts := strings.Split(item, "/")
		for i, name := range parts {
			var p *Prop
			if typ != nil {
				p = typ.Prop(name)
			}
			if p == nil {
				return nil, fmt.Errorf("no property %q", item)
			}
			last := i == len(parts)-1
			sub, seen := cur[name]
			switch {
			case last:
				cur[name] = nil // all of it
			case seen && sub == nil:
				// already all of it
			default:
				if sub == nil {
					sub = selection{}
					cur[name] = sub
				}
			}
			if last || (seen && sub == nil) {
				break
			}
			cur, typ = sub, p.complex
			if p.Name == systemName {
				typ = systemTypeDef
			}
			if p.enc == encGeo {
				typ = geoTypeDef
			}
		}
	}
	return sel, nil
}

// systemTypeDef and geoTypeDef describe __system and __geopoint for $select.
var systemTypeDef, geoTypeDef = func() (*Type, *Type) {
	s, g := newType(systemType), newType(geoType)
	for _, p := range systemProps {
		s.Props = append(s.Props, &Prop{Name: p.name, Type: p.typ})
	}
	for _, n := range geoFields {
		g.Props = append(g.Props, &Prop{Name: n, Type: edmDouble})
	}
	return s, g
}()

// Skip tokens: "k1", the Source cursor and how many rows to pass over after
// it, base64url. The row count lets a page of a repeat group end inside a
// record.
func encodeSkipToken(cursor string, offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("k1|" + strconv.Itoa(offset) + "|" + cursor))
}

func decodeSkipToken(s string) (string, int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	parts := strings.SplitN(string(b), "|", 3)
	if err != nil || len(parts) != 3 || parts[0] != "k1" {
		return "", 0, errBadSkipToken()
	}
	n, err := strconv.Atoi(parts[1])
	if err != nil || n < 0 {
		return "", 0, errBadSkipToken()
	}
	return parts[2], n, nil
}

// row is one entity of a set: a record, or one item of a repeat group.
type row struct {
	id, parent string
	obj        map[string]any
	rec        *domain.Record
}

// rows lists the rows of set s in record r, in document order.
func rows(s *Set, r *domain.Record, data map[string]any) []row {
	if s.Parent == nil {
		return []row{{id: r.ID, obj: data, rec: r}}
	}
	var out []row
	for _, pr := range rows(s.Parent, r, data) {
		var cur any = pr.obj
		for _, k := range s.Path {
			m, _ := cur.(map[string]any)
			cur = m[k]
		}
		arr, _ := cur.([]any)
		for i, item := range arr {
			m, ok := item.(map[string]any)
			if !ok {
				continue
			}
			out = append(out, row{id: pr.id + "/" + strings.Join(s.Path, "/") + "[" + strconv.Itoa(i+1) + "]",
				parent: pr.id, obj: m, rec: r})
		}
	}
	return out
}

// Feed answers reads of entity sets from a Source.
type Feed struct {
	Source Source
}

// EntitySet answers one page of req.Set as OData JSON: @odata.context,
// @odata.count when asked, value, and @odata.nextLink while rows follow.
// Query options are checked before anything is read; a bad one is a
// *domain.Error of KindBadRequest (unsupported_query_option, invalid_query,
// invalid_filter, invalid_select, invalid_skiptoken). An unknown set is 404
// entity_set_not_found. It returns the page size used.
func (f *Feed) EntitySet(ctx context.Context, m *Model, req Request) ([]byte, int, error) {
	set := m.Set(req.Set)
	if set == nil {
		return nil, 0, &domain.Error{Kind: domain.KindNotFound, Code: "entity_set_not_found", Title: "This OData feed has no such entity set",
			Detail: fmt.Sprintf("%q; the service document lists the entity sets", req.Set)}
	}
	o, err := parseOptions(req.Query, set)
	if err != nil {
		return nil, 0, err
	}
	pageSize := DefaultPageSize
	if req.MaxPageSize > 0 && req.MaxPageSize < pageSize {
		pageSize = req.MaxPageSize
	}
	want := pageSize
	if o.top >= 0 && o.top < want {
		want = o.top
	}
	filter := Filter{ProjectID: req.ProjectID, FormID: req.FormID}
	if o.filter != nil {
		bounds(o.filter, &filter)
		if !exactBounds(o.filter) {
			filter.Match = o.filter.eval
		}
	}

	var b bytes.Buffer
	b.WriteString(`{"@odata.context":`)
	ctxURL := req.Base + "/$metadata#" + set.Name
	if o.sel != nil {
		ctxURL += "(" + o.selText + ")"
	}
	writeJSONString(&b, ctxURL)
	if o.count {
		n, err := f.count(ctx, set, filter)
		if err != nil {
			return nil, 0, err
		}
		b.WriteString(`,"@odata.count":`)
		b.WriteString(strconv.Itoa(n))
	}
	b.WriteString(`,"value":[`)

	cursor, skip := o.cursor, o.offset+o.skip
	emitted, next := 0, ""
	if want == 0 {
		goto done
	}
pages:
	for {
		page, err := f.Source.Page(ctx, Query{Filter: filter, After: cursor, Limit: sourcePageSize})
		if err != nil {
			return nil, 0, err
		}
		pos := 0
		for i := range page.Records {
			r := &page.Records[i]
			data, err := decodeData(r.Data)
			if err != nil {
				data = map[string]any{} // the store holds valid JSON; nothing to show otherwise
			}
			for _, rw := range rows(set, r, data) {
				if pos < skip {
					pos++
					continue
				}
				if emitted == want {
					next = encodeSkipToken(cursor, pos)
					break pages
				}
				if emitted > 0 {
					b.WriteByte(',')
				}
				writeRow(&b, set, rw, o.sel)
				emitted++
				pos++
			}
		}
		skip = max(0, skip-pos)
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
done:
	b.WriteByte(']')
	if next != "" && (o.top < 0 || o.top > emitted) {
		q := url.Values{}
		for k, v := range req.Query {
			if k != "$skip" && k != "$skiptoken" && k != "$top" && k != "$count" {
				q[k] = v
			}
		}
		if o.top >= 0 {
			q.Set("$top", strconv.Itoa(o.top-emitted))
		}
		q.Set("$skiptoken", next)
		b.WriteString(`,"@odata.nextLink":`)
		writeJSONString(&b, req.Base+"/"+set.Name+"?"+q.Encode())
	}
	b.WriteByte('}')
	return b.Bytes(), pageSize, nil
}

// count is the number of rows of set that filter selects.
func (f *Feed) count(ctx context.Context, set *Set, filter Filter) (int, error) {
	if set.Parent == nil {
		return f.Source.Count(ctx, filter)
	}
	n, cursor := 0, ""
	for {
		page, err := f.Source.Page(ctx, Query{Filter: filter, After: cursor, Limit: sourcePageSize})
		if err != nil {
			return 0, err
		}
		for i := range page.Records {
			data, _ := decodeData(page.Records[i].Data)
			n += len(rows(set, &page.Records[i], data))
		}
		if page.Next == "" {
			return n, nil
		}
		cursor = page.Next
	}
}

func writeJSONString(b *bytes.Buffer, s string) {
	enc, _ := json.Marshal(s)
	b.Write(enc)
}

// writeRow writes one entity: its properties in model order, as sel selects.
func writeRow(b *bytes.Buffer, set *Set, rw row, sel selection) {
	b.WriteByte('{')
	first := true
	for _, p := range set.Type.Props {
		sub, ok := sel[p.Name]
		if sel != nil && !ok && p.Name != keyName {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		writeJSONString(b, p.Name)
		b.WriteByte(':')
		switch {
		case p.Name == keyName:
			writeJSONString(b, rw.id)
		case p.Name == systemName && set.Parent == nil:
			writeSystem(b, rw.rec, sub)
		case p.Name == set.ParentKey && set.Parent != nil:
			writeJSONString(b, rw.parent)
		default:
			writeValue(b, p, rw.obj[p.Key], sub)
		}
	}
	b.WriteByte('}')
}

func writeSystem(b *bytes.Buffer, r *domain.Record, sel selection) {
	b.WriteByte('{')
	first := true
	for _, p := range systemProps {
		if _, ok := sel[p.name]; sel != nil && !ok {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		writeJSONString(b, p.name)
		b.WriteByte(':')
		switch p.name {
		case "submissionDate":
			writeTime(b, r.CreatedAt)
		case "updatedAt":
			writeTime(b, r.UpdatedAt)
		case "clientModifiedAt":
			writeTime(b, r.ClientModifiedAt)
		case "submitterId":
			writeNullableString(b, r.CreatedBy)
		case "deviceId":
			writeNullableString(b, r.DeviceID)
		case "formVersion":
			writeJSONString(b, r.FormVersion)
		case "rev":
			writeJSONString(b, r.Rev)
		case "reviewState":
			writeJSONString(b, reviewState(r))
		case "hasConflicts":
			b.WriteString(strconv.FormatBool(len(r.Conflicts) > 0))
		}
	}
	b.WriteByte('}')
}

func writeTime(b *bytes.Buffer, t time.Time) {
	if t.IsZero() {
		b.WriteString("null")
		return
	}
	writeJSONString(b, t.UTC().Format("2006-01-02T15:04:05.000Z"))
}

func writeNullableString(b *bytes.Buffer, s string) {
	if s == "" {
		b.WriteString("null")
		return
	}
	writeJSONString(b, s)
}

// writeValue writes v as property p says; a value that does not fit the
// property's type (a record of a version where the question had another
// shape) is null for typed properties and its JSON text for text ones.
func writeValue(b *bytes.Buffer, p *Prop, v any, sel selection) {
	if v == nil {
		b.WriteString("null")
		return
	}
	switch p.enc {
	case encText:
		if s, ok := v.(string); ok {
			writeJSONString(b, s)
			return
		}
		text, _ := json.Marshal(v)
		writeJSONString(b, string(text))
	case encInt:
		n, ok := v.(json.Number)
		if _, err := n.Int64(); !ok || err != nil {
			b.WriteString("null")
			return
		}
		b.WriteString(n.String())
	case encDouble:
		n, ok := v.(json.Number)
		if _, err := n.Float64(); !ok || err != nil {
			b.WriteString("null")
			return
		}
		b.WriteString(n.String())
	case encBool:
		x, ok := v.(bool)
		if !ok {
			b.WriteString("null")
			return
		}
		b.WriteString(strconv.FormatBool(x))
	case encDateTime:
		s, _ := v.(string)
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			b.WriteString("null")
			return
		}
		writeJSONString(b, t.Format(time.RFC3339Nano))
	case encDate:
		s, _ := v.(string)
		if _, err := time.Parse(time.DateOnly, s); err != nil {
			b.WriteString("null")
			return
		}
		writeJSONString(b, s)
	case encMulti:
		arr, ok := v.([]any)
		if !ok {
			writeValue(b, &Prop{enc: encText}, v, nil)
			return
		}
		parts := make([]string, len(arr))
		for i, x := range arr {
			if s, ok := x.(string); ok {
				parts[i] = s
				continue
			}
			t, _ := json.Marshal(x)
			parts[i] = string(t)
		}
		writeJSONString(b, strings.Join(parts, " "))
	case encGeo:
		m, ok := v.(map[string]any)
		if !ok {
			b.WriteString("null")
			return
		}
		b.WriteByte('{')
		first := true
		for _, n := range geoFields {
			if _, ok := sel[n]; sel != nil && !ok {
				continue
			}
			if !first {
				b.WriteByte(',')
			}
			first = false
			writeJSONString(b, n)
			b.WriteByte(':')
			writeValue(b, &Prop{enc: encDouble}, m[n], nil)
		}
		b.WriteByte('}')
	case encComplex:
		m, ok := v.(map[string]any)
		if !ok {
			b.WriteString("null")
			return
		}
		b.WriteByte('{')
		first := true
		for _, cp := range p.complex.Props {
			sub, ok := sel[cp.Name]
			if sel != nil && !ok {
				continue
			}
			if !first {
				b.WriteByte(',')
			}
			first = false
			writeJSONString(b, cp.Name)
			b.WriteByte(':')
			writeValue(b, cp, m[cp.Key], sub)
		}
		b.WriteByte('}')
	}
}
