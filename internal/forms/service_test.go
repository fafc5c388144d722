package forms

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/store/mongo"
	"github.com/fieldsync/fieldsync/internal/store/mongo/mongotest"
	"github.com/fieldsync/fieldsync/internal/store/sqlite"
)

// TestMain stops the embedded MongoDB-protocol server the MongoDB runs start.
func TestMain(m *testing.M) { os.Exit(mongotest.RunMain(m)) }

// stores opens a fresh store of each kind for the service tests: a SQLite
// file and a MongoDB database (embedded FerretDB, see mongotest; the tests keep
// their data small for it).
var stores = []struct {
	name string
	open func(t *testing.T) domain.Store
}{
	{"sqlite", func(t *testing.T) domain.Store {
		st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "fieldsync.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}},
	{"mongodb", func(t *testing.T) domain.Store {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		st, err := mongo.Open(ctx, mongotest.Config(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}},
}

// TestNoFastPath: with ServiceConfig.NoFastPath the definitions Lookup hands
// out validate with the library alone, and give the same findings; without it
// they take the fast path. One cache serves both services, as it may in a
// process: the switch must not change the cached definition.
func TestNoFastPath(t *testing.T) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			ctx := context.Background()
			st := s.open(t)
			if err := st.CreateProject(ctx, domain.Project{ID: "p", Title: "P", CreatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			cache := NewCache()
			fast := NewService(ServiceConfig{Store: st, Cache: cache})
			slow := NewService(ServiceConfig{Store: st, Cache: cache, NoFastPath: true})
			if _, _, err := fast.PutVersion(ctx, "p", "incident-report", "1", readExample(t, "incident-report")); err != nil {
				t.Fatal(err)
			}
			if _, err := fast.Publish(ctx, "p", "incident-report", "1"); err != nil {
				t.Fatal(err)
			}
			lookup := func(svc *Service) *Definition {
				t.Helper()
				_, _, d, err := svc.Lookup(ctx, "p", "incident-report", "1")
				if err != nil {
					t.Fatal(err)
				}
				return d
			}
			slowDef, fastDef := lookup(slow), lookup(fast)
			if slowDef.fast != nil {
				t.Error("NoFastPath: the definition still has a fast path")
			}
			if fastDef.fast == nil {
				t.Error("default: the definition has no fast path (or NoFastPath changed the cached one)")
			}
			for _, file := range []string{"good-full.json", "bad-severity-enum.json"} {
				data := readSample(t, "incident-report", file)
				if got, want := slowDef.ValidateJSON(data), fastDef.ValidateJSON(data); !slices.Equal(got, want) {
					t.Errorf("%s: findings without the fast path %v, with it %v", file, got, want)
				}
			}
		})
	}
}
