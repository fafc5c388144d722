package records_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/forms"
	"github.com/fieldsync/fieldsync/internal/records"
	"github.com/fieldsync/fieldsync/internal/store/sqlite"
	"github.com/fieldsync/fieldsync/schemas"
)

// wrongAnswers is an incident report whose reported_to (an array of choices
// without maxItems) holds n answers that are not among the choices.
func wrongAnswers(n int) string {
	var sb strings.Builder
	sb.WriteString(`{"reported_to": [`)
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `"x%d"`, i)
	}
	sb.WriteString(`]}`)
	return sb.String()
}

// TestOneItemCannotFloodTheServer: one pushed item with a million wrong
// answers made a million findings (a 172 MB answer, 1.9 GB of memory, 190 MB
// more in the quarantine). Now its answer, its quarantine entry, a quarantine
// page and the memory the push takes are bounded, and the item is still kept.
func TestOneItemCannotFloodTheServer(t *testing.T) {
	ctx := context.Background()
	def, err := schemas.Example("incident-report")
	if err != nil {
		t.Fatal(err)
	}
	st, fs := publishedForm(t, "incident", def)
	svc := records.New(records.Config{Store: st, Forms: records.FormsOf(fs)})
	item := func(data string) records.Submission {
		s := records.Submission{ID: uuid.NewString(), Form: "incident", FormVersion: "1", Data: json.RawMessage(data)}
		s.Raw, _ = json.Marshal(map[string]any{"id": s.ID, "form": s.Form, "form_version": s.FormVersion, "data": s.Data})
		return s
	}

	// Many findings: the answer lists MaxFindings and says how many more.
	res, err := svc.Push(ctx, tablet(1), "p", []records.Submission{item(wrongAnswers(5000))})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Status != records.StatusRejected || len(res[0].Errors) != records.MaxFindings+1 ||
		!strings.Contains(res[0].Errors[records.MaxFindings].Message, "more findings") {
		t.Fatalf("%s with %d findings, want rejected with %d and a count of the rest", res[0].Status, len(res[0].Errors), records.MaxFindings+1)
	}

	// Fifty thousand short answers: within the bytes, past the values.
	res, err = svc.Push(ctx, tablet(1), "p", []records.Submission{item(wrongAnswers(50_000))})
	if err != nil || res[0].Status != records.StatusRejected || len(res[0].Errors) != 1 || res[0].Errors[0].Keyword != "maxValues" {
		t.Fatalf("%v %+v, want rejected with one maxValues finding", err, res[0].Errors[:min(3, len(res[0].Errors))])
	}

	// A million answers: refused before validation, in bounded memory.
	huge := item(wrongAnswers(1_000_000))
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res, err = svc.Push(ctx, tablet(1), "p", []records.Submission{huge})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Status != records.StatusRejected || len(res[0].Errors) != 1 || res[0].Errors[0].Keyword != "maxBytes" {
		t.Fatalf("%s %+v, want rejected with one maxBytes finding", res[0].Status, res[0].Errors[:min(3, len(res[0].Errors))])
	}
	// The item is 10 MB, kept whole nowhere; the million findings took 1.5 GB.
	t.Logf("the push allocated %d MB", (after.TotalAlloc-before.TotalAlloc)>>20)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
		t.Errorf("the push allocated %d MB", alloc>>20)
	}

	items, _, err := svc.Quarantine(ctx, "p", domain.QuarantineFilter{States: []string{domain.QuarantineOpen}}, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var kept *domain.QuarantineItem
	size := 0
	for i := range items {
		size += len(items[i].Submission)
		if items[i].RecordID == huge.ID {
			kept = &items[i]
		}
	}
	if kept == nil {
		t.Fatal("the huge item is not in the quarantine")
	}
	if len(kept.Submission) > records.MaxQuarantinedBytes || !strings.Contains(string(kept.Submission), `"sha256"`) {
		t.Errorf("the quarantine keeps %d bytes of the huge item: %.200s", len(kept.Submission), kept.Submission)
	}
	if size > 8<<20 {
		t.Errorf("a quarantine page of %d MB", size>>20)
	}
}

// TestValidationBudget: a push that uses up its validation time rejects the
// items it did not validate, with a finding that says to send them again, and
// keeps them in the quarantine; sent again, they are stored.
func TestValidationBudget(t *testing.T) {
	ctx := context.Background()
	st, fs := publishedForm(t, "f", []byte(`{"title": "f", "schema": {"type": "object", "properties": {"name": {"type": "string"}}}}`))
	items := []records.Submission{sub(uuid.NewString(), nil, `{"name": "a"}`, time.Now()), sub(uuid.NewString(), nil, `{"name": "b"}`, time.Now())}
	spent := records.New(records.Config{Store: st, Forms: records.FormsOf(fs), ValidationBudget: time.Nanosecond})
	res, err := spent.Push(ctx, tablet(1), "p", items)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Status != records.StatusRejected || len(r.Errors) != 1 || r.Errors[0].Keyword != "timeout" || !strings.Contains(r.Errors[0].Message, "send the item again") {
			t.Fatalf("%+v, want rejected for want of time", r)
		}
	}
	q, _, err := spent.Quarantine(ctx, "p", domain.QuarantineFilter{States: []string{domain.QuarantineOpen}}, "", 10)
	if err != nil || len(q) != 2 {
		t.Fatalf("quarantine %d entries, %v; want both items kept", len(q), err)
	}
	res, err = records.New(records.Config{Store: st, Forms: records.FormsOf(fs)}).Push(ctx, tablet(1), "p", items)
	if err != nil || res[0].Status != records.StatusCreated || res[1].Status != records.StatusCreated {
		t.Fatalf("sent again: %+v, %v", res, err)
	}
}

// TestDataTooLarge: one item's data is bounded in bytes too, so that one
// answer cannot keep the validator busy for a minute.
func TestDataTooLarge(t *testing.T) {
	ctx := context.Background()
	st, fs := publishedForm(t, "f", []byte(`{"title": "f", "schema": {"type": "object"}}`))
	big := `{"notes": "` + strings.Repeat("a", records.MaxDataBytes) + `"}`
	res, err := records.New(records.Config{Store: st, Forms: records.FormsOf(fs)}).Push(ctx, tablet(1), "p", []records.Submission{sub(uuid.NewString(), nil, big, time.Now())})
	if err != nil || res[0].Status != records.StatusRejected || res[0].Errors[0].Keyword != "maxBytes" {
		t.Fatalf("%+v, %v; want rejected, maxBytes", res, err)
	}
}

// publishedForm is a SQLite store with project "p" and form version 1 of def
// published under the name form, and the forms service over it.
func publishedForm(t *testing.T, form string, def []byte) (*sqlite.Store, *forms.Service) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir()+"/fieldsync.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.CreateProject(ctx, domain.Project{ID: "p", Title: "p", CreatedBy: "admin", CreatedAt: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	fs := forms.NewService(forms.ServiceConfig{Store: st})
	if _, _, err := fs.PutVersion(ctx, "p", form, "1", def); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Publish(ctx, "p", form, "1"); err != nil {
		t.Fatal(err)
	}
	return st, fs
}
