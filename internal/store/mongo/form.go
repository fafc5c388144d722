package mongo

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// formDoc is a form in the forms collection, keyed by "<project>/<form>".
type formDoc struct {
	ID             string     `bson:"_id"`
	ProjectID      string     `bson:"project_id"`
	FormID         string     `bson:"form_id"`
	Title          string     `bson:"title"`
	State          string     `bson:"state"`
	CurrentVersion string     `bson:"current_version"`
	ClosedAt       *time.Time `bson:"closed_at,omitempty"`
	CreatedAt      *time.Time `bson:"created_at,omitempty"`
	UpdatedAt      *time.Time `bson:"updated_at,omitempty"`
}

func (d formDoc) form() domain.Form {
	return domain.Form{ProjectID: d.ProjectID, ID: d.FormID, Title: d.Title, State: d.State,
		CurrentVersion: d.CurrentVersion, ClosedAt: utcPtr(d.ClosedAt),
		CreatedAt: timeVal(d.CreatedAt), UpdatedAt: timeVal(d.UpdatedAt)}
}

// versionDoc is a form version in the form_versions collection, keyed by
// "<project>/<form>/<version>". The definition is stored as a document (see
// encodeJSON). Stored orders versions created in the same millisecond.
type versionDoc struct {
	ID             string        `bson:"_id"`
	ProjectID      string        `bson:"project_id"`
	FormID         string        `bson:"form_id"`
	Version        string        `bson:"version"`
	State          string        `bson:"state"`
	Hash           string        `bson:"hash"`
	Title          string        `bson:"title"`
	Policy         string        `bson:"policy"`
	Shared         bool          `bson:"shared"`
	Definition     bson.RawValue `bson:"definition,omitempty"`
	DefinitionJSON string        `bson:"definition_json,omitempty"`
	PublishedAt    *time.Time    `bson:"published_at,omitempty"`
	CreatedAt      *time.Time    `bson:"created_at,omitempty"`
	UpdatedAt      *time.Time    `bson:"updated_at,omitempty"`
	Stored         int64         `bson:"stored"`
	// The OpenRosa XForm, set once after publishing (SetFormVersionXForm).
	XForm    []byte `bson:"xform,omitempty"`
	XFormMD5 string `bson:"xform_md5,omitempty"`
	OpenRosa string `bson:"openrosa,omitempty"`
}

func (d versionDoc) version() (domain.FormVersion, error) {
	def, err := decodeJSON(d.Definition, d.DefinitionJSON)
	if err != nil {
		return domain.FormVersion{}, err
	}
	return domain.FormVersion{ProjectID: d.ProjectID, FormID: d.FormID, Version: d.Version, State: d.State,
		Hash: d.Hash, Title: d.Title, Policy: d.Policy, Shared: d.Shared, Definition: def,
		PublishedAt: utcPtr(d.PublishedAt), CreatedAt: timeVal(d.CreatedAt), UpdatedAt: timeVal(d.UpdatedAt),
		XForm: d.XForm, XFormMD5: d.XFormMD5, OpenRosa: rawOrNil(d.OpenRosa)}, nil
}

// withoutDefinition leaves the (possibly large) definition on the server when
// listing versions.
var withoutDefinition = bson.D{{Key: "definition", Value: 0}, {Key: "definition_json", Value: 0},
	{Key: "xform", Value: 0}, {Key: "openrosa", Value: 0}}

// versionOrder is "ordered by creation".
var versionOrder = bson.D{{Key: "created_at", Value: 1}, {Key: "stored", Value: 1}, {Key: "_id", Value: 1}}

// PutFormVersion creates or replaces a draft version, creating the form (open)
// first if needed. The version is written by an upsert filtered on "not
// published", so a published version is never touched: for it the filter matches
// nothing and the upsert's insert collides with the existing _id. Such a duplicate
// key means either "published" (ErrStale) or "a concurrent upsert inserted the
// draft first", which a retry settles.
func (s *Store) PutFormVersion(ctx context.Context, v domain.FormVersion) (bool, error) {
	formID := key(v.ProjectID, v.FormID)
	err := retryUpsert(func() error {
		// The filter's _id goes into the inserted document; $setOnInsert names
		// every other field.
		_, err := s.forms.UpdateOne(ctx, bson.D{{Key: "_id", Value: formID}, {Key: "project_id", Value: v.ProjectID}},
			bson.D{{Key: "$setOnInsert", Value: bson.D{
				{Key: "project_id", Value: v.ProjectID}, {Key: "form_id", Value: v.FormID},
				{Key: "title", Value: v.Title}, {Key: "state", Value: domain.FormOpen},
				{Key: "current_version", Value: ""},
				{Key: "created_at", Value: timePtr(v.CreatedAt)}, {Key: "updated_at", Value: timePtr(v.UpdatedAt)}}}},
			options.UpdateOne().SetUpsert(true))
		return err
	})
	if err != nil {
		return false, translate(err)
	}
	// Until a version is published the form is known by its latest draft's title.
	if _, err := s.forms.UpdateOne(ctx, bson.D{{Key: "_id", Value: formID}, {Key: "project_id", Value: v.ProjectID}, {Key: "current_version", Value: ""}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "title", Value: v.Title}}}}); err != nil {
		return false, translate(err)
	}

	def, defJSON, err := encodeJSON(v.Definition)
	if err != nil {
		return false, err
	}
	doc := versionDoc{ID: key(v.ProjectID, v.FormID, v.Version), ProjectID: v.ProjectID, FormID: v.FormID,
		Version: v.Version, State: domain.VersionDraft, Hash: v.Hash, Title: v.Title, Policy: v.Policy,
		Shared: v.Shared, Definition: def, DefinitionJSON: defJSON, UpdatedAt: timePtr(v.UpdatedAt)}
	update, err := setUnset(doc, "created_at", "stored", "published_at")
	if err != nil {
		return false, err
	}
	update = append(update, bson.E{Key: "$setOnInsert", Value: bson.D{
		{Key: "created_at", Value: timePtr(v.CreatedAt)}, {Key: "stored", Value: s.tick()}}})
	filter := bson.D{{Key: "_id", Value: doc.ID}, {Key: "project_id", Value: v.ProjectID}, {Key: "state", Value: bson.D{{Key: "$ne", Value: domain.VersionPublished}}}}
	for range upsertRetries {
		res, err := s.versions.UpdateOne(ctx, filter, update, options.UpdateOne().SetUpsert(true))
		if err == nil {
			return res.UpsertedCount > 0, nil
		}
		if !isDup(err) {
			return false, translate(err)
		}
		cur, err := findOne[versionDoc](ctx, s.versions, bson.D{{Key: "_id", Value: doc.ID}, {Key: "project_id", Value: v.ProjectID}}, options.FindOne().SetProjection(withoutDefinition))
		if err != nil && !errors.Is(err, domain.ErrNotFound) {
			return false, err
		}
		if err == nil && cur.State == domain.VersionPublished {
			return false, domain.ErrStale
		}
	}
	return false, domain.ErrUnavailable
}

// GetFormVersion returns ErrNotFound for an unknown form or version.
func (s *Store) GetFormVersion(ctx context.Context, projectID, formID, version string) (domain.FormVersion, error) {
	d, err := findOne[versionDoc](ctx, s.versions, bson.D{{Key: "_id", Value: key(projectID, formID, version)}, {Key: "project_id", Value: projectID}})
	if err != nil {
		return domain.FormVersion{}, err
	}
	return d.version()
}

// PublishFormVersion publishes a draft (a conditional update: of concurrent
// publishers one changes the state, the others find it published) and makes it the
// form's current version. Publishing a published version returns it unchanged; it
// also completes a publication whose form update was interrupted.
func (s *Store) PublishFormVersion(ctx context.Context, projectID, formID, version string, at time.Time) (domain.FormVersion, error) {
	id := key(projectID, formID, version)
	now := ms(at)
	var d versionDoc
	err := s.versions.FindOneAndUpdate(ctx,
		bson.D{{Key: "_id", Value: id}, {Key: "project_id", Value: projectID}, {Key: "state", Value: domain.VersionDraft}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "state", Value: domain.VersionPublished},
			{Key: "published_at", Value: now}, {Key: "updated_at", Value: now}}}},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&d)
	switch {
	case err == nil:
		if _, err := s.forms.UpdateOne(ctx, bson.D{{Key: "_id", Value: key(projectID, formID)}, {Key: "project_id", Value: projectID}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "current_version", Value: version},
				{Key: "title", Value: d.Title}, {Key: "updated_at", Value: now}}}}); err != nil {
			return domain.FormVersion{}, translate(err)
		}
		return d.version()
	case !errors.Is(err, mongodrv.ErrNoDocuments):
		return domain.FormVersion{}, translate(err)
	}
	d, err = findOne[versionDoc](ctx, s.versions, bson.D{{Key: "_id", Value: id}, {Key: "project_id", Value: projectID}})
	if err != nil {
		return domain.FormVersion{}, err
	}
	if d.State != domain.VersionPublished {
		return domain.FormVersion{}, domain.ErrStale // not a draft, not published: unknown state
	}
	if _, err := s.forms.UpdateOne(ctx, bson.D{{Key: "_id", Value: key(projectID, formID)}, {Key: "project_id", Value: projectID}, {Key: "current_version", Value: ""}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "current_version", Value: version}, {Key: "title", Value: d.Title}}}}); err != nil {
		return domain.FormVersion{}, translate(err)
	}
	return d.version()
}

// CloseForm sets the form's state to closed, kept from the first close. Returns
// ErrNotFound for an unknown form.
func (s *Store) CloseForm(ctx context.Context, projectID, formID string, at time.Time) error {
	id := key(projectID, formID)
	now := ms(at)
	res, err := s.forms.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "project_id", Value: projectID}, {Key: "state", Value: domain.FormOpen}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "state", Value: domain.FormClosed},
			{Key: "closed_at", Value: now}, {Key: "updated_at", Value: now}}}})
	if err != nil {
		return translate(err)
	}
	if res.MatchedCount > 0 {
		return nil
	}
	ok, err := exists(ctx, s.forms, bson.D{{Key: "_id", Value: id}, {Key: "project_id", Value: projectID}})
	if err != nil {
		return err
	}
	if !ok {
		return domain.ErrNotFound
	}
	return nil
}

// GetForm returns a form with its versions (without definitions), ordered by
// creation. Returns ErrNotFound for an unknown form.
func (s *Store) GetForm(ctx context.Context, projectID, formID string) (domain.Form, error) {
	d, err := findOne[formDoc](ctx, s.forms, bson.D{{Key: "_id", Value: key(projectID, formID)}, {Key: "project_id", Value: projectID}})
	if err != nil {
		return domain.Form{}, err
	}
	docs, err := findAll[versionDoc](ctx, s.versions,
		bson.D{{Key: "project_id", Value: projectID}, {Key: "form_id", Value: formID}},
		options.Find().SetSort(versionOrder).SetProjection(withoutDefinition))
	if err != nil {
		return domain.Form{}, err
	}
	f := d.form()
	for _, vd := range docs {
		v, err := vd.version()
		if err != nil {
			return domain.Form{}, err
		}
		f.Versions = append(f.Versions, v)
	}
	return f, nil
}

// ListForms returns a project's forms ordered by id, each with its versions.
func (s *Store) ListForms(ctx context.Context, projectID string) ([]domain.Form, error) {
	docs, err := findAll[formDoc](ctx, s.forms, bson.D{{Key: "project_id", Value: projectID}},
		options.Find().SetSort(bson.D{{Key: "form_id", Value: 1}}))
	if err != nil {
		return nil, err
	}
	vdocs, err := findAll[versionDoc](ctx, s.versions, bson.D{{Key: "project_id", Value: projectID}},
		options.Find().SetSort(versionOrder).SetProjection(withoutDefinition))
	if err != nil {
		return nil, err
	}
	byForm := map[string][]domain.FormVersion{}
	for _, vd := range vdocs {
		v, err := vd.version()
		if err != nil {
			return nil, err
		}
		byForm[v.FormID] = append(byForm[v.FormID], v)
	}
	out := make([]domain.Form, len(docs))
	for i, d := range docs {
		out[i] = d.form()
		out[i].Versions = byForm[d.FormID]
	}
	return out, nil
}

// ReopenForm opens a closed form again and clears its ClosedAt; an open form
// is left as it is.
func (s *Store) ReopenForm(ctx context.Context, projectID, formID string, at time.Time) error {
	id := key(projectID, formID)
	res, err := s.forms.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "project_id", Value: projectID}, {Key: "state", Value: domain.FormClosed}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "state", Value: domain.FormOpen}, {Key: "updated_at", Value: ms(at)}}},
			{Key: "$unset", Value: bson.D{{Key: "closed_at", Value: ""}}}})
	if err != nil {
		return translate(err)
	}
	if res.MatchedCount > 0 {
		return nil
	}
	ok, err := exists(ctx, s.forms, bson.D{{Key: "_id", Value: id}, {Key: "project_id", Value: projectID}})
	if err != nil {
		return err
	}
	if !ok {
		return domain.ErrNotFound
	}
	return nil
}
