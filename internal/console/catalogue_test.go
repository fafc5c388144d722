package console

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/internal/console/i18n"
)

// TestCatalogueComplete: every message key the templates and the Go code
// name is in the English catalogue, so no page shows a raw "[key]".
func TestCatalogueComplete(t *testing.T) {
	cat, err := i18n.Default()
	if err != nil {
		t.Fatal(err)
	}
	en := cat.Lang(i18n.Fallback)
	tmplKey := regexp.MustCompile(`\bTN? "([^"]+)"`)
	goKey := regexp.MustCompile(`"((?:layout|nav|flash|role|core|manager|designer|analyst)\.[a-z0-9_]+\.[a-z0-9_.]+|(?:nav|flash|role)\.[a-z0-9_]+)"`)
	check := func(where, key string) {
		if !en.Has(key) {
			t.Errorf("%s names %q, which the English catalogue lacks (i18n/en/*.json)", where, key)
		}
	}
	_ = fs.WalkDir(assets, "templates", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(assets, p)
		for _, m := range tmplKey.FindAllStringSubmatch(string(b), -1) {
			check(p, m[1])
		}
		return nil
	})
	gofiles, _ := filepath.Glob("*.go")
	for _, f := range gofiles {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range goKey.FindAllStringSubmatch(string(b), -1) {
			check(f, m[1])
		}
	}
	for _, r := range []string{"manager", "designer", "analyst", "enumerator"} {
		check("role names", "role."+r)
	}
	// The error page names its status (core/error.tmpl): every status the
	// API's problems have.
	for _, status := range []int{400, 401, 403, 404, 405, 408, 409, 412, 413, 415, 422, 428, 429, 500, 503} {
		check("error page", fmt.Sprintf("core.error.%d", status))
	}
}
