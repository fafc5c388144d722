package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// CreateProjectRequest is the body of POST /v1/projects.
type CreateProjectRequest struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

// Project is one project. Role is the caller's role in it, filled in lists so a
// client knows what it may do without a second request.
type Project struct {
	ID        string    `json:"id"`
	Title     string    `json:"title"`
	Role      string    `json:"role,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// ProjectList answers GET /v1/projects.
type ProjectList struct {
	Projects []Project `json:"projects"`
}

// Form states and form-version states of protocol.md §2.
const (
	FormOpen   = "open"
	FormClosed = "closed"

	VersionDraft     = "draft"
	VersionPublished = "published"
)

// Conflict policies of protocol.md §2 and §3.
const (
	PolicyMerge         = "merge"
	PolicyReject        = "reject"
	PolicyLastWriteWins = "last-write-wins"
)

// FormDefinition is the body of PUT .../forms/{form}/versions/{version} and of the
// GET of a version. Schema and UI are kept as the designer wrote them.
type FormDefinition struct {
	Title string `json:"title"`
	// ConflictPolicy is PolicyMerge (the default when empty), PolicyReject or
	// PolicyLastWriteWins.
	ConflictPolicy string `json:"conflict_policy,omitempty"`
	// Schema is a JSON Schema draft 2020-12 document with top-level "type": "object".
	Schema json.RawMessage `json:"schema"`
	UI     json.RawMessage `json:"ui,omitempty"`
	// Shared makes every record of the form visible to every enumerator.
	Shared bool `json:"shared,omitempty"`
}

// FormVersionEntry is one version in a form list entry, and the answer of a
// PUT or publish of a version.
type FormVersionEntry struct {
	Version string `json:"version"`
	// State is VersionDraft or VersionPublished.
	State string `json:"state"`
	// Hash is the lowercase hex sha256 of the definition's canonical JSON
	// (RFC 8785): the same definition with other key order or whitespace has
	// the same hash. It is also the version's ETag.
	Hash        string     `json:"hash"`
	PublishedAt *time.Time `json:"published_at,omitempty"`
	// Title is the definition's title; in the answers of a PUT or publish
	// only, not in the form list (whose entry has the form's title).
	Title string `json:"title,omitempty"`
	// OpenRosa is what the XForm generator said of a published version, in
	// the answer of a publish only (ODK Collect, issue 14).
	OpenRosa *OpenRosaInfo `json:"openrosa,omitempty"`
}

// FormListEntry is one form of GET /v1/projects/{project}/forms.
type FormListEntry struct {
	ID             string             `json:"id"`
	Title          string             `json:"title"`
	State          string             `json:"state"`
	CurrentVersion string             `json:"current_version,omitempty"`
	Versions       []FormVersionEntry `json:"versions"`
}

// FormList answers GET /v1/projects/{project}/forms.
type FormList struct {
	Forms []FormListEntry `json:"forms"`
}

// formPath is the path of a form, or of one of its versions when version is
// not "".
func formPath(project, form, version string) string {
	p := "/v1/projects/" + url.PathEscape(project) + "/forms/" + url.PathEscape(form)
	if version != "" {
		p += "/versions/" + url.PathEscape(version)
	}
	return p
}

// PutFormVersion calls PUT /v1/projects/{project}/forms/{form}/versions/{version}
// (designers) with a form definition as its body, sent as given. created is
// true for a new draft (201) and false when a draft was replaced (200). A
// published version is a *Problem with Code "version_published"; a definition
// that is not valid one with Status 422 whose Errors point into it.
func (c *Client) PutFormVersion(ctx context.Context, project, form, version string, definition []byte) (entry FormVersionEntry, created bool, err error) {
	status, _, err := c.Exchange(ctx, http.MethodPut, formPath(project, form, version), nil, json.RawMessage(definition), &entry)
	if err != nil {
		return FormVersionEntry{}, false, err
	}
	return entry, status == http.StatusCreated, nil
}

// PublishFormVersion calls POST .../forms/{form}/versions/{version}/publish
// (designers): the draft becomes the form's current version and never changes
// again. Publishing a published version answers it unchanged.
func (c *Client) PublishFormVersion(ctx context.Context, project, form, version string) (FormVersionEntry, error) {
	var out FormVersionEntry
	err := c.Do(ctx, http.MethodPost, formPath(project, form, version)+"/publish", nil, &out)
	return out, err
}

// CloseForm calls POST /v1/projects/{project}/forms/{form}/close (designers):
// no new records of the form from now on; edits of existing ones still sync.
func (c *Client) CloseForm(ctx context.Context, project, form string) (FormListEntry, error) {
	var out FormListEntry
	err := c.Do(ctx, http.MethodPost, formPath(project, form, "")+"/close", nil, &out)
	return out, err
}

// ReopenForm calls POST /v1/projects/{project}/forms/{form}/reopen (designers):
// a closed form takes new records again.
func (c *Client) ReopenForm(ctx context.Context, project, form string) (FormListEntry, error) {
	var out FormListEntry
	err := c.Do(ctx, http.MethodPost, formPath(project, form, "")+"/reopen", nil, &out)
	return out, err
}

// ListForms calls GET /v1/projects/{project}/forms (members). Enumerators and
// devices see published versions only.
func (c *Client) ListForms(ctx context.Context, project string) ([]FormListEntry, error) {
	var out FormList
	if err := c.Do(ctx, http.MethodGet, "/v1/projects/"+url.PathEscape(project)+"/forms", nil, &out); err != nil {
		return nil, err
	}
	return out.Forms, nil
}

// GetFormVersion calls GET .../forms/{form}/versions/{version} (members) and
// returns the definition as the server stores it (the upload without
// insignificant whitespace) and its hash, from the ETag.
func (c *Client) GetFormVersion(ctx context.Context, project, form, version string) (definition []byte, hash string, err error) {
	_, h, err := c.Exchange(ctx, http.MethodGet, formPath(project, form, version), nil, nil, &definition)
	if err != nil {
		return nil, "", err
	}
	return definition, strings.Trim(strings.TrimPrefix(h.Get("ETag"), "W/"), `"`), nil
}
