package syncer

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// consentRules is a form's schema reduced to its rules that tie fields
// together: no age without consent, cigarettes only for a smoker. Each rule
// can hold on both sides of a merge and fail on the merged data.
func consentRules(data json.RawMessage) []domain.Finding {
	var v map[string]any
	if err := json.Unmarshal(data, &v); err != nil {
		return []domain.Finding{{Keyword: "json", Message: err.Error()}}
	}
	var f []domain.Finding
	if _, age := v["age"]; age && v["consent"] == false {
		f = append(f, domain.Finding{Path: "/age", Keyword: "not", Message: "no age without consent"})
	}
	if _, cig := v["cigarettes"]; cig && v["smoker"] != true {
		f = append(f, domain.Finding{Path: "/smoker", Keyword: "const", Message: "cigarettes only for a smoker"})
	}
	return f
}

// TestResolveValidate: an outcome whose data the form refuses is not applied,
// whatever the policy made of it; valid outcomes are as without Validate.
func TestResolveValidate(t *testing.T) {
	base := `{"consent":true}`
	baseRev := mustRev(t, "", base, false)
	cur := Version{Data: json.RawMessage(`{"consent":false}`), ClientModifiedAt: t0, DeviceID: "a", By: "ua"}
	cur.Rev = mustRev(t, baseRev, string(cur.Data), false)
	for _, tc := range []struct {
		name, policy, incoming string
		at                     time.Duration
		refused                bool
	}{
		{"merge makes age without consent", domain.PolicyMerge, `{"age":30,"consent":true}`, time.Minute, true},
		{"merge, incoming loses the clash", domain.PolicyMerge, `{"age":30,"consent":true}`, -time.Minute, true},
		{"merge of fields that fit", domain.PolicyMerge, `{"consent":true,"smoker":false}`, time.Minute, false},
		{"last write wins: the incoming whole record", domain.PolicyLastWriteWins, `{"age":30,"consent":true}`, time.Minute, false},
		{"last write wins: incoming loses", domain.PolicyLastWriteWins, `{"age":30,"consent":true}`, -time.Minute, false},
		{"reject", domain.PolicyReject, `{"age":30,"consent":true}`, time.Minute, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := ResolveInput{
				Policy:   tc.policy,
				Base:     Version{Rev: baseRev, Data: json.RawMessage(base)},
				Current:  cur,
				Incoming: Version{Data: json.RawMessage(tc.incoming), ClientModifiedAt: t0.Add(tc.at), DeviceID: "b", By: "ub"},
			}
			plain, err := Resolve(in)
			if err != nil {
				t.Fatal(err)
			}
			in.Validate = consentRules
			out, err := Resolve(in)
			if err != nil {
				t.Fatal(err)
			}
			checkResolveOutput(t, in, out)
			if !tc.refused {
				if !reflect.DeepEqual(out, plain) {
					t.Fatalf("a valid outcome changed with Validate:\n%s\nwithout:\n%s", dump(out), dump(plain))
				}
				return
			}
			if len(consentRules(plain.Data)) == 0 {
				t.Fatalf("the case does not merge into invalid data: %s", plain.Data)
			}
			wantRefused(t, in, out)
		})
	}
}

// wantRefused checks the outcome of a refused merge: the reject policy's,
// with findings.
func wantRefused(t *testing.T, in ResolveInput, out ResolveOutput) {
	t.Helper()
	curData := mustCanonical(t, in.Current.Data)
	if out.Status != StatusConflict || out.Applied || out.Rev != in.Current.Rev || !bytes.Equal(out.Data, curData) || out.Deleted != in.Current.Deleted {
		t.Fatalf("refused merge: %s", dump(out))
	}
	if len(out.Findings) == 0 {
		t.Fatal("refused merge without findings")
	}
	if len(out.Conflicts) != 1 || out.Conflicts[0].Path != "" || len(out.Conflicts[0].Values) != 2 {
		t.Fatalf("refused merge: conflicts %+v, want one whole-record entry of the standing and the refused content", out.Conflicts)
	}
	if s := out.Conflicts[0].Values[0]; s.Rev != in.Current.Rev || !bytes.Equal(s.Value, curData) {
		t.Fatalf("refused merge: the entry's first value %+v is not the current content, which stands", s)
	}
	v := out.Conflicts[0].Values[1]
	if v.Rev != out.IncomingRev || !bytes.Equal(v.Value, mustCanonical(t, in.Incoming.Data)) || v.Deleted != in.Incoming.Deleted ||
		v.DeviceID != in.Incoming.DeviceID || !v.ClientModifiedAt.Equal(in.Incoming.ClientModifiedAt) {
		t.Fatalf("refused merge: the entry holds %+v, not the incoming edit", v)
	}
}

// consentData makes a document of consentRules' fields from fuzz bytes, each
// field absent or one of a few values: few enough that edits of one base
// touch the same fields often.
func consentData(g *gen) map[string]any {
	m := map[string]any{}
	pick := func(key string, vals ...any) {
		if i := g.next() % (len(vals) + 1); i < len(vals) {
			m[key] = vals[i]
		}
	}
	pick("consent", true, false, true)
	pick("age", 17, 30, 64)
	pick("smoker", true, false)
	pick("cigarettes", 5, 20)
	pick("note", "a", "b")
	return m
}

// validConsentData is consentData retried until the rules accept it: the
// devices only ever push valid edits.
func validConsentData(t *testing.T, g *gen) json.RawMessage {
	for range 50 {
		d := marshal(t, consentData(g))
		if len(consentRules(d)) == 0 {
			return d
		}
	}
	return json.RawMessage(`{"consent":true}`)
}

// FuzzResolveValidate: for valid base, current and incoming data under any
// policy, with or without tombstones and a known base, Resolve with Validate
// never applies data the rules refuse; when it refuses, the outcome is the
// reject policy's with findings; and an outcome the rules accept is the one
// Resolve makes without Validate.
func FuzzResolveValidate(f *testing.F) {
	f.Add([]byte{}, uint8(0), int8(0))
	f.Add([]byte("\x01\x00\x02\x01\x00\x00\x00\x00\x03\x01\x02\x00"), uint8(0), int8(1))
	f.Add([]byte("consent and age on two tablets"), uint8(0x21), int8(-3))
	f.Fuzz(func(t *testing.T, seed []byte, flags uint8, minutes int8) {
		g := &gen{b: seed}
		policy := []string{domain.PolicyMerge, domain.PolicyReject, domain.PolicyLastWriteWins}[int(flags&3)%3]
		base := validConsentData(t, g)
		baseRev := mustRev(t, "", string(base), flags&4 != 0)
		cur := Version{Data: validConsentData(t, g), Deleted: flags&8 != 0, ClientModifiedAt: t0, DeviceID: "x", By: "ux"}
		cur.Rev = mustRev(t, baseRev, string(cur.Data), cur.Deleted)
		inc := Version{Data: validConsentData(t, g), Deleted: flags&16 != 0, ClientModifiedAt: t0.Add(time.Duration(minutes) * time.Minute), DeviceID: "y", By: "uy"}
		in := ResolveInput{Policy: policy, Base: Version{Rev: baseRev, Data: base, Deleted: flags&4 != 0}, BaseMissing: flags&32 != 0,
			Current: cur, Incoming: inc}
		plain, err := Resolve(in)
		if err != nil {
			t.Fatalf("Resolve(%+v): %v", in, err)
		}
		in.Validate = consentRules
		out, err := Resolve(in)
		if err != nil {
			t.Fatalf("Resolve(%+v) with Validate: %v", in, err)
		}
		checkResolveOutput(t, in, out)
		if out.Applied && !out.Deleted {
			if f := consentRules(out.Data); len(f) > 0 {
				t.Fatalf("applied %s, which the rules refuse: %+v", out.Data, f)
			}
		}
		if plain.Applied && !plain.Deleted && len(consentRules(plain.Data)) > 0 {
			wantRefused(t, in, out)
			if policy != domain.PolicyMerge {
				t.Fatalf("%s applied data other than the valid incoming edit: %s", policy, plain.Data)
			}
			return
		}
		if !reflect.DeepEqual(out, plain) {
			t.Fatalf("a valid outcome changed with Validate:\n%s\nwithout:\n%s", dump(out), dump(plain))
		}
	})
}
