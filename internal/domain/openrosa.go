package domain

import (
	"context"
	"encoding/json"
	"time"
)

// OpenRosaInstance remembers one OpenRosa submission (an ODK Collect
// instance) that became a record revision: which record and revision its
// instance id stands for, and the sha256 of the XML it came as. A resend of the
// same XML is recognised by it, and a later edit (meta/deprecatedID) finds the
// record and base revision through it.
type OpenRosaInstance struct {
	ProjectID  string
	InstanceID string // as sent, without the "uuid:" prefix
	RecordID   string
	Rev        string // the revision the submission made (its own, even when merged)
	XMLHash    string // sha256 hex of the xml_submission_file bytes
	CreatedAt  time.Time
}

// OpenRosaStore keeps what the OpenRosa bridge adds to forms and devices.
type OpenRosaStore interface {
	// SetFormVersionXForm stores a published version's XForm, its md5 and the
	// generator's metadata unless the version has an XForm already, atomically,
	// and returns the version as stored afterwards (the first XForm wins, so the
	// bytes served never change). Returns ErrNotFound for an unknown version
	// and ErrStale for a draft.
	SetFormVersionXForm(ctx context.Context, projectID, formID, version string, xform []byte, md5 string, meta json.RawMessage) (FormVersion, error)
	// SetDeviceOpenRosaKey replaces the device's OpenRosa key hash (sha256 hex;
	// "" removes it). Returns ErrNotFound for an unknown device. Callers pass
	// the hash of a fresh random key of 256 bits: two devices never share one
	// (both backends index the hash as unique all the same).
	SetDeviceOpenRosaKey(ctx context.Context, deviceID, keyHash string) error
	// GetDeviceByOpenRosaKey returns the device holding the key hash, revoked
	// or not. Returns ErrNotFound for an unknown hash (and for "").
	GetDeviceByOpenRosaKey(ctx context.Context, keyHash string) (Device, error)
	// PutOpenRosaInstance stores inst unless (ProjectID, InstanceID) is held,
	// atomically, and returns what is stored afterwards and whether this call
	// stored it.
	PutOpenRosaInstance(ctx context.Context, inst OpenRosaInstance) (stored OpenRosaInstance, created bool, err error)
	// GetOpenRosaInstance returns ErrNotFound for an unknown instance id.
	GetOpenRosaInstance(ctx context.Context, projectID, instanceID string) (OpenRosaInstance, error)
}
