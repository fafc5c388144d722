package records_test

import (
	"errors"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/records"
)

// TestRecordCursorCarriesOrder: a listing cursor keeps its position and the
// order it was handed out for, so the two orders' cursors differ for the same
// position; a cursor of the listing before it had an order ("r1") reads as
// oldest first.
func TestRecordCursorCarriesOrder(t *testing.T) {
	pos := domain.RecordCursor{CreatedAt: time.Date(2026, 3, 1, 8, 0, 0, 123e6, time.UTC), ID: "3f0c5c1e-0000-4000-8000-000000000011"}
	asc, desc := records.EncodeRecordCursor(pos, false), records.EncodeRecordCursor(pos, true)
	if asc == desc {
		t.Fatalf("both orders hand out %q", asc)
	}
	for _, tc := range []struct {
		cursor string
		desc   bool
	}{{asc, false}, {desc, true},
		// Handed out by the listing before it had an order.
		{"cjEAAAGcqGlQezNmMGM1YzFlLTAwMDAtNDAwMC04MDAwLTAwMDAwMDAwMDAxMQ", false}} {
		got, d, err := records.DecodeRecordCursor(tc.cursor)
		if err != nil || got != pos || d != tc.desc {
			t.Errorf("%q: %+v, descending %v, %v; want %+v, %v", tc.cursor, got, d, err, pos, tc.desc)
		}
	}
}

func TestParseOrder(t *testing.T) {
	for in, want := range map[string]bool{"": false, "asc": false, "desc": true} {
		if got, err := records.ParseOrder(in); err != nil || got != want {
			t.Errorf("%q: %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"DESC", "newest", "asc,desc", " desc"} {
		_, err := records.ParseOrder(in)
		var e *domain.Error
		if !errors.As(err, &e) || e.Kind != domain.KindBadRequest || e.Code != "invalid_order" {
			t.Errorf("%q: %v, want a 400 invalid_order", in, err)
		}
	}
}

// FuzzDecodeRecordCursor: whatever a client sends as a listing cursor is
// either a position and order the server could have handed out (encoding it
// again gives a cursor that decodes the same) or a 400 invalid_cursor; never
// a panic or another kind of error.
func FuzzDecodeRecordCursor(f *testing.F) {
	pos := domain.RecordCursor{CreatedAt: time.UnixMilli(1772352000123).UTC(), ID: "a"}
	for _, s := range []string{"", records.EncodeRecordCursor(pos, false), records.EncodeRecordCursor(pos, true),
		"r1", "d1", "cjE", "ZDE", "x1AAAAAAAAAAAGE", "not a cursor", "%%%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, desc, err := records.DecodeRecordCursor(s)
		if err != nil {
			var e *domain.Error
			if !errors.As(err, &e) || e.Kind != domain.KindBadRequest || e.Code != "invalid_cursor" {
				t.Fatalf("%q: %v, want a 400 invalid_cursor", s, err)
			}
			return
		}
		if s == "" {
			return
		}
		c2, desc2, err := records.DecodeRecordCursor(records.EncodeRecordCursor(c, desc))
		if err != nil || c2 != c || desc2 != desc {
			t.Fatalf("%q: %+v (descending %v) does not survive encoding: %+v, %v, %v", s, c, desc, c2, desc2, err)
		}
	})
}
