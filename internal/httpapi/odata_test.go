package httpapi

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/store/mongo"
	"github.com/fieldsync/fieldsync/internal/store/mongo/mongotest"
)

// $metadata is XML: the spec check reads it as an opaque string.
func init() { openapi3filter.RegisterBodyDecoder("application/xml", openapi3filter.FileBodyDecoder) }

const odataProject = "visits"

// The form of the OData tests, in two published versions: version 2 adds
// questions and makes the respondent's age a number (the union widens it).
const (
	odataFormV1 = `{"title": "Household visit", "schema": {"type": "object", "properties": {
	  "village": {"type": "string", "title": "Village"},
	  "visited_at": {"type": "string", "format": "date-time"},
	  "visit_day": {"type": "string", "format": "date"},
	  "first name": {"type": "string"},
	  "respondent": {"type": "object", "title": "Respondent", "properties": {
	    "age": {"type": "integer"},
	    "gender": {"oneOf": [{"const": "female", "title": "Female"}, {"const": "male", "title": "Male"}]}}},
	  "location": {"$ref": "#/$defs/point"},
	  "needs": {"type": "array", "items": {"enum": ["water", "food", "shelter"]}},
	  "members": {"type": "array", "items": {"type": "object", "properties": {
	    "name": {"type": "string"},
	    "age": {"type": "integer"},
	    "visits": {"type": "array", "items": {"type": "object", "properties": {"day": {"type": "string"}}}}}}}},
	  "required": ["village"],
	  "$defs": {"point": {"type": "object", "format": "geopoint", "title": "Where"}}}}`
	odataFormV2 = `{"title": "Household visit", "schema": {"type": "object", "properties": {
	  "village": {"type": "string", "title": "Village"},
	  "consent": {"type": "boolean"},
	  "respondent": {"type": "object", "properties": {
	    "age": {"type": "number"},
	    "gender": {"type": "string"},
	    "phone": {"type": "string"}}},
	  "score": {"type": "number"},
	  "members": {"type": "array", "items": {"type": "object", "properties": {
	    "name": {"type": "string"},
	    "relation": {"type": "string"}}}}},
	  "required": ["village"]}}`
)

// odataClock is the server's clock in the OData tests: records get the
// receive times the test gives them.
type odataClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *odataClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *odataClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// odataEnv is a server with the form "household" published twice and an
// analyst who reads it, on one of the two stores.
type odataEnv struct {
	ts         *testServer
	clock      *odataClock
	admin      string
	analyst    string // token
	enumerator string // token
	// records are the pushed records' ids in push order.
	records []string
	data    map[string]map[string]any
}

const odataAnalystPassword = "pw-of-olga-1234" // addUser's password of "olga"

// odataStores are both stores, as a test server option.
var odataStores = []struct {
	name string
	opt  func(t *testing.T) testOption
}{
	{"sqlite", func(t *testing.T) testOption { return func(*testSetup) {} }},
	{"mongodb", func(t *testing.T) testOption {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		st, err := mongo.Open(ctx, mongotest.Config(t))
		if err != nil {
			t.Fatalf("mongo.Open: %v", err)
		}
		t.Cleanup(func() { st.Close() })
		return withConfig(func(c *Config) { c.Store = st })
	}},
}

func newODataEnv(t *testing.T, store testOption, opts ...testOption) *odataEnv {
	t.Helper()
	clock := &odataClock{t: time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)}
	ts := newTestServer(t, append([]testOption{store, withConfig(func(c *Config) { c.Now = clock.Now })}, opts...)...)
	e := &odataEnv{ts: ts, clock: clock, admin: ts.adminToken(t), data: map[string]map[string]any{}}
	ts.want(t, http.StatusCreated, http.MethodPost, "/v1/projects", e.admin, api.CreateProjectRequest{ID: odataProject, Title: "Visits"}, nil)
	for v, def := range map[string]string{"1": odataFormV1, "2": odataFormV2} {
		path := "/v1/projects/" + odataProject + "/forms/household/versions/" + v
		ts.want(t, http.StatusCreated, http.MethodPut, path, e.admin, def, nil)
	}
	// Published in order: version 1 first.
	for _, v := range []string{"1", "2"} {
		ts.want(t, http.StatusOK, http.MethodPost, "/v1/projects/"+odataProject+"/forms/household/versions/"+v+"/publish", e.admin, nil, nil)
	}
	e.analyst = ts.addUser(t, e.admin, "olga", odataProject, api.RoleAnalyst)
	e.enumerator = ts.addUser(t, e.admin, "eve", odataProject, api.RoleEnumerator)
	return e
}

// sampleData is the data of the i-th record of version v.
func sampleData(i int, v string) map[string]any {
	members := []any{}
	for k := range i % 4 {
		m := map[string]any{"name": fmt.Sprintf("member %d.%d", i, k)}
		if v == "1" {
			m["age"] = 10 + k
			if k == 0 {
				visits := []any{}
				for d := range i % 3 {
					visits = append(visits, map[string]any{"day": fmt.Sprintf("day %d", d)})
				}
				m["visits"] = visits
			}
		} else {
			m["relation"] = "child"
		}
		members = append(members, m)
	}
	d := map[string]any{"village": fmt.Sprintf("village %02d", i), "members": members}
	if v == "1" {
		d["visited_at"] = fmt.Sprintf("2025-02-%02dT10:15:00Z", 1+i%28)
		d["visit_day"] = fmt.Sprintf("2025-02-%02d", 1+i%28)
		d["first name"] = "Amani"
		d["respondent"] = map[string]any{"age": 20 + i, "gender": []string{"female", "male"}[i%2]}
		d["location"] = map[string]any{"latitude": 4.85 + float64(i)/100, "longitude": 31.58}
		d["needs"] = []any{"water", "food", "shelter"}[:1+i%3]
	} else {
		d["consent"] = i%2 == 0
		d["respondent"] = map[string]any{"age": 30.5 + float64(i), "phone": "+211 900 000"}
		d["score"] = 1.5 * float64(i)
	}
	return d
}

// push pushes n records (the first half of version 1), three per batch, an
// hour apart, and reviews some: every third approved, every fifth (later)
// rejected.
func (e *odataEnv) push(t *testing.T, n int) {
	t.Helper()
	start := len(e.records)
	for i := start; i < start+n; i += 3 {
		var subs []api.Submission
		for j := i; j < min(i+3, start+n); j++ {
			v := "1"
			if j >= start+n/2 {
				v = "2"
			}
			data := sampleData(j, v)
			raw, _ := json.Marshal(data)
			sub := api.Submission{ID: uuid.NewString(), Form: "household", FormVersion: v, ClientModifiedAt: e.clock.Now(), Data: raw}
			subs = append(subs, sub)
			e.records = append(e.records, sub.ID)
			var back map[string]any
			_ = json.Unmarshal(raw, &back)
			e.data[sub.ID] = back
		}
		body, _ := json.Marshal(api.PushRequest{Submissions: subs})
		var out api.PushResponse
		e.ts.want(t, http.StatusOK, http.MethodPost, "/v1/projects/"+odataProject+"/sync/push", e.enumerator, body, &out)
		for _, r := range out.Results {
			if r.Status != api.PushCreated {
				t.Fatalf("push: %+v", r)
			}
		}
		e.clock.Advance(time.Hour)
	}
	for i := start; i < start+n; i++ {
		state := ""
		switch {
		case i%5 == 0:
			state = domain.ReviewRejected
		case i%3 == 0:
			state = domain.ReviewApproved
		default:
			continue
		}
		e.ts.want(t, http.StatusOK, http.MethodPatch, "/v1/projects/"+odataProject+"/records/"+e.records[i], e.analyst, api.RecordPatch{ReviewState: &state}, nil)
	}
}

func (e *odataEnv) base() string {
	return "/v1/projects/" + odataProject + "/forms/household/odata"
}

// getOData GETs an OData URL (absolute, as nextLink gives it, or a path) as
// the analyst with a bearer token, and decodes the JSON answer.
func (e *odataEnv) getOData(t *testing.T, u string, header ...string) (*http.Response, map[string]any) {
	t.Helper()
	u = strings.TrimPrefix(u, e.ts.URL)
	resp, body := e.ts.get(t, u, append([]string{"Authorization", "Bearer " + e.analyst}, header...)...)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, body)
	}
	if resp.Header.Get("OData-Version") != "4.0" {
		t.Errorf("GET %s: OData-Version %q", u, resp.Header.Get("OData-Version"))
	}
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("GET %s: %v: %s", u, err, body)
	}
	return resp, out
}

// csdl is the part of a CSDL document the tests check answers against.
type csdl struct {
	DataServices struct {
		Schemas []struct {
			Namespace    string     `xml:"Namespace,attr"`
			EntityTypes  []csdlType `xml:"EntityType"`
			ComplexTypes []csdlType `xml:"ComplexType"`
			Container    struct {
				Sets []struct {
					Name       string `xml:"Name,attr"`
					EntityType string `xml:"EntityType,attr"`
				} `xml:"EntitySet"`
			} `xml:"EntityContainer"`
		} `xml:"Schema"`
	} `xml:"DataServices"`
}

type csdlType struct {
	Name string `xml:"Name,attr"`
	Key  []struct {
		Name string `xml:"Name,attr"`
	} `xml:"Key>PropertyRef"`
	Props []struct {
		Name string `xml:"Name,attr"`
		Type string `xml:"Type,attr"`
	} `xml:"Property"`
}

// metadata fetches and parses $metadata.
func (e *odataEnv) metadata(t *testing.T) *edm {
	t.Helper()
	resp, body := e.ts.get(t, e.base()+"/$metadata", "Authorization", "Bearer "+e.analyst)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/xml") {
		t.Fatalf("$metadata: %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	return parseEDM(t, body)
}

// edm is a parsed CSDL: types by qualified name, entity sets by name.
type edm struct {
	types map[string]map[string]string // type → property → type
	keys  map[string][]string
	sets  map[string]string // set → entity type
	order []string          // sets in document order
}

func parseEDM(t *testing.T, body []byte) *edm {
	t.Helper()
	var doc csdl
	if err := xml.Unmarshal(body, &doc); err != nil {
		t.Fatalf("$metadata is not XML: %v", err)
	}
	m := &edm{types: map[string]map[string]string{}, keys: map[string][]string{}, sets: map[string]string{}}
	for _, s := range doc.DataServices.Schemas {
		for _, list := range [][]csdlType{s.EntityTypes, s.ComplexTypes} {
			for _, ty := range list {
				props := map[string]string{}
				for _, p := range ty.Props {
					if _, dup := props[p.Name]; dup {
						t.Errorf("type %s declares %s twice", ty.Name, p.Name)
					}
					props[p.Name] = p.Type
				}
				m.types[s.Namespace+"."+ty.Name] = props
				for _, k := range ty.Key {
					m.keys[s.Namespace+"."+ty.Name] = append(m.keys[s.Namespace+"."+ty.Name], k.Name)
				}
			}
		}
		for _, set := range s.Container.Sets {
			m.sets[set.Name] = set.EntityType
			m.order = append(m.order, set.Name)
		}
	}
	// Every property's type is an Edm primitive or a declared complex type.
	for ty, props := range m.types {
		for p, pt := range props {
			if _, ok := m.types[pt]; !ok && !strings.HasPrefix(pt, "Edm.") {
				t.Errorf("%s/%s has the undeclared type %s", ty, p, pt)
			}
		}
	}
	for set, ty := range m.sets {
		if _, ok := m.types[ty]; !ok {
			t.Errorf("entity set %s has the undeclared type %s", set, ty)
		}
		if len(m.keys[ty]) == 0 {
			t.Errorf("entity type %s has no key", ty)
		}
	}
	return m
}

var edmDatePattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

// checkRows checks every row of an answer of set against the metadata:
// every property it carries is declared, with a value of a compatible type,
// and the key is there.
func (m *edm) checkRows(t *testing.T, set string, rows []any) {
	t.Helper()
	ty, ok := m.sets[set]
	if !ok {
		t.Fatalf("answer of %s, which $metadata does not declare", set)
	}
	for i, r := range rows {
		obj, ok := r.(map[string]any)
		if !ok {
			t.Fatalf("%s row %d is not an object", set, i)
		}
		for _, k := range m.keys[ty] {
			if s, _ := obj[k].(string); s == "" {
				t.Errorf("%s row %d: key %s is %v", set, i, k, obj[k])
			}
		}
		m.checkValue(t, fmt.Sprintf("%s[%d]", set, i), ty, obj)
	}
}

func (m *edm) checkValue(t *testing.T, where, ty string, v any) {
	t.Helper()
	if v == nil {
		return
	}
	if props, ok := m.types[ty]; ok {
		obj, ok := v.(map[string]any)
		if !ok {
			t.Errorf("%s: %v is not an object of %s", where, v, ty)
			return
		}
		for k, pv := range obj {
			if strings.HasPrefix(k, "@") {
				continue
			}
			pt, ok := props[k]
			if !ok {
				t.Errorf("%s: property %q is not in %s", where, k, ty)
				continue
			}
			m.checkValue(t, where+"/"+k, pt, pv)
		}
		return
	}
	bad := false
	switch ty {
	case "Edm.String":
		_, ok := v.(string)
		bad = !ok
	case "Edm.Boolean":
		_, ok := v.(bool)
		bad = !ok
	case "Edm.Int64":
		f, ok := v.(float64)
		bad = !ok || f != float64(int64(f))
	case "Edm.Double":
		_, ok := v.(float64)
		bad = !ok
	case "Edm.DateTimeOffset":
		s, _ := v.(string)
		_, err := time.Parse(time.RFC3339Nano, s)
		bad = err != nil
	case "Edm.Date":
		s, _ := v.(string)
		bad = !edmDatePattern.MatchString(s)
	default:
		t.Errorf("%s: type %s is not one the test knows", where, ty)
	}
	if bad {
		t.Errorf("%s: %v (%T) is not a %s", where, v, v, ty)
	}
}

// readAll follows @odata.nextLink from u to the end and returns every row,
// checking each page against the metadata.
func (e *odataEnv) readAll(t *testing.T, m *edm, set, u string, header ...string) (rows []map[string]any, pages int) {
	t.Helper()
	for u != "" {
		_, page := e.getOData(t, u, header...)
		pages++
		if pages > 1000 {
			t.Fatal("nextLink never ends")
		}
		ctxURL, _ := page["@odata.context"].(string)
		if !strings.HasPrefix(ctxURL, e.ts.URL+e.base()+"/$metadata#"+set) {
			t.Errorf("@odata.context %q", ctxURL)
		}
		vals, _ := page["value"].([]any)
		m.checkRows(t, set, vals)
		for _, v := range vals {
			rows = append(rows, v.(map[string]any))
		}
		u, _ = page["@odata.nextLink"].(string)
		if u != "" && !strings.HasPrefix(u, e.ts.URL+e.base()+"/") {
			t.Fatalf("nextLink %q is not an absolute URL of the feed", u)
		}
	}
	return rows, pages
}

func rowIDs(rows []map[string]any) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i], _ = r["__id"].(string)
	}
	return out
}

// inOrder is ids in the feed's order: receive time, then id.
func (e *odataEnv) inOrder(t *testing.T, ids []string) []string {
	t.Helper()
	stored := e.stored(t)
	out := slices.Clone(ids)
	slices.SortStableFunc(out, func(a, b string) int {
		if c := stored[a].CreatedAt.Compare(stored[b].CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return out
}

// stored returns the form's live records as the store holds them, by id.
func (e *odataEnv) stored(t *testing.T) map[string]domain.Record {
	t.Helper()
	out := map[string]domain.Record{}
	since := int64(0)
	for {
		p, err := e.ts.srv.store.Changes(context.Background(), domain.ChangesQuery{ProjectID: odataProject, FormID: "household", Since: since, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Records {
			if !r.Deleted {
				out[r.ID] = r
			}
		}
		since = p.Next
		if !p.More {
			return out
		}
	}
}

// TestODataFeed reads every entity set page by page on both stores and
// checks the answers against $metadata and against the stored records.
func TestODataFeed(t *testing.T) {
	for _, st := range odataStores {
		t.Run(st.name, func(t *testing.T) {
			e := newODataEnv(t, st.opt(t))
			e.push(t, 14)
			md := e.metadata(t)

			// The service document lists every set of $metadata, Submissions first.
			_, svc := e.getOData(t, e.base())
			var names []string
			for _, v := range svc["value"].([]any) {
				entry := v.(map[string]any)
				if entry["kind"] != "EntitySet" || entry["url"] != entry["name"] {
					t.Errorf("service document entry %v", entry)
				}
				names = append(names, entry["name"].(string))
			}
			wantSets := []string{"Submissions", "Submissions.members", "Submissions.members.visits"}
			if !slices.Equal(names, wantSets) || !slices.Equal(md.order, wantSets) {
				t.Fatalf("sets: service document %v, $metadata %v, want %v", names, md.order, wantSets)
			}
			// The union of both versions, widened where they disagree.
			sub := md.types[md.sets["Submissions"]]
			for p, want := range map[string]string{"__id": "Edm.String", "village": "Edm.String", "visited_at": "Edm.DateTimeOffset",
				"visit_day": "Edm.Date", "first_name": "Edm.String", "needs": "Edm.String", "consent": "Edm.Boolean", "score": "Edm.Double"} {
				if sub[p] != want {
					t.Errorf("Submissions/%s: %q, want %s", p, sub[p], want)
				}
			}
			if _, ok := sub["members"]; ok {
				t.Error("the repeat group is a property of Submissions; it is its own entity set")
			}
			resp := md.types[sub["respondent"]]
			if resp["age"] != "Edm.Double" || resp["gender"] != "Edm.String" || resp["phone"] != "Edm.String" {
				t.Errorf("respondent: %v", resp)
			}
			if geo := md.types[sub["location"]]; geo["latitude"] != "Edm.Double" || geo["longitude"] != "Edm.Double" {
				t.Errorf("location: %s %v", sub["location"], geo)
			}
			members := md.types[md.sets["Submissions.members"]]
			if members["__Submissions-id"] != "Edm.String" || members["relation"] != "Edm.String" || members["age"] != "Edm.Int64" {
				t.Errorf("Submissions.members: %v", members)
			}
			if v := md.types[md.sets["Submissions.members.visits"]]; v["__Submissions-members-id"] != "Edm.String" || v["day"] != "Edm.String" {
				t.Errorf("Submissions.members.visits: %v", v)
			}

			// Submissions, four rows a page: every stored record once, in the order received.
			stored := e.stored(t)
			resp0, _ := e.getOData(t, e.base()+"/Submissions", "Prefer", "odata.maxpagesize=4")
			if got := resp0.Header.Get("Preference-Applied"); got != "odata.maxpagesize=4" {
				t.Errorf("Preference-Applied %q", got)
			}
			rows, pages := e.readAll(t, md, "Submissions", e.base()+"/Submissions", "Prefer", "odata.maxpagesize=4")
			order := e.inOrder(t, e.records)
			if !slices.Equal(rowIDs(rows), order) || pages != 4 {
				t.Fatalf("Submissions in %d pages: %v, want %v", pages, rowIDs(rows), order)
			}
			wantMembers, wantVisits := 0, 0
			for _, r := range rows {
				id := r["__id"].(string)
				rec, data := stored[id], e.data[id]
				sys := r["__system"].(map[string]any)
				if sys["reviewState"] != reviewOf(rec) || sys["formVersion"] != rec.FormVersion || sys["rev"] != rec.Rev ||
					sys["submitterId"] != "eve" || sys["hasConflicts"] != false {
					t.Errorf("%s: __system %v, stored %+v", id, sys, rec)
				}
				if at, _ := time.Parse(time.RFC3339Nano, sys["submissionDate"].(string)); !at.Equal(rec.CreatedAt) {
					t.Errorf("%s: submissionDate %v, stored %v", id, sys["submissionDate"], rec.CreatedAt)
				}
				if r["village"] != data["village"] {
					t.Errorf("%s: village %v, want %v", id, r["village"], data["village"])
				}
				if rd, ok := data["respondent"].(map[string]any); ok {
					if got := r["respondent"].(map[string]any)["age"]; got != rd["age"] {
						t.Errorf("%s: respondent/age %v, want %v", id, got, rd["age"])
					}
				}
				if rec.FormVersion == "1" {
					var want []string
					for _, n := range data["needs"].([]any) {
						want = append(want, n.(string))
					}
					if r["needs"] != strings.Join(want, " ") {
						t.Errorf("%s: needs %q, want %q", id, r["needs"], want)
					}
					loc := data["location"].(map[string]any)
					if got := r["location"].(map[string]any); got["latitude"] != loc["latitude"] || got["altitude"] != nil {
						t.Errorf("%s: location %v, want %v", id, got, loc)
					}
					if r["first_name"] != "Amani" || r["visit_day"] != data["visit_day"] {
						t.Errorf("%s: first_name %v visit_day %v", id, r["first_name"], r["visit_day"])
					}
				} else if r["score"] != data["score"] || r["consent"] != data["consent"] || r["needs"] != nil {
					t.Errorf("%s: score %v consent %v needs %v", id, r["score"], r["consent"], r["needs"])
				}
				for _, m := range data["members"].([]any) {
					wantMembers++
					vs, _ := m.(map[string]any)["visits"].([]any)
					wantVisits += len(vs)
				}
			}
			if len(rows) != len(stored) {
				t.Errorf("%d rows, %d stored records", len(rows), len(stored))
			}

			// The repeat groups: each member once, under its record, in order.
			mrows, _ := e.readAll(t, md, "Submissions.members", e.base()+"/Submissions.members", "Prefer", "odata.maxpagesize=3")
			if len(mrows) != wantMembers {
				t.Fatalf("%d member rows, want %d", len(mrows), wantMembers)
			}
			seen := map[string]bool{}
			for _, r := range mrows {
				id, parent := r["__id"].(string), r["__Submissions-id"].(string)
				if seen[id] {
					t.Errorf("member row %s twice", id)
				}
				seen[id] = true
				k, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(id, parent+"/members["), "]"))
				if err != nil {
					t.Fatalf("member row id %q does not name its parent %q", id, parent)
				}
				want := e.data[parent]["members"].([]any)[k-1].(map[string]any)
				if r["name"] != want["name"] || r["age"] != want["age"] || r["relation"] != want["relation"] {
					t.Errorf("member %s: %v, want %v", id, r, want)
				}
			}
			vrows, _ := e.readAll(t, md, "Submissions.members.visits", e.base()+"/Submissions.members.visits", "Prefer", "odata.maxpagesize=2")
			if len(vrows) != wantVisits {
				t.Errorf("%d visit rows, want %d", len(vrows), wantVisits)
			}
			for _, r := range vrows {
				if !seen[r["__Submissions-members-id"].(string)] {
					t.Errorf("visit %v points at no member row", r)
				}
			}

			// $count counts the rows whatever $top; $top spans pages.
			_, counted := e.getOData(t, e.base()+"/Submissions.members?$count=true&$top=2")
			if n, _ := counted["@odata.count"].(float64); int(n) != wantMembers {
				t.Errorf("@odata.count %v, want %d", counted["@odata.count"], wantMembers)
			}
			top, pages := e.readAll(t, md, "Submissions", e.base()+"/Submissions?$top=7&$count=true", "Prefer", "odata.maxpagesize=3")
			if !slices.Equal(rowIDs(top), order[:7]) || pages != 3 {
				t.Errorf("$top=7 in pages of 3: %d pages, %v", pages, rowIDs(top))
			}
			skipped, _ := e.readAll(t, md, "Submissions", e.base()+"/Submissions?$skip=5&$top=4")
			if !slices.Equal(rowIDs(skipped), order[5:9]) {
				t.Errorf("$skip=5&$top=4: %v", rowIDs(skipped))
			}
		})
	}
}

func reviewOf(r domain.Record) string {
	if r.ReviewState == "" {
		return domain.ReviewReceived
	}
	return r.ReviewState
}

// TestODataFilterSelect: $filter on submission date and review state with
// the operators Power BI and Excel send, and $select, on both stores.
func TestODataFilterSelect(t *testing.T) {
	for _, st := range odataStores {
		t.Run(st.name, func(t *testing.T) {
			e := newODataEnv(t, st.opt(t))
			e.push(t, 12)
			md := e.metadata(t)
			stored := e.stored(t)
			// The receive time of the records of the third batch (ids 6..8).
			third := stored[e.records[6]].CreatedAt.Format(time.RFC3339)
			want := func(keep func(i int, r domain.Record) bool) []string {
				var out []string
				for i, id := range e.records {
					if keep(i, stored[id]) {
						out = append(out, id)
					}
				}
				return e.inOrder(t, out)
			}
			cases := []struct {
				filter string
				keep   func(i int, r domain.Record) bool
			}{
				{"__system/reviewState eq 'approved'", func(_ int, r domain.Record) bool { return r.ReviewState == "approved" }},
				{"__system/reviewState ne 'received'", func(_ int, r domain.Record) bool { return reviewOf(r) != "received" }},
				{"__system/submissionDate ge " + third, func(i int, _ domain.Record) bool { return i >= 6 }},
				{"__system/submissionDate gt " + third, func(i int, _ domain.Record) bool { return i >= 9 }},
				{"__system/submissionDate lt " + third, func(i int, _ domain.Record) bool { return i < 6 }},
				{"__system/submissionDate le " + third, func(i int, _ domain.Record) bool { return i < 9 }},
				{"__system/submissionDate eq " + third, func(i int, _ domain.Record) bool { return i >= 6 && i < 9 }},
				{"__system/submissionDate ge 2025-03-01 and __system/submissionDate lt " + third + " and __system/reviewState eq 'rejected'",
					func(i int, r domain.Record) bool { return i < 6 && r.ReviewState == "rejected" }},
				{"(__system/reviewState eq 'approved' or __system/reviewState eq 'rejected') and not (__system/submissionDate lt " + third + ")",
					func(i int, r domain.Record) bool {
						return i >= 6 && (r.ReviewState == "approved" || r.ReviewState == "rejected")
					}},
				{"__system/submissionDate gt 2030-01-01T00:00:00.000+02:00", func(int, domain.Record) bool { return false }},
				{"'eve' eq __system/submitterId and __system/deviceId eq null", func(int, domain.Record) bool { return true }},
			}
			for _, c := range cases {
				rows, _ := e.readAll(t, md, "Submissions", e.base()+"/Submissions?$filter="+url.QueryEscape(c.filter)+"&$count=true", "Prefer", "odata.maxpagesize=2")
				if got, w := rowIDs(rows), want(c.keep); !slices.Equal(got, w) {
					t.Errorf("$filter=%s: %d rows %v, want %d %v", c.filter, len(got), got, len(w), w)
				}
				_, first := e.getOData(t, e.base()+"/Submissions?$filter="+url.QueryEscape(c.filter)+"&$count=true&$top=1")
				if n, _ := first["@odata.count"].(float64); int(n) != len(want(c.keep)) {
					t.Errorf("$filter=%s: @odata.count %v, want %d", c.filter, first["@odata.count"], len(want(c.keep)))
				}
			}
			// A repeat group's rows filtered by their record ($root/Submissions/ as ODK Central takes it).
			approvedMembers := 0
			for _, id := range want(cases[0].keep) {
				approvedMembers += len(e.data[id]["members"].([]any))
			}
			mrows, _ := e.readAll(t, md, "Submissions.members", e.base()+"/Submissions.members?$filter="+url.QueryEscape("$root/Submissions/__system/reviewState eq 'approved'"))
			if len(mrows) != approvedMembers {
				t.Errorf("members of approved records: %d, want %d", len(mrows), approvedMembers)
			}

			// $select: the key, and only what was asked.
			rows, _ := e.readAll(t, md, "Submissions", e.base()+"/Submissions?$select="+url.QueryEscape("village,__system/reviewState,respondent/age"))
			for _, r := range rows {
				if len(r) != 4 || r["village"] == nil || r["__id"] == nil {
					t.Fatalf("$select row %v", r)
				}
				if sys := r["__system"].(map[string]any); len(sys) != 1 || sys["reviewState"] == nil {
					t.Errorf("$select __system %v", sys)
				}
				if resp := r["respondent"].(map[string]any); len(resp) != 1 {
					t.Errorf("$select respondent %v", resp)
				}
			}
		})
	}
}

// TestODataStableWhilePushing: a reader paging through Submissions while
// records are edited, reviewed and created sees each record that existed
// when it started exactly once.
func TestODataStableWhilePushing(t *testing.T) {
	e := newODataEnv(t, odataStores[0].opt(t))
	e.push(t, 9)
	md := e.metadata(t)
	before := slices.Clone(e.records)
	_, page := e.getOData(t, e.base()+"/Submissions", "Prefer", "odata.maxpagesize=3")
	got := []string{}
	for _, v := range page["value"].([]any) {
		got = append(got, v.(map[string]any)["__id"].(string))
	}
	// Between pages: a record of page 1 and one of page 3 are corrected and
	// reviewed (which moves them in the changes feed), and new ones come in.
	for _, i := range []int{1, 7} {
		var rec api.Record
		e.ts.want(t, http.StatusOK, http.MethodGet, "/v1/projects/"+odataProject+"/records/"+e.records[i], e.analyst, nil, &rec)
		data := e.data[e.records[i]]
		data["village"] = "corrected"
		raw, _ := json.Marshal(map[string]any{"data": data})
		req := e.ts.newRequest(t, http.MethodPut, "/v1/projects/"+odataProject+"/records/"+e.records[i], raw)
		req.Header.Set("Authorization", "Bearer "+e.analyst)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("If-Match", `"`+rec.Rev+`"`)
		if resp, body := e.ts.do(t, req); resp.StatusCode != http.StatusOK {
			t.Fatalf("correction: %d %s", resp.StatusCode, body)
		}
	}
	e.push(t, 3)
	rest, _ := e.readAll(t, md, "Submissions", page["@odata.nextLink"].(string))
	got = append(got, rowIDs(rest)...)
	if want := e.inOrder(t, e.records); !slices.Equal(got, want) {
		t.Errorf("read while writing: %v\nwant the %d old records once each, then the new: %v", got, len(before), e.records)
	}
}

// TestODataErrors: what the feed does not take answers a problem document
// that says what it does take.
func TestODataErrors(t *testing.T) {
	e := newODataEnv(t, odataStores[0].opt(t))
	e.push(t, 3)
	for _, c := range []struct {
		path   string
		status int
		code   string
	}{
		{"/Submissions?$orderby=__id", 400, "unsupported_query_option"},
		{"/Submissions?$expand=*", 400, "unsupported_query_option"},
		{"/Submissions?limit=3", 400, "unsupported_query_option"},
		{"/Submissions?$top=-1", 400, "invalid_query"},
		{"/Submissions?$count=yes", 400, "invalid_query"},
		{"/Submissions?$format=xml", 400, "invalid_query"},
		{"/Submissions?$filter=" + url.QueryEscape("year(__system/submissionDate) eq 2025"), 400, "invalid_filter"},
		{"/Submissions?$filter=" + url.QueryEscape("village eq 'x'"), 400, "invalid_filter"},
		{"/Submissions?$filter=" + url.QueryEscape("__system/submissionDate gt 'yesterday'"), 400, "invalid_filter"},
		{"/Submissions?$filter=" + url.QueryEscape("__system/reviewState eq approved"), 400, "invalid_filter"},
		{"/Submissions?$filter=" + url.QueryEscape("(__system/reviewState eq 'approved'"), 400, "invalid_filter"},
		{"/Submissions?$filter=" + url.QueryEscape("__system/reviewState has 'approved'"), 400, "invalid_filter"},
		{"/Submissions?$select=nope", 400, "invalid_select"},
		{"/Submissions?$skiptoken=garbage", 400, "invalid_skiptoken"},
		{"/Submissions?$skiptoken=" + base64.RawURLEncoding.EncodeToString([]byte("k1|0|garbage")), 400, "invalid_skiptoken"},
		{"/Nope", 404, "entity_set_not_found"},
	} {
		resp, body := e.ts.get(t, e.base()+c.path, "Authorization", "Bearer "+e.analyst)
		p := problemOf(t, resp, body, c.status, c.code)
		if c.status == 400 && p.Detail == "" {
			t.Errorf("%s: 400 without a detail saying what is supported", c.path)
		}
	}
	resp, body := e.ts.get(t, "/v1/projects/"+odataProject+"/forms/nope/odata/$metadata", "Authorization", "Bearer "+e.analyst)
	problemOf(t, resp, body, 404, "form_not_found")
}

// TestODataExampleForms: the example forms' metadata builds (a $ref'd
// geopoint, oneOf choices, groups), and their sample records read back as
// it says.
func TestODataExampleForms(t *testing.T) {
	e := newFormsEnv(t)
	for _, name := range []string{"perception-survey", "incident-report", "action-plan-followup"} {
		e.putDraft(t, http.StatusCreated, name, "1", example(t, name))
		e.publish(t, name, "1")
		var subs []api.Submission
		for _, f := range []string{"good-full.json", "good-minimal.json", "good-no-incidents.json", "good-other-type.json", "good-completed.json", "good-in-progress.json"} {
			if b, err := readSample(name, f); err == nil {
				subs = append(subs, newSubmission(name, "1", b))
			}
		}
		for _, r := range e.push(t, "device", subs...) {
			if r.Status != api.PushCreated {
				t.Fatalf("%s: %+v", name, r)
			}
		}
		base := "/v1/projects/" + formsProject + "/forms/" + name + "/odata"
		_, mdBody := e.expect(t, http.StatusOK, "analyst", http.MethodGet, base+"/$metadata", nil, nil)
		md := parseEDM(t, mdBody)
		for _, set := range md.order {
			var page map[string]any
			e.expect(t, http.StatusOK, "analyst", http.MethodGet, base+"/"+set, nil, &page)
			vals, _ := page["value"].([]any)
			md.checkRows(t, set, vals)
			if set == "Submissions" && len(vals) != len(subs) {
				t.Errorf("%s: %d submissions, want %d", name, len(vals), len(subs))
			}
		}
	}
}

func readSample(form, name string) ([]byte, error) {
	return os.ReadFile(filepath.Join("..", "..", "schemas", "examples", "testdata", form, name))
}

// TestBasicTransport: where a password may travel.
func TestBasicTransport(t *testing.T) {
	trusted := &Server{trustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32")}}
	for _, c := range []struct {
		name   string
		remote string
		header []string
		tls    bool
		want   bool
	}{
		{"loopback", "127.0.0.1:5000", nil, false, true},
		{"loopback v6", "[::1]:5000", nil, false, true},
		{"another host", "192.0.2.7:5000", nil, false, false},
		{"tls", "192.0.2.7:5000", nil, true, true},
		{"loopback forwarding for someone (untrusted proxy)", "127.0.0.1:5000", []string{"X-Forwarded-For", "203.0.113.5"}, false, false},
		{"loopback claiming https (untrusted)", "127.0.0.1:5000", []string{"X-Forwarded-Proto", "https"}, false, false},
		{"untrusted host claiming https", "192.0.2.7:5000", []string{"X-Forwarded-Proto", "https"}, false, false},
		{"trusted proxy, https", "10.0.0.1:5000", []string{"X-Forwarded-Proto", "https"}, false, true},
		{"trusted proxy, chain of https", "10.0.0.1:5000", []string{"X-Forwarded-Proto", "https, https"}, false, true},
		{"trusted proxy, one hop http", "10.0.0.1:5000", []string{"X-Forwarded-Proto", "http, https"}, false, false},
		{"trusted proxy, no proto", "10.0.0.1:5000", []string{"X-Forwarded-For", "203.0.113.5"}, false, false},
		{"trusted proxy, Forwarded https", "10.0.0.1:5000", []string{"Forwarded", `for=203.0.113.5;proto="https"`}, false, true},
		{"trusted proxy, no headers (not loopback)", "10.0.0.1:5000", nil, false, false},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = c.remote
		for i := 0; i+1 < len(c.header); i += 2 {
			r.Header.Set(c.header[i], c.header[i+1])
		}
		if c.tls {
			r.TLS = &tls.ConnectionState{}
		}
		if got := trusted.basicTransportOK(r); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// TestODataBasicAuth: Power BI's HTTP Basic is accepted over loopback and
// from a trusted proxy that says https, refused over plain HTTP from
// elsewhere, throttled and audited, and ends with a password change.
func TestODataBasicAuth(t *testing.T) {
	e := newODataEnv(t, odataStores[0].opt(t), withConfig(func(c *Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	}))
	e.push(t, 3)
	basic := func(user, pw string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
	}
	get := func(auth string, header ...string) (*http.Response, []byte) {
		t.Helper()
		return e.ts.get(t, e.base()+"/Submissions", append([]string{"Authorization", auth}, header...)...)
	}

	// Loopback (the test server's 127.0.0.1): accepted, again and again.
	for range 3 {
		if resp, body := get(basic("olga", odataAnalystPassword)); resp.StatusCode != http.StatusOK {
			t.Fatalf("Basic over loopback: %d %s", resp.StatusCode, body)
		}
	}
	// No credentials: both challenges, Bearer first.
	resp, body := e.ts.get(t, e.base()+"/Submissions")
	problemOf(t, resp, body, 401, api.CodeUnauthorized)
	if ch := resp.Header.Values("WWW-Authenticate"); len(ch) != 2 || !strings.HasPrefix(ch[0], "Bearer") || ch[1] != `Basic realm="fieldsync"` {
		t.Errorf("challenges %q", ch)
	}
	// Wrong password: 401 with the Basic challenge, audited.
	resp, body = get(basic("olga", "not-the-password"))
	problemOf(t, resp, body, 401, "invalid_credentials")
	if got := resp.Header.Get("WWW-Authenticate"); got != `Basic realm="fieldsync"` {
		t.Errorf("WWW-Authenticate %q", got)
	}
	var audit api.AuditList
	e.ts.want(t, http.StatusOK, http.MethodGet, "/v1/audit?type=login_failed", e.admin, nil, &audit)
	found := false
	for _, ev := range audit.Events {
		found = found || (ev.Subject == "olga" && ev.Detail["via"] == "basic" && ev.Detail["reason"] == "bad_password")
	}
	if !found {
		t.Errorf("no login_failed event via basic for olga: %+v", audit.Events)
	}
	// Malformed credentials: 401, nothing else.
	resp, body = get("Basic !!!")
	problemOf(t, resp, body, 401, "invalid_credentials")

	// Not loopback, plain HTTP: the trusted proxy (the test client's
	// loopback address) forwards for a client without saying https, or says
	// http: refused before the password is looked at. Saying https: accepted,
	// and the links the feed gives are https.
	for _, h := range [][]string{
		{"X-Forwarded-For", "203.0.113.5"},
		{"X-Forwarded-For", "203.0.113.5", "X-Forwarded-Proto", "http"},
		{"Forwarded", "for=203.0.113.5;proto=http"},
		{"X-Forwarded-For", "203.0.113.5", "X-Forwarded-Proto", "https", "Forwarded", "for=203.0.113.5;proto=http"},
	} {
		resp, body := get(basic("olga", odataAnalystPassword), h...)
		problemOf(t, resp, body, 403, "https_required")
	}
	for _, h := range [][]string{
		{"X-Forwarded-For", "203.0.113.5", "X-Forwarded-Proto", "https"},
		{"Forwarded", `for=203.0.113.5;proto="https"`},
	} {
		resp, body := get(basic("olga", odataAnalystPassword), h...)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("trusted proxy saying https %v: %d %s", h, resp.StatusCode, body)
		} else if !strings.Contains(string(body), `"@odata.context":"https://`) {
			t.Errorf("behind an https proxy the links are not https: %s", truncate(body))
		}
	}

	// Bearer tokens keep working on the same routes.
	if resp, body := get("Bearer " + e.analyst); resp.StatusCode != http.StatusOK {
		t.Errorf("Bearer: %d %s", resp.StatusCode, body)
	}
	// Another role's password: authenticated, then refused by the role rule.
	resp, body = get(basic("eve", "pw-of-eve-1234"))
	problemOf(t, resp, body, 403, api.CodeForbidden)

	// A password change ends the cached credential at once.
	e.ts.want(t, http.StatusNoContent, http.MethodPost, "/v1/auth/password", e.analyst,
		api.ChangePasswordRequest{CurrentPassword: odataAnalystPassword, NewPassword: "olga-new-password-5678"}, nil)
	resp, body = get(basic("olga", odataAnalystPassword))
	problemOf(t, resp, body, 401, "invalid_credentials")
	if resp, body := get(basic("olga", "olga-new-password-5678")); resp.StatusCode != http.StatusOK {
		t.Errorf("new password: %d %s", resp.StatusCode, body)
	}
	// So does disabling the user.
	e.ts.want(t, http.StatusNoContent, http.MethodPost, "/v1/users/olga/disable", e.admin, nil, nil)
	resp, body = get(basic("olga", "olga-new-password-5678"))
	problemOf(t, resp, body, 401, "invalid_credentials")
}
