package identity

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// keyStore is the part of the store contract that keeps device keys
// (domain.OpenRosaStore); every backend has it. A narrow assertion, so the
// identity Store stays what the other routes need.
type keyStore interface {
	SetDeviceOpenRosaKey(ctx context.Context, deviceID, keyHash string) error
	GetDeviceByOpenRosaKey(ctx context.Context, keyHash string) (domain.Device, error)
}

func (s *Service) openRosaKeys() (keyStore, error) {
	ks, ok := s.store.(keyStore)
	if !ok {
		return nil, errors.New("identity: the store keeps no openrosa keys")
	}
	return ks, nil
}

// openRosaKeyBytes is the randomness of an OpenRosa device key (256 bits).
const openRosaKeyBytes = 32

// Audit event types of the OpenRosa bridge.
const (
	// AuditOpenRosaKeyCreated is a new OpenRosa key of a device (the earlier
	// one stops working); detail server_url, with the key masked.
	AuditOpenRosaKeyCreated = "openrosa_key_created"
)

// MaskOpenRosaKey replaces the key of a /v1/key/{key}/ URL or path with ***,
// for logs and audit events: the key is a password that travels in URLs.
func MaskOpenRosaKey(s string) string {
	const marker = "/v1/key/"
	i := strings.Index(s, marker)
	if i < 0 {
		return s
	}
	rest := s[i+len(marker):]
	j := strings.IndexByte(rest, '/')
	if j < 0 {
		j = len(rest)
	}
	return s[:i+len(marker)] + "***" + rest[j:]
}

// CreateOpenRosaKey makes a fresh OpenRosa key for a device (ODK Collect puts
// it in the URL of its server: /v1/key/{key}/projects/{project}/openrosa),
// replacing any earlier one, and returns it. It is shown once and stored only
// as a sha256 hash; it acts as the device (an enumerator of its project) and
// dies with it. serverURL is the URL the key goes into, for the audit event
// (masked). Managers of the project and admins only.
//
// Errors: 404 project_not_found; 403 forbidden; 404 device_not_found (also for
// a device of another project); 409 device_revoked.
func (s *Service) CreateOpenRosaKey(ctx context.Context, actor domain.Principal, projectID, deviceID, serverURL string) (string, domain.Device, error) {
	if err := s.requireManager(ctx, actor, projectID); err != nil {
		return "", domain.Device{}, err
	}
	d, err := s.store.GetDevice(ctx, deviceID)
	switch {
	case errors.Is(err, domain.ErrNotFound) || (err == nil && d.ProjectID != projectID):
		return "", domain.Device{}, errDeviceNotFound()
	case err != nil:
		return "", domain.Device{}, storeErr("get device", err)
	case d.RevokedAt != nil:
		return "", domain.Device{}, &domain.Error{Kind: domain.KindConflict, Code: "device_revoked",
			Title: "This device is revoked", Detail: "create a new device for this tablet"}
	}
	raw := make([]byte, openRosaKeyBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", domain.Device{}, err
	}
	key := base64.RawURLEncoding.EncodeToString(raw)
	ks, err := s.openRosaKeys()
	if err != nil {
		return "", domain.Device{}, err
	}
	if err := ks.SetDeviceOpenRosaKey(ctx, deviceID, hashSecret(key)); err != nil {
		return "", domain.Device{}, storeErr("set openrosa key", err)
	}
	s.audit(ctx, domain.AuditEvent{Type: AuditOpenRosaKeyCreated, Actor: actor.Subject, ProjectID: projectID,
		Subject: domain.DeviceSubject(deviceID), Detail: map[string]string{"server_url": MaskOpenRosaKey(serverURL)}})
	d.EnrollmentHash = ""
	return key, d, nil
}

// errBadOpenRosaKey is every refusal of a key: unknown, replaced, or of a
// revoked device. The caller answers 403 (not 401: Collect would ask for a
// password it does not have).
var errBadOpenRosaKey = errors.New("identity: unknown or revoked openrosa key")

// ErrBadOpenRosaKey is matched (errors.Is) by AuthenticateOpenRosaKey's
// refusals, as opposed to a store failure.
var ErrBadOpenRosaKey = errBadOpenRosaKey

// AuthenticateOpenRosaKey returns the principal of the device holding key: a
// device of its project, as with its access token. Returns an error matching
// ErrBadOpenRosaKey for an unknown key or a revoked device, and a store
// failure otherwise.
func (s *Service) AuthenticateOpenRosaKey(ctx context.Context, key string) (domain.Principal, error) {
	if len(key) != base64.RawURLEncoding.EncodedLen(openRosaKeyBytes) {
		return domain.Principal{}, errBadOpenRosaKey
	}
	ks, err := s.openRosaKeys()
	if err != nil {
		return domain.Principal{}, err
	}
	d, err := ks.GetDeviceByOpenRosaKey(ctx, hashSecret(key))
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return domain.Principal{}, errBadOpenRosaKey
	case err != nil:
		return domain.Principal{}, storeErr("get device by openrosa key", err)
	case d.RevokedAt != nil:
		return domain.Principal{}, errBadOpenRosaKey
	}
	return domain.Principal{Subject: domain.DeviceSubject(d.ID), DeviceID: d.ID, DeviceProject: d.ProjectID}, nil
}
