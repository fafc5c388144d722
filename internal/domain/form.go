package domain

import (
	"encoding/json"
	"time"
)

// Form states and version states of protocol.md §2.
const (
	FormOpen   = "open"
	FormClosed = "closed"

	VersionDraft     = "draft"
	VersionPublished = "published"
)

// Conflict policies of protocol.md §3.
const (
	PolicyMerge         = "merge"
	PolicyReject        = "reject"
	PolicyLastWriteWins = "last-write-wins"
)

// Form is one form of a project with the state that spans its versions.
type Form struct {
	ProjectID      string
	ID             string
	Title          string
	State          string // FormOpen or FormClosed
	CurrentVersion string // the latest published version ("" when none)
	ClosedAt       *time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
	Versions       []FormVersion // filled by ListForms and GetForm, without Definition
}

// FormVersion is one version of a form's definition.
type FormVersion struct {
	ProjectID   string
	FormID      string
	Version     string
	State       string // VersionDraft or VersionPublished
	Hash        string // sha256 hex of the canonical definition
	Title       string
	Policy      string
	Shared      bool
	Definition  json.RawMessage // the definition as uploaded, whitespace removed (key order kept); Hash is of its canonical form
	PublishedAt *time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time

	// XForm is the OpenRosa XForm made from the definition when the version was
	// published (nil before, and for a version published before the bridge
	// existed until it is first asked for). It is stored once and served
	// byte-identical forever: ODK Collect matches forms by XFormMD5.
	// GetFormVersion and PublishFormVersion fill these three; list calls do not.
	XForm []byte
	// XFormMD5 is the md5 hex of XForm.
	XFormMD5 string
	// OpenRosa is what the XForm generator said (warnings, reasons, the map of
	// XML names back to JSON), stored with the XForm for the way back.
	OpenRosa json.RawMessage
}
