package console

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/identity"
)

// devicesView is the data of manager/devices.
type devicesView struct {
	Devices      []identity.DeviceView
	Cursor, Next string
	// Name is the add form's value after a refusal.
	Name string
}

// devicesPage lists a project's tablets with their state and last sync, as
// GET /v1/projects/{project}/devices, with the form that adds one.
func (c *Console) devicesPage(w http.ResponseWriter, r *http.Request) error {
	pc := pageFrom(r.Context())
	cursor := r.URL.Query().Get("cursor")
	ds, next, err := c.cfg.Identity.ListDevices(r.Context(), principal(r), pc.project, cursor, pageSize)
	if err != nil {
		return err
	}
	v := devicesView{Devices: ds, Cursor: cursor, Next: next}
	if r.Method == http.MethodPost {
		v.Name = r.PostFormValue("name")
	}
	c.render(w, r, http.StatusOK, "manager/devices", "manager.devices.title", v)
	return nil
}

// enrolmentView is the data of manager/enrolment.
type enrolmentView struct {
	DeviceID, Name, Code, Server string
	ExpiresAt                    time.Time
	// QR is a PNG data: URL of the QR code the tablet scans.
	QR template.URL
}

// enrollmentQR is what the tablet's QR code holds, the same as fsctl device
// add prints.
type enrollmentQR struct {
	Server string `json:"server"`
	Code   string `json:"code"`
}

// createDevice adds a tablet, as POST /v1/projects/{project}/devices, and
// shows its one-use enrolment code, this once, as text and as a QR code. The
// page is not cached (no-store), and its URL holds no secret.
func (c *Console) createDevice(w http.ResponseWriter, r *http.Request) error {
	pc := pageFrom(r.Context())
	d, code, err := c.cfg.Identity.CreateDevice(r.Context(), principal(r), pc.project, r.PostFormValue("name"))
	if err != nil {
		return c.formFailed(w, r, err, c.devicesPage)
	}
	server := c.cfg.API.BaseURL(r)
	payload, err := json.Marshal(enrollmentQR{Server: server, Code: code})
	if err != nil {
		return err
	}
	qr, err := qrDataURL(string(payload))
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusCreated, "manager/enrolment", "manager.enrolment.title", enrolmentView{
		DeviceID: d.ID, Name: d.Name, Code: code, Server: server, ExpiresAt: d.EnrollmentExpiresAt, QR: qr})
	return nil
}

// qrDataURL draws text as a QR code, a PNG data: URL for an img element
// (the CSP allows data: images; nothing leaves the page).
func qrDataURL(text string) (template.URL, error) {
	png, err := qrcode.Encode(text, qrcode.Medium, 320)
	if err != nil {
		return "", fmt.Errorf("console: making the QR code: %w", err)
	}
	// A data: URL the server made itself, from bytes it encoded: safe.
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png)), nil
}

// collectView is the data of manager/collect.
type collectView struct {
	Device    domain.Device
	ServerURL string
	QR        template.URL
}

// collectKey makes a device's fresh ODK Collect key, as POST
// /v1/projects/{project}/devices/{device_id}/openrosa-key (the same code),
// and shows Collect's settings QR code; the earlier key stops working.
func (c *Console) collectKey(w http.ResponseWriter, r *http.Request) error {
	pc := pageFrom(r.Context())
	out, err := c.cfg.API.CreateOpenRosaKey(r, principal(r), pc.project, pathVar(r, "device_id"))
	if err != nil {
		return c.formFailed(w, r, err, c.devicesPage)
	}
	d, err := c.projectDevice(r)
	if err != nil {
		return err
	}
	qr, err := qrDataURL(out.QR)
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusCreated, "manager/collect", "manager.collect.title", collectView{Device: d, ServerURL: out.ServerURL, QR: qr})
	return nil
}

// revokeView is the data of manager/revoke.
type revokeView struct {
	Device domain.Device
}

// projectDevice returns a device of the page's project, or 404
// device_not_found (also for another project's device, as the API answers).
func (c *Console) projectDevice(r *http.Request) (domain.Device, error) {
	d, err := c.cfg.Store.GetDevice(r.Context(), pathVar(r, "device_id"))
	if errors.Is(err, domain.ErrNotFound) || (err == nil && d.ProjectID != pageFrom(r.Context()).project) {
		return domain.Device{}, domain.Errorf(domain.KindNotFound, "device_not_found", "Device not found")
	}
	return d, err
}

// revokeDevicePage asks to confirm a revocation, which cannot be undone.
func (c *Console) revokeDevicePage(w http.ResponseWriter, r *http.Request) error {
	d, err := c.projectDevice(r)
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, "manager/revoke", "manager.revoke.title", revokeView{Device: d})
	return nil
}

// revokeDevice revokes a tablet, as DELETE
// /v1/projects/{project}/devices/{device_id}: its tokens stop working.
func (c *Console) revokeDevice(w http.ResponseWriter, r *http.Request) error {
	pc := pageFrom(r.Context())
	if err := c.cfg.Identity.RevokeDevice(r.Context(), principal(r), pc.project, pathVar(r, "device_id")); err != nil {
		return c.formFailed(w, r, err, c.devicesPage)
	}
	http.Redirect(w, r, "/projects/"+url.PathEscape(pc.project)+"/devices?msg=device_revoked", http.StatusSeeOther)
	return nil
}
