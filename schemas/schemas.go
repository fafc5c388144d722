// Package schemas holds the JSON documents that describe fieldsync forms: the
// meta-schema every uploaded form definition must satisfy, and example form
// definitions of community security programmes. They are embedded in the binary so
// the server never has to fetch a schema (see internal/forms).
package schemas

import (
	"embed"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// files holds the meta-schema and the example forms. The sample records under
// examples/testdata are deliberately not embedded: only tests read them.
//
//go:embed form-definition.schema.json examples/*.json
var files embed.FS

// FormDefinitionFile is the name of the meta-schema inside FS.
const FormDefinitionFile = "form-definition.schema.json"

// FormDefinition returns the meta-schema of a form definition (JSON Schema draft
// 2020-12). It returns a copy, so callers may keep or change it.
func FormDefinition() []byte {
	b, err := files.ReadFile(FormDefinitionFile)
	if err != nil {
		// The file is embedded at build time; failing to read it is a broken build.
		panic("schemas: " + err.Error())
	}
	return b // embed.FS.ReadFile returns a fresh copy
}

// FS returns the embedded files: FormDefinitionFile and examples/<name>.json.
func FS() fs.FS { return files }

// ExampleNames returns the names of the example form definitions (without the
// directory and the .json suffix), sorted.
func ExampleNames() []string {
	entries, err := files.ReadDir("examples")
	if err != nil {
		panic("schemas: " + err.Error())
	}
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".json"); ok && !e.IsDir() {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// Example returns the example form definition with the given name (see
// ExampleNames), or an error wrapping fs.ErrNotExist.
func Example(name string) ([]byte, error) {
	return files.ReadFile(path.Join("examples", path.Base(name)+".json"))
}
