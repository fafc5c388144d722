package httpapi

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/store/mongo"
	"github.com/fieldsync/fieldsync/internal/store/mongo/mongotest"
	"github.com/fieldsync/fieldsync/internal/store/sqlite"
)

// TestMain stops the embedded MongoDB-protocol server that the MongoDB tests
// start on first use.
func TestMain(m *testing.M) { os.Exit(mongotest.RunMain(m)) }

// storeOps returns the sample count of every op series of the store histogram.
func storeOps(t *testing.T, reg *prometheus.Registry) map[string]uint64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	for _, f := range families {
		if f.GetName() != "fieldsync_store_operation_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "op" {
					counts[l.GetValue()] = m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return counts
}

// observedStore makes the store metrics on a fresh registry (twice: a second
// call on one registry shares the histogram) and opens a store that reports to
// both observers.
func observedStore(t *testing.T, open func(observe func(string, time.Duration)) domain.Store) (domain.Store, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	first, err := StoreMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	second, err := StoreMetrics(reg)
	if err != nil {
		t.Fatalf("second StoreMetrics on one registry: %v", err)
	}
	var n atomic.Int64
	st := open(func(op string, took time.Duration) {
		if n.Add(1)%2 == 0 {
			first(op, took)
		} else {
			second(op, took)
		}
	})
	return st, reg
}

// TestStoreMetricsSQLite calls every method of domain.Store on a SQLite store
// (zero arguments: errors are fine, only the timing matters) and checks that
// each transaction is counted under the name of the method that ran it, with
// exact counts for the calls that succeed.
func TestStoreMetricsSQLite(t *testing.T) {
	ctx := context.Background()
	st, reg := observedStore(t, func(observe func(string, time.Duration)) domain.Store {
		st, err := sqlite.OpenConfig(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "m.db"), Observe: observe})
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
	defer st.Close()

	storeType := reflect.TypeFor[domain.Store]()
	var methods []string
	for i := range storeType.NumMethod() {
		m := storeType.Method(i)
		methods = append(methods, m.Name)
		if m.Name == "Close" {
			continue
		}
		args := make([]reflect.Value, m.Type.NumIn())
		for j := range args {
			if in := m.Type.In(j); in == reflect.TypeFor[context.Context]() {
				args[j] = reflect.ValueOf(ctx)
			} else {
				args[j] = reflect.Zero(in)
			}
		}
		reflect.ValueOf(st).MethodByName(m.Name).Call(args)
	}
	// Real calls, counted once each besides the zero-argument ones.
	if err := st.CreateUser(ctx, domain.User{Username: "ana", Admin: true, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetUser(ctx, "ana"); err != nil {
		t.Fatal(err)
	}

	counts := storeOps(t, reg)
	for op := range counts {
		if op != "migrate" && !slices.Contains(methods, op) {
			t.Errorf("op %q is not a method of domain.Store (counts: %v)", op, counts)
		}
	}
	for op, want := range map[string]uint64{"migrate": 1, "CreateUser": 2, "GetUser": 2, "ListUsers": 1, "Changes": 1, "Ping": 1} {
		if counts[op] != want {
			t.Errorf("op %q counted %d times, want %d (counts: %v)", op, counts[op], want, counts)
		}
	}
	// Most methods run a transaction even on zero arguments; a change that lost
	// the timing of many (say, a new transaction helper) shows here.
	if len(counts) < len(methods)*3/4 {
		t.Errorf("only %d ops counted for %d methods: %v", len(counts), len(methods), counts)
	}
}

// TestStoreMetricsMongo checks that a MongoDB store reports each command by
// name and collection.
func TestStoreMetricsMongo(t *testing.T) {
	ctx := context.Background()
	st, reg := observedStore(t, func(observe func(string, time.Duration)) domain.Store {
		cfg := mongotest.Config(t)
		cfg.Observe = observe
		st, err := mongo.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
	defer st.Close()
	before := storeOps(t, reg)
	if err := st.CreateUser(ctx, domain.User{Username: "ana", Admin: true, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetUser(ctx, "ana"); err != nil {
		t.Fatal(err)
	}
	if err := st.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	after := storeOps(t, reg)
	for _, op := range []string{"insert users", "find users", "ping"} {
		if after[op] <= before[op] {
			t.Errorf("op %q counted %d times, %d before the call (counts: %v)", op, after[op], before[op], after)
		}
	}
	if after["createIndexes records"] == 0 {
		t.Errorf("Open's index creation not counted: %v", after)
	}
	for op := range after {
		if name, _, _ := strings.Cut(op, " "); name == "" || strings.Contains(op, "  ") {
			t.Errorf("malformed op %q", op)
		}
	}
}
