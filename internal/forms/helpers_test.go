package forms

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/schemas"
)

// samplesDir holds the sample records of the example forms.
const samplesDir = "../../schemas/examples/testdata"

func readExample(tb testing.TB, name string) []byte {
	tb.Helper()
	raw, err := schemas.Example(name)
	if err != nil {
		tb.Fatalf("example %s: %v", name, err)
	}
	return raw
}

func mustParseExample(tb testing.TB, name string) *Definition {
	tb.Helper()
	d, err := ParseDefinition(readExample(tb, name))
	if err != nil {
		tb.Fatalf("parse example %s: %v", name, describeErr(err))
	}
	return d
}

func mustParse(tb testing.TB, raw string) *Definition {
	tb.Helper()
	d, err := ParseDefinition([]byte(raw))
	if err != nil {
		tb.Fatalf("ParseDefinition: %v", describeErr(err))
	}
	return d
}

func readSample(tb testing.TB, form, file string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(samplesDir, form, file))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// describeErr renders an error with its findings, for failure messages.
func describeErr(err error) string {
	e, ok := domain.AsError(err)
	if !ok {
		return err.Error()
	}
	s := err.Error()
	for _, f := range e.Findings {
		s += "\n    " + f.Path + " [" + f.Keyword + "] " + f.Message
	}
	return s
}

// domainErr asserts that err is a *domain.Error of the given kind and code.
func domainErr(tb testing.TB, err error, kind domain.Kind, code string) *domain.Error {
	tb.Helper()
	if err == nil {
		tb.Fatalf("no error, want %s", code)
	}
	e, ok := domain.AsError(err)
	if !ok {
		tb.Fatalf("error %v is not a *domain.Error", err)
	}
	if e.Kind != kind || e.Code != code {
		tb.Fatalf("error kind %d code %q, want kind %d code %q\n%s", e.Kind, e.Code, kind, code, describeErr(err))
	}
	return e
}
