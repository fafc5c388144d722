package api

import (
	"encoding/json"
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
	Version     string     `json:"version"`
	State       string     `json:"state"`
	Hash        string     `json:"hash"`
	PublishedAt *time.Time `json:"published_at,omitempty"`
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
