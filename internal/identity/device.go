package identity

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// Enrollment codes are 20 symbols of Crockford's base32 (100 random bits), shown in
// four groups of five: "7KQ2M-XR4PD-9VBTC-H3NWA". The alphabet has no I, L, O or U,
// so a code read aloud or typed from a printout survives the usual confusions, and
// it stays short enough for a QR code at the smallest size.
const (
	enrollmentSymbols = 20
	enrollmentGroup   = 5
	crockford         = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
)

// Limits of the device_info map a tablet sends at enrollment.
const (
	maxDeviceInfoEntries = 32
	maxDeviceInfoKey     = 64
	maxDeviceInfoValue   = 512
)

// newEnrollmentCode returns a fresh code in its display form.
func newEnrollmentCode() (string, error) {
	raw := make([]byte, enrollmentSymbols)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	var b strings.Builder
	for i, c := range raw {
		if i > 0 && i%enrollmentGroup == 0 {
			b.WriteByte('-')
		}
		b.WriteByte(crockford[c&31]) // 256 is a multiple of 32: uniform
	}
	return b.String(), nil
}

// canonicalCode turns what a person typed into the code's canonical form (upper
// case, no separators, O→0, I/L→1), or "" when it cannot be a code.
func canonicalCode(code string) string {
	if len(code) > 64 {
		return ""
	}
	var b strings.Builder
	for _, r := range strings.ToUpper(code) {
		switch r {
		case '-', ' ', '\t':
			continue
		case 'O':
			r = '0'
		case 'I', 'L':
			r = '1'
		}
		if r > utf8.RuneSelf || !strings.ContainsRune(crockford, r) {
			return ""
		}
		b.WriteRune(r)
	}
	if b.Len() != enrollmentSymbols {
		return ""
	}
	return b.String()
}

// CreateDevice registers a device in a project and returns it with its enrollment
// code, which is shown once and stored only as a sha256 hash; it can be used once,
// until EnrollmentTTL from now (Device.EnrollmentExpiresAt). Managers of the project
// and admins only.
//
// Errors: 404 project_not_found (also for a project the actor cannot see); 403
// forbidden; 422 invalid_device_name.
func (s *Service) CreateDevice(ctx context.Context, actor domain.Principal, projectID, name string) (domain.Device, string, error) {
	if err := s.requireManager(ctx, actor, projectID); err != nil {
		return domain.Device{}, "", err
	}
	if !validText(name, 1) || strings.TrimSpace(name) == "" {
		return domain.Device{}, "", invalid("invalid_device_name", "The device name is not acceptable", "/name",
			"must be 1 to 200 characters of text without control characters")
	}
	code, err := newEnrollmentCode()
	if err != nil {
		return domain.Device{}, "", err
	}
	now := s.now()
	d := domain.Device{
		ID: uuid.NewString(), ProjectID: projectID, Name: name,
		EnrollmentHash:      hashSecret(canonicalCode(code)),
		EnrollmentExpiresAt: now.Add(s.cfg.EnrollmentTTL),
		CreatedBy:           actor.Subject, CreatedAt: now,
	}
	if err := s.store.CreateDevice(ctx, d); err != nil {
		return domain.Device{}, "", storeErr("create device", err)
	}
	s.audit(ctx, domain.AuditEvent{Type: AuditDeviceCreated, Actor: actor.Subject, ProjectID: projectID,
		Subject: domain.DeviceSubject(d.ID), Detail: map[string]string{"name": name}})
	d.EnrollmentHash = ""
	return d, code, nil
}

// Enroll uses an enrollment code: the device becomes enrolled and gets a token pair
// of a new device family whose refresh token slides (DeviceRefreshTTL from every
// refresh). The device then acts as an enumerator of its project. info is what the
// tablet tells about itself (model, app version), kept with the device.
//
// Errors: 422 invalid_device_info (checked before the code is used up); 401
// invalid_enrollment_code for an unknown, used or expired code or a revoked device
// (one answer for all); 429 too_many_attempts after too many bad codes from one
// address. The code is 100 random bits, so the throttle is about noise, not
// guessing.
func (s *Service) Enroll(ctx context.Context, code string, info map[string]string, remoteAddr string) (TokenPair, domain.Device, error) {
	if err := checkDeviceInfo(info); err != nil {
		return TokenPair{}, domain.Device{}, err
	}
	akey := addressKey(remoteAddr)
	now := s.now()
	if akey != "" {
		ok, retry, first := s.enrollThrottle.reserve(akey, now)
		if !ok {
			if first {
				s.audit(ctx, domain.AuditEvent{Type: AuditEnrollFailed, RemoteAddr: remoteAddr,
					Detail: map[string]string{"reason": "throttled"}})
			}
			return TokenPair{}, domain.Device{}, errTooManyAttempts(retry)
		}
	}
	settle := func(failed bool) {
		if akey != "" {
			s.enrollThrottle.settle(akey, s.now(), failed)
		}
	}

	canon := canonicalCode(code)
	var d domain.Device
	err := domain.ErrNotFound
	if canon != "" {
		d, err = s.store.EnrollDevice(ctx, hashSecret(canon), info, now)
	}
	switch {
	case errors.Is(err, domain.ErrNotFound) || errors.Is(err, domain.ErrStale):
		settle(true)
		s.audit(ctx, domain.AuditEvent{Type: AuditEnrollFailed, RemoteAddr: remoteAddr,
			Detail: map[string]string{"reason": "invalid_code"}})
		return TokenPair{}, domain.Device{}, errInvalidEnrollmentCode()
	case err != nil:
		settle(false)
		return TokenPair{}, domain.Device{}, storeErr("enroll device", err)
	}
	settle(false)
	s.allow.drop(deviceKey(d.ID))

	subject := domain.DeviceSubject(d.ID)
	pair, fid, err := s.startSession(ctx, tokenSubject{subject: subject, deviceID: d.ID, projectID: d.ProjectID},
		s.now().Add(s.cfg.DeviceRefreshTTL))
	if err != nil {
		// The code is used up and the tablet has no tokens: a manager must make a
		// new device. Rare (the store failed between two writes); say so in the log.
		s.log.Error("identity: enrollment failed after using the code", "device", d.ID, "project", d.ProjectID, "err", err)
		return TokenPair{}, domain.Device{}, err
	}
	s.audit(ctx, domain.AuditEvent{Type: AuditDeviceEnrolled, Actor: subject, ProjectID: d.ProjectID, Subject: subject,
		RemoteAddr: remoteAddr, Detail: map[string]string{"family": fid}})
	d.EnrollmentHash = ""
	return pair, d, nil
}

func checkDeviceInfo(info map[string]string) error {
	bad := func(msg string) error {
		return invalid("invalid_device_info", "The device information is not acceptable", "/device_info", msg)
	}
	if len(info) > maxDeviceInfoEntries {
		return bad("must have at most 32 entries")
	}
	for k, v := range info {
		if k == "" || len(k) > maxDeviceInfoKey || !utf8.ValidString(k) {
			return bad("keys must be 1 to 64 bytes of UTF-8")
		}
		if len(v) > maxDeviceInfoValue || !utf8.ValidString(v) {
			return bad("values must be at most 512 bytes of UTF-8")
		}
	}
	return nil
}

// RevokeDevice revokes a device at once: its refresh tokens die, and its access
// tokens stop immediately on this instance and within RevocationCheckInterval on
// the others. Revoking a revoked device succeeds. Managers of the project and admins
// only.
//
// Errors: 404 project_not_found; 403 forbidden; 404 device_not_found (also for a
// device of another project).
func (s *Service) RevokeDevice(ctx context.Context, actor domain.Principal, projectID, deviceID string) error {
	if err := s.requireManager(ctx, actor, projectID); err != nil {
		return err
	}
	d, err := s.store.GetDevice(ctx, deviceID)
	switch {
	case errors.Is(err, domain.ErrNotFound) || (err == nil && d.ProjectID != projectID):
		return errDeviceNotFound()
	case err != nil:
		return storeErr("get device", err)
	}
	// Finish the revocation even if the manager's request is cancelled half way.
	ctx = context.WithoutCancel(ctx)
	if err := s.store.RevokeDevice(ctx, deviceID, s.now()); err != nil {
		return storeErr("revoke device", err)
	}
	s.allow.drop(deviceKey(deviceID))
	subject := domain.DeviceSubject(deviceID)
	if d.RevokedAt == nil {
		s.audit(ctx, domain.AuditEvent{Type: AuditDeviceRevoked, Actor: actor.Subject, ProjectID: projectID, Subject: subject})
	}
	return s.revokeSubject(ctx, actor.Subject, subject, projectID, "device_revoked")
}
