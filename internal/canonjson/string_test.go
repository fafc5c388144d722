package canonjson

import (
	"encoding/json"
	"testing"
)

// TestAppendStringDecodesAsWritten: every string, invalid UTF-8 included,
// decodes to what encoding/json makes of it, with JCS's escaping.
func TestAppendStringDecodesAsWritten(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{"plain", `"plain"`},
		{"\"\\/", `"\"\\/"`},
		{"<>&", `"<>&"`},
		{"\u2028\u2029", "\"\u2028\u2029\""},
		{"\x00\x07\x08\x09\x0a\x0c\x0d\x1b\x1f\x7f", `"\u0000\u0007\b\t\n\f\r\u001b\u001f` + "\x7f\""},
		{"é日本😀", `"é日本😀"`},
		{"\xff", "\"\ufffd\""},
		{"a\xc3", "\"a\ufffd\""},
		{"\xed\xa0\x80", "\"\ufffd\ufffd\ufffd\""},
		{"\ufffd", "\"\ufffd\""},
	}
	for _, tc := range tests {
		got := AppendString(nil, tc.in)
		if string(got) != tc.want {
			t.Errorf("AppendString(%q) = %s, want %s", tc.in, got, tc.want)
		}
		if b := AppendString(nil, []byte(tc.in)); string(b) != string(got) {
			t.Errorf("AppendString([]byte %q) = %s, string %s", tc.in, b, got)
		}
		var back, viaStd string
		std, _ := json.Marshal(tc.in)
		if err := json.Unmarshal(got, &back); err != nil || json.Unmarshal(std, &viaStd) != nil || back != viaStd {
			t.Errorf("%q decodes to %q, encoding/json's to %q (%v)", tc.in, back, viaStd, err)
		}
	}
	s := []byte("Kibera — Laini Saba, ñandú \"x\"\n")
	if n := testing.AllocsPerRun(100, func() { AppendString(make([]byte, 0, 64), s) }); n > 1 {
		t.Errorf("%v allocations, want the one of the buffer", n)
	}
}
