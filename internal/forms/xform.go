package forms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/openrosa"
)

// xformStore is the part of the store contract that keeps XForms; every
// backend's store has it (domain.OpenRosaStore).
type xformStore interface {
	SetFormVersionXForm(ctx context.Context, projectID, formID, version string, xform []byte, md5 string, meta json.RawMessage) (domain.FormVersion, error)
}

// EnsureXForm makes and stores the OpenRosa XForm of a published version
// unless it has one, and returns the version with it. Publish calls it; the
// OpenRosa bridge calls it for a version published before the bridge
// existed. The store keeps the first XForm made, so every server serves the
// same bytes forever. A draft, or a store without XForms, is returned as it is.
// An error matching openrosa.ErrGenerate is this form's alone (a generator
// bug): its version cannot be offered to Collect.
func (s *Service) EnsureXForm(ctx context.Context, fv domain.FormVersion) (domain.FormVersion, error) {
	xs, ok := s.store.(xformStore)
	if !ok || fv.State != domain.VersionPublished || len(fv.XForm) > 0 {
		return fv, nil
	}
	if len(fv.Definition) == 0 {
		full, err := s.store.GetFormVersion(ctx, fv.ProjectID, fv.FormID, fv.Version)
		if err != nil {
			return domain.FormVersion{}, err
		}
		if len(full.XForm) > 0 {
			return full, nil
		}
		fv = full
	}
	res, err := openrosa.Generate(fv.FormID, fv.Version, fv.Definition)
	if err != nil {
		return domain.FormVersion{}, fmt.Errorf("forms: XForm of %s/%s/%s: %w", fv.ProjectID, fv.FormID, fv.Version, err)
	}
	out, err := xs.SetFormVersionXForm(ctx, fv.ProjectID, fv.FormID, fv.Version, res.XForm, res.MD5, res.MetaJSON())
	if errors.Is(err, domain.ErrNotFound) {
		return domain.FormVersion{}, versionNotFound(fv.FormID, fv.Version)
	}
	return out, err
}
