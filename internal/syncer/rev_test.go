package syncer

import (
	"errors"
	"strings"
	"testing"
)

func mustRev(tb testing.TB, parent, data string, deleted bool) string {
	tb.Helper()
	rev, err := NewRev(parent, []byte(data), deleted)
	if err != nil {
		tb.Fatalf("NewRev(%q, %q, %v): %v", parent, data, deleted, err)
	}
	return rev
}

// TestNewRevGolden pins the framing: a change here changes every revision id and
// breaks the determinism clients and other instances rely on. The values were
// computed independently (Python hashlib) from the framing NewRev documents.
func TestNewRevGolden(t *testing.T) {
	tests := []struct {
		name, parent, data string
		deleted            bool
		want               string
	}{
		{"first revision", "", `{"a":1}`, false, "1-c29419dea024567667d1f6c46ee75b1d"},
		{"child", "1-c29419dea024567667d1f6c46ee75b1d", `{"a":2}`, false, "2-49245bd0b695607f085b83709ddf615a"},
		{"tombstone", "1-c29419dea024567667d1f6c46ee75b1d", `null`, true, "2-e2f4905de40711904cb2555d10db0bc2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := mustRev(t, tc.parent, tc.data, tc.deleted); got != tc.want {
				t.Errorf("NewRev = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestNewRevCanonical: hashing the canonical bytes directly gives NewRev's
// revision for every spelling of the data.
func TestNewRevCanonical(t *testing.T) {
	parent := mustRev(t, "", `{}`, false)
	for _, data := range []string{`{"b":[1,2],"a":1}`, "{ \"a\" :\n 1.50 }", `{"s":"\u00e9\/"}`, ``, `null`} {
		for _, del := range []bool{false, true} {
			for _, p := range []string{"", parent} {
				canon, err := Canonical([]byte(data))
				if data == "" {
					canon, err = nil, nil
				}
				if err != nil {
					t.Fatal(err)
				}
				got, err := NewRevCanonical(p, canon, del)
				if err != nil {
					t.Fatal(err)
				}
				if want := mustRev(t, p, data, del); got != want {
					t.Errorf("%q parent %q deleted %v: NewRevCanonical %s, NewRev %s", data, p, del, got, want)
				}
			}
		}
	}
	if _, err := NewRevCanonical("garbage", []byte(`{}`), false); !errors.Is(err, ErrBadRev) {
		t.Errorf("bad parent: %v, want ErrBadRev", err)
	}
}

func TestNewRevDeterministic(t *testing.T) {
	tests := []struct {
		name string
		a, b string // the same data written two ways
	}{
		{"key order", `{"a":1,"b":[1,2]}`, `{"b":[1,2],"a":1}`},
		{"spacing", `{"a":1}`, "{ \"a\" :\n 1 }"},
		{"number spelling", `{"n":1.50,"m":1e2}`, `{"m":100,"n":1.5}`},
		{"escapes", `{"s":"é/"}`, `{"s":"\u00e9\/"}`},
		{"nested order", `{"r":{"age":3,"g":"f"}}`, `{"r":{"g":"f","age":3}}`},
		{"empty data is null", ``, `null`},
	}
	parent := mustRev(t, "", `{}`, false)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, del := range []bool{false, true} {
				for _, p := range []string{"", parent} {
					a, b := mustRev(t, p, tc.a, del), mustRev(t, p, tc.b, del)
					if a != b {
						t.Errorf("parent %q deleted %v: %q and %q give %s and %s", p, del, tc.a, tc.b, a, b)
					}
				}
			}
		})
	}
}

func TestNewRevGeneration(t *testing.T) {
	rev := ""
	for want := 1; want <= 5; want++ {
		rev = mustRev(t, rev, `{"n":1}`, false)
		gen, hash, err := ParseRev(rev)
		if err != nil {
			t.Fatal(err)
		}
		if gen != want || len(hash) != RevHashLen {
			t.Errorf("rev %q: generation %d, hash %q; want generation %d", rev, gen, hash, want)
		}
	}
	big := "999999999999999998-" + strings.Repeat("a", RevHashLen)
	if got := mustRev(t, big, `1`, false); !strings.HasPrefix(got, "999999999999999999-") {
		t.Errorf("child of %q is %q", big, got)
	}
	top := "999999999999999999-" + strings.Repeat("a", RevHashLen)
	if _, err := NewRev(top, []byte(`1`), false); !errors.Is(err, ErrBadRev) {
		t.Errorf("child of the largest generation: err %v, want ErrBadRev", err)
	}
}

// TestNewRevFraming checks that different (parent, data, deleted) never share a
// revision, in particular the combinations a naive concatenation would confuse.
func TestNewRevFraming(t *testing.T) {
	p1 := mustRev(t, "", `{"a":1}`, false)
	p2 := mustRev(t, "", `{"a":2}`, false)
	datas := []string{`null`, `{}`, `[]`, `""`, `0`, `false`, `true`, `"null"`, `"\u0000"`, `{"a":1}`, `{"a":2}`, `{"deleted":true}`, `"1"`, `1`}
	seen := map[string]string{}
	for _, parent := range []string{"", p1, p2} {
		for _, data := range datas {
			for _, del := range []bool{false, true} {
				rev := mustRev(t, parent, data, del)
				_, hash, err := ParseRev(rev)
				if err != nil {
					t.Fatal(err)
				}
				what := parent + " " + data + " " + map[bool]string{false: "live", true: "deleted"}[del]
				if prev, ok := seen[hash]; ok {
					t.Errorf("%s and %s share hash %s", prev, what, hash)
				}
				seen[hash] = what
			}
		}
	}
}

func TestNewRevErrors(t *testing.T) {
	tests := []struct {
		name, parent, data string
		want               error
	}{
		{"invalid data", "", `{"a":}`, ErrInvalidJSON},
		{"duplicate key", "", `{"a":1,"a":2}`, ErrDuplicateKey},
		{"bad parent", "abc", `{}`, ErrBadRev},
		{"parent with zero generation", "0-" + strings.Repeat("0", RevHashLen), `{}`, ErrBadRev},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rev, err := NewRev(tc.parent, []byte(tc.data), false)
			if !errors.Is(err, tc.want) {
				t.Errorf("NewRev = %q, %v; want %v", rev, err, tc.want)
			}
		})
	}
}

func TestParseRev(t *testing.T) {
	h := strings.Repeat("0123456789abcdef", 2)
	tests := []struct {
		name, rev string
		gen       int
		ok        bool
	}{
		{"first", "1-" + h, 1, true},
		{"large generation", "123456789012345678-" + h, 123456789012345678, true},
		{"empty", "", 0, false},
		{"no dash", "1" + h, 0, false},
		{"no generation", "-" + h, 0, false},
		{"zero generation", "0-" + h, 0, false},
		{"leading zero", "01-" + h, 0, false},
		{"plus sign", "+1-" + h, 0, false},
		{"negative", "-1-" + h, 0, false},
		{"letters in generation", "1a-" + h, 0, false},
		{"19 digits", "1234567890123456789-" + h, 0, false},
		{"short hash", "1-" + h[:RevHashLen-1], 0, false},
		{"long hash", "1-" + h + "0", 0, false},
		{"uppercase hash", "1-" + strings.ToUpper(h), 0, false},
		{"non-hex hash", "1-" + h[:RevHashLen-1] + "g", 0, false},
		{"second dash", "1-" + h[:RevHashLen-1] + "-", 0, false},
		{"full sha256", "1-" + h + h, 0, false},
		{"spaces", " 1-" + h, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gen, hash, err := ParseRev(tc.rev)
			if !tc.ok {
				if err == nil || !errors.Is(err, ErrBadRev) {
					t.Errorf("ParseRev(%q) = %d, %q, %v; want ErrBadRev", tc.rev, gen, hash, err)
				}
				return
			}
			if err != nil || gen != tc.gen || hash != h {
				t.Errorf("ParseRev(%q) = %d, %q, %v; want %d, %q", tc.rev, gen, hash, err, tc.gen, h)
			}
		})
	}
}

func TestCompareRevs(t *testing.T) {
	lo, hi := strings.Repeat("0", RevHashLen), "f"+strings.Repeat("0", RevHashLen-1)
	tests := []struct {
		name string
		a, b string
		want int
	}{
		{"larger hash wins over generation", "9-" + lo, "1-" + hi, -1},
		{"larger hash", "1-" + hi, "1-" + lo, 1},
		{"same", "3-" + hi, "3-" + hi, 0},
		{"same hash, generation decides", "2-" + hi, "3-" + hi, -1},
		{"hex digits compare as numbers", "1-" + "a" + lo[1:], "1-" + "9" + lo[1:], 1},
		{"malformed compares as text", "zzz", "1-" + hi, 1},
		{"two malformed", "a", "b", -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := CompareRevs(tc.a, tc.b); sign(got) != tc.want {
				t.Errorf("CompareRevs(%q, %q) = %d, want sign %d", tc.a, tc.b, got, tc.want)
			}
			if got := CompareRevs(tc.b, tc.a); sign(got) != -tc.want {
				t.Errorf("CompareRevs(%q, %q) = %d, want sign %d", tc.b, tc.a, got, -tc.want)
			}
		})
	}
}
