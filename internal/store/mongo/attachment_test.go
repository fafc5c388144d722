package mongo_test

import (
	"testing"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/store/mongo"
	"github.com/fieldsync/fieldsync/internal/store/mongo/mongotest"
	"github.com/fieldsync/fieldsync/internal/store/storetest"
)

// twoInstances opens two Store values on one database, as two server
// instances behind a load balancer.
func twoInstances(t *testing.T) (domain.Store, domain.Store) {
	cfg := mongotest.Config(t)
	var stores []domain.Store
	for range 2 {
		st, err := mongo.Open(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		stores = append(stores, st)
	}
	return stores[0], stores[1]
}

// TestAttachmentResumeOnOtherInstance: an upload cut off on one instance is
// resumed and completed on another.
func TestAttachmentResumeOnOtherInstance(t *testing.T) {
	a, b := twoInstances(t)
	storetest.RunSharedResume(t, a, b)
}

// TestAttachmentRacingAppendsTwoInstances: two clients sending one file to
// two instances at once end with one upload, then one file.
func TestAttachmentRacingAppendsTwoInstances(t *testing.T) {
	a, b := twoInstances(t)
	storetest.RunRacingAppends(t, a, b)
}
