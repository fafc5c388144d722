package schemas

import (
	"encoding/json"
	"errors"
	"io/fs"
	"slices"
	"testing"
)

func TestFiles(t *testing.T) {
	meta := FormDefinition()
	var m map[string]any
	if err := json.Unmarshal(meta, &m); err != nil {
		t.Fatalf("meta-schema: %v", err)
	}
	if m["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("meta-schema $schema %v", m["$schema"])
	}
	meta[0] = 'x' // a copy: changing it changes nothing
	if FormDefinition()[0] != '{' {
		t.Error("FormDefinition returned shared bytes")
	}
	names := ExampleNames()
	if !slices.Equal(names, []string{"action-plan-followup", "incident-report", "perception-survey"}) {
		t.Fatalf("examples %v", names)
	}
	for _, n := range names {
		b, err := Example(n)
		if err != nil || !json.Valid(b) {
			t.Errorf("%s: %v", n, err)
		}
	}
	if _, err := Example("../form-definition.schema"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("path escape: %v", err)
	}
	if _, err := fs.Stat(FS(), "examples/testdata"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("sample records are embedded: %v", err)
	}
}
