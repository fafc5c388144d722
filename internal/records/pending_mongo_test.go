package records_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/forms"
	"github.com/fieldsync/fieldsync/internal/records"
	"github.com/fieldsync/fieldsync/internal/store/mongo"
	"github.com/fieldsync/fieldsync/internal/store/mongo/mongotest"
)

// TestResendAfterInterruptedWrite is the answer lost on 2G, with the MongoDB
// store: a push reaches a server instance, which applies the record but dies
// (here: loses its connection) before the record's change is in the feed. The
// tablet resends the same item through another instance and is answered
// "unchanged"; so a pull from the start must then list the record, at once,
// not after the store's background sweep.
func TestResendAfterInterruptedWrite(t *testing.T) {
	cfg := mongotest.Config(t) // PendingGrace is a minute: no sweep helps
	ctx := context.Background()
	var stores []*mongo.Store
	for range 2 {
		st, err := mongo.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		stores = append(stores, st)
	}
	first := newInstances(t, stores[0], 1, domain.PolicyMerge)[0]
	second := records.New(records.Config{Store: stores[1],
		Forms: records.FormsOf(forms.NewService(forms.ServiceConfig{Store: stores[1]}))})

	item := sub(uuid.NewString(), nil, `{"name": "amina"}`, time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	restore := mongotest.FailInserts(t, cfg.Database, "changes")
	res, err := first.Push(ctx, tablet(0), "p", []records.Submission{item})
	if err == nil && res[0].Status == records.StatusCreated {
		t.Fatalf("push with the feed cut off: %+v, acknowledged", res)
	}
	restore()

	res, err = second.Push(ctx, tablet(0), "p", []records.Submission{item})
	if err != nil || res[0].Status != records.StatusUnchanged {
		t.Fatalf("resend: %v %+v; want unchanged", err, res)
	}
	page, err := second.Pull(ctx, tablet(0), "p", "", 100, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != 1 || page.Records[0].ID != item.ID || page.Records[0].Rev != res[0].Rev || page.More {
		t.Fatalf("pull from the start after the resend: %+v; want the record at rev %s", page, res[0].Rev)
	}
}
