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
	st, err := sqlite.Open(ctx, t.TempDir()+"/fieldsync.db")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateProject(ctx, domain.Project{ID: "p", Title: "p", CreatedBy: "admin", CreatedAt: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	def, err := schemas.Example("incident-report")
	if err != nil {
		t.Fatal(err)
	}
	fs := forms.NewService(forms.ServiceConfig{Store: st})
	if _, _, err := fs.PutVersion(ctx, "p", "incident", "1", def); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Publish(ctx, "p", "incident", "1"); err != nil {
		t.Fatal(err)
	}
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
	if res[0].Status != records.StatusRejected || len(res[0].Errors) != 1 || res[0].Errors[0].Keyword != "maxValues" {
		t.Fatalf("%s %+v, want rejected with one maxValues finding", res[0].Status, res[0].Errors[:min(3, len(res[0].Errors))])
	}
	// The body alone is 10 MB and its canonical copy as much again; the
	// million findings took 1.5 GB.
	t.Logf("the push allocated %d MB", (after.TotalAlloc-before.TotalAlloc)>>20)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 200<<20 {
		t.Errorf("the push allocated %d MB", alloc>>20)
	}

	items, _, err := svc.Quarantine(ctx, "p", false, "", 100)
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
