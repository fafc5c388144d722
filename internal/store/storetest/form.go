package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// testVersion is a draft version of a form, made at minute m.
func testVersion(project, form, version string, m int) domain.FormVersion {
	def := fmt.Sprintf(`{"title":"Safety perception %s","conflict_policy":"merge","schema":{"type":"object",`+
		`"properties":{"feels_safe":{"type":"string"}}}}`, version)
	return domain.FormVersion{
		ProjectID: project, FormID: form, Version: version, State: domain.VersionDraft,
		Hash: fmt.Sprintf("%064x", m+1), Title: "Safety perception " + version, Policy: domain.PolicyMerge,
		Definition: json.RawMessage(def), CreatedAt: at(m), UpdatedAt: at(m),
	}
}

// withoutDefinition is v as GetForm and ListForms return it.
func withoutDefinition(v domain.FormVersion) domain.FormVersion {
	v.Definition = nil
	return v
}

func (s suite) forms(t *testing.T) {
	s.run(t, "PutCreates", func(t *testing.T, ctx context.Context, st domain.Store) {
		v := testVersion("juba", "perception", "1", 0)
		v.Shared = true
		created, err := st.PutFormVersion(ctx, v)
		noErr(t, err, "PutFormVersion")
		if !created {
			t.Error("PutFormVersion of a new version: created = false")
		}
		got, err := st.GetFormVersion(ctx, "juba", "perception", "1")
		noErr(t, err, "GetFormVersion")
		same(t, "version", got, v)
		f, err := st.GetForm(ctx, "juba", "perception")
		noErr(t, err, "GetForm")
		same(t, "new form", f, domain.Form{
			ProjectID: "juba", ID: "perception", Title: v.Title, State: domain.FormOpen,
			CreatedAt: f.CreatedAt, UpdatedAt: f.UpdatedAt, Versions: []domain.FormVersion{withoutDefinition(v)},
		})
	})
	s.run(t, "PutReplacesDraft", func(t *testing.T, ctx context.Context, st domain.Store) {
		_, err := st.PutFormVersion(ctx, testVersion("juba", "perception", "1", 0))
		noErr(t, err, "PutFormVersion")
		_, err = st.PutFormVersion(ctx, testVersion("juba", "perception", "2", 1))
		noErr(t, err, "PutFormVersion 2")
		v := testVersion("juba", "perception", "1", 0)
		v.Hash, v.Title, v.Policy = fmt.Sprintf("%064x", 99), "Revised", domain.PolicyReject
		v.Definition = json.RawMessage(`{"title":"Revised","conflict_policy":"reject","schema":{"type":"object"}}`)
		v.UpdatedAt = at(5)
		created, err := st.PutFormVersion(ctx, v)
		noErr(t, err, "PutFormVersion replace")
		if created {
			t.Error("PutFormVersion of an existing draft: created = true")
		}
		got, err := st.GetFormVersion(ctx, "juba", "perception", "1")
		noErr(t, err, "GetFormVersion")
		same(t, "replaced version", got, v)
		f, err := st.GetForm(ctx, "juba", "perception")
		noErr(t, err, "GetForm")
		// A replaced draft keeps its place: versions are ordered by creation.
		same(t, "versions", f.Versions, []domain.FormVersion{
			withoutDefinition(v), withoutDefinition(testVersion("juba", "perception", "2", 1)),
		})
	})
	s.run(t, "PutPublishedIsStale", func(t *testing.T, ctx context.Context, st domain.Store) {
		_, err := st.PutFormVersion(ctx, testVersion("juba", "perception", "1", 0))
		noErr(t, err, "PutFormVersion")
		published, err := st.PublishFormVersion(ctx, "juba", "perception", "1", at(2))
		noErr(t, err, "PublishFormVersion")
		v := testVersion("juba", "perception", "1", 0)
		v.Title, v.Hash = "Changed after publication", fmt.Sprintf("%064x", 77)
		_, err = st.PutFormVersion(ctx, v)
		isErr(t, err, domain.ErrStale, "PutFormVersion of a published version")
		got, err := st.GetFormVersion(ctx, "juba", "perception", "1")
		noErr(t, err, "GetFormVersion")
		same(t, "published version after rejected put", got, published)
	})
	s.run(t, "Publish", func(t *testing.T, ctx context.Context, st domain.Store) {
		_, err := st.PutFormVersion(ctx, testVersion("juba", "perception", "1", 0))
		noErr(t, err, "PutFormVersion 1")
		_, err = st.PutFormVersion(ctx, testVersion("juba", "perception", "2", 1))
		noErr(t, err, "PutFormVersion 2")
		got, err := st.PublishFormVersion(ctx, "juba", "perception", "1", at(2))
		noErr(t, err, "PublishFormVersion 1")
		if got.State != domain.VersionPublished || got.PublishedAt == nil || !got.PublishedAt.Equal(at(2)) {
			t.Errorf("published version: state %q, PublishedAt %v; want published at %v", got.State, got.PublishedAt, at(2))
		}
		if !sameJSON(got.Definition, testVersion("juba", "perception", "1", 0).Definition) {
			t.Errorf("PublishFormVersion returned definition %s", got.Definition)
		}
		stored, err := st.GetFormVersion(ctx, "juba", "perception", "1")
		noErr(t, err, "GetFormVersion")
		same(t, "stored published version", stored, got)
		f, err := st.GetForm(ctx, "juba", "perception")
		noErr(t, err, "GetForm")
		if f.CurrentVersion != "1" {
			t.Errorf("CurrentVersion = %q, want 1", f.CurrentVersion)
		}
		if f.Versions[1].State != domain.VersionDraft {
			t.Errorf("version 2 state = %q, want draft", f.Versions[1].State)
		}

		v2, err := st.PublishFormVersion(ctx, "juba", "perception", "2", at(3))
		noErr(t, err, "PublishFormVersion 2")
		f, err = st.GetForm(ctx, "juba", "perception")
		noErr(t, err, "GetForm")
		if f.CurrentVersion != "2" {
			t.Errorf("CurrentVersion after publishing 2 = %q, want 2", f.CurrentVersion)
		}
		// Publishing again is idempotent: the version comes back unchanged.
		again, err := st.PublishFormVersion(ctx, "juba", "perception", "2", at(9))
		noErr(t, err, "PublishFormVersion again")
		same(t, "version published twice", again, v2)
		f, err = st.GetForm(ctx, "juba", "perception")
		noErr(t, err, "GetForm")
		if f.CurrentVersion != "2" {
			t.Errorf("CurrentVersion after publishing 2 again = %q, want 2", f.CurrentVersion)
		}
	})
	s.run(t, "PublishUnknown", func(t *testing.T, ctx context.Context, st domain.Store) {
		_, err := st.PutFormVersion(ctx, testVersion("juba", "perception", "1", 0))
		noErr(t, err, "PutFormVersion")
		_, err = st.PublishFormVersion(ctx, "juba", "perception", "9", at(2))
		isErr(t, err, domain.ErrNotFound, "PublishFormVersion of unknown version")
		_, err = st.PublishFormVersion(ctx, "juba", "nope", "1", at(2))
		isErr(t, err, domain.ErrNotFound, "PublishFormVersion of unknown form")
		_, err = st.PublishFormVersion(ctx, "wau", "perception", "1", at(2))
		isErr(t, err, domain.ErrNotFound, "PublishFormVersion in another project")
	})
	s.run(t, "Close", func(t *testing.T, ctx context.Context, st domain.Store) {
		_, err := st.PutFormVersion(ctx, testVersion("juba", "perception", "1", 0))
		noErr(t, err, "PutFormVersion")
		noErr(t, st.CloseForm(ctx, "juba", "perception", at(4)), "CloseForm")
		noErr(t, st.CloseForm(ctx, "juba", "perception", at(8)), "CloseForm again")
		f, err := st.GetForm(ctx, "juba", "perception")
		noErr(t, err, "GetForm")
		if f.State != domain.FormClosed {
			t.Errorf("state = %q, want closed", f.State)
		}
		same(t, "ClosedAt", f.ClosedAt, ptr(at(4)))
		isErr(t, st.CloseForm(ctx, "juba", "nope", at(4)), domain.ErrNotFound, "CloseForm of unknown form")
	})
	s.run(t, "Reopen", func(t *testing.T, ctx context.Context, st domain.Store) {
		_, err := st.PutFormVersion(ctx, testVersion("juba", "perception", "1", 0))
		noErr(t, err, "PutFormVersion")
		noErr(t, st.CloseForm(ctx, "juba", "perception", at(4)), "CloseForm")
		noErr(t, st.ReopenForm(ctx, "juba", "perception", at(6)), "ReopenForm")
		f, err := st.GetForm(ctx, "juba", "perception")
		noErr(t, err, "GetForm")
		if f.State != domain.FormOpen || f.ClosedAt != nil || !f.UpdatedAt.Equal(at(6)) {
			t.Errorf("reopened form: state %q, closed_at %v, updated_at %v; want open, none, %v", f.State, f.ClosedAt, f.UpdatedAt, at(6))
		}
		// Reopening an open form changes nothing; closing again starts a
		// new closed period.
		noErr(t, st.ReopenForm(ctx, "juba", "perception", at(7)), "ReopenForm of an open form")
		f, err = st.GetForm(ctx, "juba", "perception")
		noErr(t, err, "GetForm")
		if f.State != domain.FormOpen || !f.UpdatedAt.Equal(at(6)) {
			t.Errorf("form reopened twice: state %q, updated_at %v; want open, %v", f.State, f.UpdatedAt, at(6))
		}
		noErr(t, st.CloseForm(ctx, "juba", "perception", at(8)), "CloseForm again")
		f, err = st.GetForm(ctx, "juba", "perception")
		noErr(t, err, "GetForm")
		same(t, "ClosedAt after closing again", f.ClosedAt, ptr(at(8)))
		isErr(t, st.ReopenForm(ctx, "juba", "nope", at(4)), domain.ErrNotFound, "ReopenForm of unknown form")
		isErr(t, st.ReopenForm(ctx, "wau", "perception", at(4)), domain.ErrNotFound, "ReopenForm in another project")
	})
	s.run(t, "GetUnknown", func(t *testing.T, ctx context.Context, st domain.Store) {
		_, err := st.PutFormVersion(ctx, testVersion("juba", "perception", "1", 0))
		noErr(t, err, "PutFormVersion")
		_, err = st.GetForm(ctx, "juba", "nope")
		isErr(t, err, domain.ErrNotFound, "GetForm of unknown form")
		_, err = st.GetForm(ctx, "wau", "perception")
		isErr(t, err, domain.ErrNotFound, "GetForm in another project")
		_, err = st.GetFormVersion(ctx, "juba", "perception", "2")
		isErr(t, err, domain.ErrNotFound, "GetFormVersion of unknown version")
		_, err = st.GetFormVersion(ctx, "juba", "nope", "1")
		isErr(t, err, domain.ErrNotFound, "GetFormVersion of unknown form")
	})
	s.run(t, "List", func(t *testing.T, ctx context.Context, st domain.Store) {
		forms, err := st.ListForms(ctx, "juba")
		noErr(t, err, "ListForms of an empty project")
		if len(forms) != 0 {
			t.Fatalf("ListForms of an empty project: %d forms", len(forms))
		}
		vs := []domain.FormVersion{
			testVersion("juba", "wash", "1", 0),
			testVersion("juba", "perception", "b", 1),
			testVersion("juba", "perception", "a", 2),
			testVersion("wau", "other", "1", 3),
			testVersion("juba", "wash", "2", 4),
		}
		for _, v := range vs {
			_, err := st.PutFormVersion(ctx, v)
			noErr(t, err, "PutFormVersion")
		}
		published, err := st.PublishFormVersion(ctx, "juba", "perception", "a", at(5))
		noErr(t, err, "PublishFormVersion")
		forms, err = st.ListForms(ctx, "juba")
		noErr(t, err, "ListForms")
		if len(forms) != 2 || forms[0].ID != "perception" || forms[1].ID != "wash" {
			t.Fatalf("ListForms: got %d forms %v, want perception and wash in that order", len(forms), formIDs(forms))
		}
		same(t, "perception versions", forms[0].Versions,
			[]domain.FormVersion{withoutDefinition(vs[1]), withoutDefinition(published)})
		same(t, "wash versions", forms[1].Versions, []domain.FormVersion{withoutDefinition(vs[0]), withoutDefinition(vs[4])})
		if forms[0].CurrentVersion != "a" || forms[1].CurrentVersion != "" {
			t.Errorf("current versions %q, %q; want a and none", forms[0].CurrentVersion, forms[1].CurrentVersion)
		}
		for _, f := range forms {
			one, err := st.GetForm(ctx, "juba", f.ID)
			noErr(t, err, "GetForm")
			same(t, "GetForm and ListForms of "+f.ID, one, f)
		}
	})
}

func formIDs(fs []domain.Form) []string {
	var ids []string
	for _, f := range fs {
		ids = append(ids, f.ID)
	}
	return ids
}
