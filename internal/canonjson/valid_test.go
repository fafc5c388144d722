package canonjson

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestValidMatchesJSONValid: Valid agrees with json.Valid on every seed but
// the one nested deeper than MaxDepth, which it refuses.
func TestValidMatchesJSONValid(t *testing.T) {
	for _, s := range validSeeds {
		b := []byte(s)
		want := json.Valid(b) && !strings.HasPrefix(s, strings.Repeat("[", MaxDepth+1))
		if got := Valid(b); got != want {
			t.Errorf("Valid(%q) = %v, want %v", s, got, want)
		}
	}
}

var validSeeds = []string{
	``, ` `, `null`, `nul`, `nulll`, `true`, `false`, `tru`, `0`, `-0`, `01`, `-`, `1.`, `1.5`, `.5`, `1e5`, `1E+5`, `1e-05`, `1e`, `1e+`,
	`-1.25e-3`, `"a"`, `"\u00e9"`, `"\u00g9"`, `"\u00e"`, `"\x"`, "\"\x1f\"", "\"\x7f\xff\"", `"\"`, `"`, `{}`, `{ }`, `{"a":1}`, `{"a" : 1 , "b":[]}`,
	`{"a":1,}`, `{,}`, `{"a"}`, `{1:2}`, `[]`, `[1,]`, `[,1]`, `[1 2]`, `[[[]]]`, ` [ 1 , 2 ] `, "\t\n\r[]\r\n", `[] x`, `{}}`, `{"a":[}`,
	`{"`, `{"a`, `{"a":1,"b`, `{"a":1 "b":2}`, `{"a" 1}`, `[1}`, `{"a":1]`, `"\/\b\f\n\r\t\\\""`, `[1,2,{"x":[true,false,null]}]`, `0x1`, `+1`, `NaN`, `[-]`, `["a",-01]`,
	strings.Repeat("[", 300) + strings.Repeat("]", 300), strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1),
}

func BenchmarkValid(b *testing.B) {
	data := []byte(`{"consent":true,"interview_start":"2024-05-03T10:17:10+03:00","interview_location":{"latitude":-1.29870,"longitude":36.79430,"accuracy":4.2},"respondent":{"age":35,"gender":"other","community":"Langas","village":"Laini Saba 17","role":"women_group_member"},"feeling_safe":{"day":3,"night":2},"main_threats":["land_disputes","police_abuse","youth_gangs"],"trust":{"police":3,"chiefs":1,"community_watch":4,"ngos":2},"incidents":[{"date":"2024-02-03","type":"armed_violence","reported_to":"nobody","location":{"latitude":-1.29880,"longitude":36.79860}}],"priorities":["street_lighting","gbv_services"],"comments":"Lights near the water point, household 17."}`)
	for b.Loop() {
		if !Valid(data) {
			b.Fatal("invalid")
		}
	}
	b.SetBytes(int64(len(data)))
}
