package forms

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/store/mongo"
	"github.com/fieldsync/fieldsync/internal/store/mongo/mongotest"
	"github.com/fieldsync/fieldsync/internal/store/sqlite"
)

// testClock is a clock the test moves by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestCloseSeenAcrossInstances: two instances on one database (two processes
// on one SQLite file, two servers on one MongoDB database). The instance that
// closes or reopens a form answers the new state at once, even though it had
// the form cached; the other within FormStateTTL, and from its cache before
// that (the bound is what the cache may cost, and all it may cost).
func TestCloseSeenAcrossInstances(t *testing.T) {
	openers := []struct {
		name string
		// database returns a function that opens another handle on one new database.
		database func(t *testing.T) func() domain.Store
	}{
		{"sqlite", func(t *testing.T) func() domain.Store {
			path := filepath.Join(t.TempDir(), "fieldsync.db")
			return func() domain.Store {
				st, err := sqlite.Open(context.Background(), path)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				return st
			}
		}},
		{"mongodb", func(t *testing.T) func() domain.Store {
			cfg := mongotest.Config(t)
			return func() domain.Store {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				st, err := mongo.Open(ctx, cfg)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				return st
			}
		}},
	}
	for _, o := range openers {
		t.Run(o.name, func(t *testing.T) {
			ctx := context.Background()
			open := o.database(t)
			clock := &testClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
			stA, stB := open(), open()
			if err := stA.CreateProject(ctx, domain.Project{ID: "p", Title: "P", CreatedAt: clock.Now()}); err != nil {
				t.Fatal(err)
			}
			a := NewService(ServiceConfig{Store: stA, Now: clock.Now})
			b := NewService(ServiceConfig{Store: stB, Now: clock.Now})
			if _, _, err := a.PutVersion(ctx, "p", "incident-report", "1", readExample(t, "incident-report")); err != nil {
				t.Fatal(err)
			}
			if _, err := a.Publish(ctx, "p", "incident-report", "1"); err != nil {
				t.Fatal(err)
			}
			state := func(svc *Service) string {
				t.Helper()
				f, _, _, err := svc.Lookup(ctx, "p", "incident-report", "1")
				if err != nil {
					t.Fatal(err)
				}
				return f.State
			}
			want := func(who string, svc *Service, s string) {
				t.Helper()
				if got := state(svc); got != s {
					t.Fatalf("%s: form %s, want %s", who, got, s)
				}
			}
			want("A", a, domain.FormOpen)
			want("B", b, domain.FormOpen)

			if _, err := a.Close(ctx, "p", "incident-report"); err != nil {
				t.Fatal(err)
			}
			want("A at once after its close", a, domain.FormClosed)
			clock.Advance(FormStateTTL - time.Millisecond)
			want("B inside the bound (its cache)", b, domain.FormOpen)
			clock.Advance(time.Millisecond)
			want("B at the bound", b, domain.FormClosed)

			if _, err := a.Reopen(ctx, "p", "incident-report"); err != nil {
				t.Fatal(err)
			}
			want("A at once after its reopen", a, domain.FormOpen)
			clock.Advance(FormStateTTL)
			want("B after the bound", b, domain.FormOpen)
			// And a close on B: seen by B at once, by A within the bound.
			want("A", a, domain.FormOpen)
			if _, err := b.Close(ctx, "p", "incident-report"); err != nil {
				t.Fatal(err)
			}
			want("B at once after its close", b, domain.FormClosed)
			clock.Advance(FormStateTTL)
			want("A after the bound", a, domain.FormClosed)
		})
	}
}
