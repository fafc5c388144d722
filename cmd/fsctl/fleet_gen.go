package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"
)

// fleetGenForm is the example form (schemas/examples) whose records the
// fleet makes when no --sample is given; fsctl load --setup publishes it.
const fleetGenForm = "perception-survey"

// The answers the generator draws from, as the perception survey's schema
// allows them.
var (
	genGenders     = []string{"female", "male", "other", "prefer_not_to_say"}
	genRoles       = []string{"resident", "community_leader", "traditional_chief", "religious_leader", "youth_representative", "women_group_member", "community_watch_member", "local_official", "trader", "other"}
	genThreats     = []string{"theft", "armed_violence", "gbv", "land_disputes", "domestic_violence", "police_abuse", "youth_gangs", "cattle_raiding", "intercommunal_conflict", "abduction"}
	genReported    = []string{"nobody", "police", "chief", "community_watch", "ngo", "health_facility", "family", "other"}
	genPriorities  = []string{"more_police_patrols", "street_lighting", "community_watch", "dialogue_police_community", "youth_employment", "gbv_services", "land_dispute_mediation", "alcohol_drug_control"}
	genCommunities = []string{"Kibera", "Mathare", "Langas", "Huruma", "Majengo", "Kawangware", "Korogocho", "Mukuru", "Obunga", "Manyatta"}
	genVillages    = []string{"Laini Saba", "Gatwekera", "Soweto East", "Kianda", "Silanga", "Mashimoni", "Lindi", "Makina"}
	genComments    = []string{
		"Lights near the water point would help most; women avoid the path after dark.",
		"The community watch patrols only on market days, and the youth say they are not paid.",
		"Police come late when called and ask for money to write a statement.",
		"Land disputes between the two clans have grown since the new road was surveyed.",
		"Boda-boda riders are robbed on the road to the river at night.",
		"The chief holds a baraza every month and people report incidents there.",
	}
)

// genSurvey makes the answers of one perception-survey interview, valid
// against the form's schema and about 1 KB of JSON, like a real household
// interview with a few incidents. tag makes the record's text its own, so
// that two records never hold the same data.
func genSurvey(rng *rand.Rand, tag string, at time.Time) json.RawMessage {
	lat, lon := -1.3+rng.Float64()*0.2, 36.7+rng.Float64()*0.2
	threats := pickSome(rng, genThreats, 1+rng.IntN(4))
	incidents := make([]map[string]any, 1+rng.IntN(3))
	for i := range incidents {
		incidents[i] = map[string]any{
			"date":        at.AddDate(0, -rng.IntN(12), -rng.IntN(28)).Format("2006-01-02"),
			"type":        threats[rng.IntN(len(threats))],
			"reported_to": genReported[rng.IntN(len(genReported))],
			"location":    map[string]any{"latitude": round4(lat + rng.Float64()*0.01), "longitude": round4(lon + rng.Float64()*0.01)},
		}
	}
	d := map[string]any{
		"consent":            true,
		"interview_start":    at.Format(time.RFC3339),
		"interview_location": map[string]any{"latitude": round4(lat), "longitude": round4(lon), "altitude": 1600 + rng.IntN(200), "accuracy": 3 + rng.IntN(10)},
		"respondent": map[string]any{
			"age": 18 + rng.IntN(70), "gender": genGenders[rng.IntN(len(genGenders))],
			"community": genCommunities[rng.IntN(len(genCommunities))], "village": genVillages[rng.IntN(len(genVillages))],
			"role": genRoles[rng.IntN(len(genRoles))],
		},
		"feeling_safe": map[string]any{"day": 1 + rng.IntN(5), "night": 1 + rng.IntN(5)},
		"main_threats": threats,
		"trust":        map[string]any{"police": 1 + rng.IntN(5), "chiefs": 1 + rng.IntN(5), "community_watch": 1 + rng.IntN(5), "ngos": 1 + rng.IntN(5)},
		"incidents":    incidents,
		"priorities":   pickSome(rng, genPriorities, 1+rng.IntN(3)),
		"comments":     genComments[rng.IntN(len(genComments))] + " (" + tag + ")",
	}
	b, err := json.Marshal(d)
	if err != nil {
		panic(err) // maps of strings and numbers always encode
	}
	return b
}

// genEditPaths are the answers an edit changes: a field a device and an
// analyst both change in one record's life makes a clash (a conflict), two
// different ones a merge.
var genEditPaths = [][2]string{{"feeling_safe", "night"}, {"feeling_safe", "day"}, {"trust", "police"}, {"trust", "community_watch"}}

// genEdit changes one or two of the survey's answers (genEditPaths), and
// the comment when comment is set, as an enumerator who goes back to an
// interview does (an analyst's correction leaves the comment: so a tablet's
// and an analyst's edits of one record clash only when they change the same
// answer, and merge otherwise). Data that is
// not an object of objects there (a --sample of another form) gets only a
// "fleet_edit" member; a --sample form must allow it, or the edits end as
// rejected items.
func genEdit(rng *rand.Rand, data json.RawMessage, who string, comment bool) (json.RawMessage, error) {
	var d map[string]any
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, err
	}
	changed := false
	for range 1 + rng.IntN(2) {
		p := genEditPaths[rng.IntN(len(genEditPaths))]
		if m, ok := d[p[0]].(map[string]any); ok {
			if _, ok := m[p[1]]; ok {
				m[p[1]] = 1 + rng.IntN(5)
				changed = true
			}
		}
	}
	if _, ok := d["comments"].(string); ok && changed && comment {
		d["comments"] = genComments[rng.IntN(len(genComments))] + " (edited by " + who + ", " + strconv.Itoa(rng.IntN(1e6)) + ")"
	}
	if !changed {
		d["fleet_edit"] = fmt.Sprintf("%s %d", who, rng.IntN(1e6))
	}
	return json.Marshal(d)
}

// pickSome returns n distinct values of from, in a random order.
func pickSome(rng *rand.Rand, from []string, n int) []string {
	idx := rng.Perm(len(from))[:min(n, len(from))]
	out := make([]string, len(idx))
	for i, k := range idx {
		out[i] = from[k]
	}
	return out
}

func round4(f float64) float64 { return float64(int(f*1e4)) / 1e4 }
