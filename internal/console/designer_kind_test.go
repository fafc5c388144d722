package console

import (
	"testing"

	"github.com/fieldsync/fieldsync/internal/console/i18n"
	"github.com/fieldsync/fieldsync/internal/export"
)

// TestDesignerKindsInCatalogue: every answer type the exports know has its
// name in the catalogue (the templates name them by computed keys, which
// TestCatalogueComplete cannot see).
func TestDesignerKindsInCatalogue(t *testing.T) {
	cat, err := i18n.Default()
	if err != nil {
		t.Fatal(err)
	}
	en := cat.Lang(i18n.Fallback)
	for k := export.KindText; k <= export.KindJSON; k++ {
		if key := designerKindKey(k); !en.Has(key) {
			t.Errorf("kind %s: the catalogue lacks %q", k, key)
		}
	}
}
