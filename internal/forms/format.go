package forms

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// FormatGeopoint is the format name that marks a location (protocol.md §2).
const FormatGeopoint = "geopoint"

// KnownFormats returns the format names a form schema may use, sorted: what
// jsonschema v6 implements, plus geopoint. Formats are asserted (a wrong date is
// a finding, not an annotation), so a name the server does not know is refused
// at upload: a typo such as "date_time" would otherwise turn a check off without
// anyone noticing.
func KnownFormats() []string {
	return []string{
		"date", "date-time", "duration", "email", FormatGeopoint, "hostname",
		"ipv4", "ipv6", "iri", "iri-reference", "json-pointer", "period", "regex",
		"relative-json-pointer", "semver", "time", "uri", "uri-reference",
		"uri-template", "uuid",
	}
}

func isKnownFormat(name string) bool { return slices.Contains(KnownFormats(), name) }

// geopointFormat checks a location: an object with numeric latitude in [-90, 90]
// and longitude in [-180, 180], optional numeric altitude and accuracy >= 0, and
// nothing else. null passes, so that a schema can allow "no GPS fix" with
// "type": ["object", "null"]; whether null is allowed stays the job of "type".
// Any other non-object fails (unlike the standard formats, which ignore values of
// other types), because a geopoint property holding a string is always a mistake
// of the collector app. Messages name the member, never its value: answers are
// sensitive and findings end up in logs.
func geopointFormat() *jsonschema.Format {
	return &jsonschema.Format{Name: FormatGeopoint, Validate: validateGeopoint}
}

func validateGeopoint(v any) error {
	if v == nil {
		return nil
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return errors.New("must be an object with latitude and longitude")
	}
	var problems []string
	check := func(name string, required bool, ok func(float64) bool, want string) {
		raw, present := obj[name]
		if !present {
			if required {
				problems = append(problems, name+" is missing")
			}
			return
		}
		f, isNum := toFloat(raw)
		if !isNum {
			problems = append(problems, name+" must be a number")
			return
		}
		if !ok(f) {
			problems = append(problems, name+" must be "+want)
		}
	}
	check("latitude", true, func(f float64) bool { return f >= -90 && f <= 90 }, "between -90 and 90")
	check("longitude", true, func(f float64) bool { return f >= -180 && f <= 180 }, "between -180 and 180")
	check("altitude", false, func(float64) bool { return true }, "")
	check("accuracy", false, func(f float64) bool { return f >= 0 }, ">= 0")
	var extra []string
	for k := range obj {
		switch k {
		case "latitude", "longitude", "altitude", "accuracy":
		default:
			extra = append(extra, strconv.Quote(k))
		}
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		problems = append(problems, fmt.Sprintf("unexpected member %s (allowed: latitude, longitude, altitude, accuracy)", strings.Join(extra, ", ")))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// toFloat converts a decoded JSON number to float64.
func toFloat(v any) (float64, bool) {
	var f float64
	switch n := v.(type) {
	case json.Number:
		var err error
		if f, err = strconv.ParseFloat(string(n), 64); err != nil {
			return 0, false
		}
	case float64:
		f = n
	case float32:
		f = float64(n)
	case int:
		f = float64(n)
	case int64:
		f = float64(n)
	default:
		return 0, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}
