package records_test

import (
	"errors"
	"math"
	"testing"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/records"
)

func TestCursorRoundTrip(t *testing.T) {
	for _, seq := range []int64{0, 1, 250, 1 << 40, math.MaxInt64} {
		got, err := records.DecodeCursor(records.EncodeCursor(seq))
		if err != nil || got != seq {
			t.Errorf("%d: decoded %d, %v", seq, got, err)
		}
	}
	if got, err := records.DecodeCursor(""); err != nil || got != 0 {
		t.Errorf(`"" is the start of the feed: %d, %v`, got, err)
	}
}

// FuzzDecodeCursor: whatever a client sends as a cursor is either a position
// the server could have handed out (0 or more, and encoding it again gives a
// cursor that decodes to the same position) or a 400 invalid_cursor; never a
// panic, a negative position or another kind of error.
func FuzzDecodeCursor(f *testing.F) {
	for _, s := range []string{"", records.EncodeCursor(0), records.EncodeCursor(42), records.EncodeCursor(math.MaxInt64),
		"c1", "YzE", "YzEAAAAAAAAAKg", "YzEAAAAAAAAAKg==", "YzGAAAAAAAAAAA", "not a cursor", "%%%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		seq, err := records.DecodeCursor(s)
		if err != nil {
			var e *domain.Error
			if !errors.As(err, &e) || e.Kind != domain.KindBadRequest || e.Code != "invalid_cursor" {
				t.Fatalf("%q: %v, want a 400 invalid_cursor", s, err)
			}
			return
		}
		if seq < 0 {
			t.Fatalf("%q decodes to the negative position %d", s, seq)
		}
		again, err := records.DecodeCursor(records.EncodeCursor(seq))
		if err != nil || again != seq {
			t.Fatalf("%q: position %d does not survive encoding: %d, %v", s, seq, again, err)
		}
	})
}
