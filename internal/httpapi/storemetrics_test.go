package httpapi

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/store/sqlite"
)

// TestInstrumentTimesEveryMethod calls every method of domain.Store through the
// wrapper (with zero arguments: errors are fine, only the timing matters) and
// checks that each is counted under its own name, so a copy-paste slip in the
// hand-written delegation shows.
func TestInstrumentTimesEveryMethod(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	wrapped := Instrument(st, reg)
	// A second wrapper on the same registry shares the histogram.
	again := Instrument(st, reg)

	storeType := reflect.TypeFor[domain.Store]()
	v := reflect.ValueOf(wrapped)
	ctxType := reflect.TypeFor[context.Context]()
	var names []string
	for i := 0; i < storeType.NumMethod(); i++ {
		m := storeType.Method(i)
		if m.Name == "Close" {
			continue // last, below
		}
		names = append(names, m.Name)
		args := make([]reflect.Value, m.Type.NumIn())
		for j := range args {
			in := m.Type.In(j)
			if in == ctxType {
				args[j] = reflect.ValueOf(context.Background())
			} else {
				args[j] = reflect.Zero(in)
			}
		}
		v.MethodByName(m.Name).Call(args)
	}
	_ = again.Ping(context.Background())
	if err := wrapped.Close(); err != nil {
		t.Fatal(err)
	}
	names = append(names, "Close")

	counts := map[string]uint64{}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
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
	if len(counts) != len(names) {
		t.Errorf("%d op series, want %d (one per method): %v", len(counts), len(names), counts)
	}
	for _, name := range names {
		want := uint64(1)
		if name == "Ping" {
			want = 2
		}
		if counts[name] != want {
			t.Errorf("op %q counted %d times, want %d", name, counts[name], want)
		}
	}
}
