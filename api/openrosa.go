package api

import (
	"context"
	"net/http"
	"net/url"
)

// OpenRosaKeyResponse is the answer of POST
// /v1/projects/{project}/devices/{device_id}/openrosa-key: the server URL to
// type into ODK Collect (it holds the device's key, shown this once), and the
// same as Collect's settings QR code payload.
type OpenRosaKeyResponse struct {
	DeviceID  string `json:"device_id"`
	ServerURL string `json:"server_url"`
	// QR is the text of Collect's settings QR code: base64 of the
	// zlib-compressed settings JSON.
	QR string `json:"qr"`
}

// OpenRosaInfo tells how a published version reaches ODK Collect.
type OpenRosaInfo struct {
	// Warnings name keywords the XForm cannot express: Collect does not check
	// them, the server still does when the submission arrives.
	Warnings []string `json:"warnings"`
	// Reasons name shapes Collect cannot produce; a version with any is not in
	// Collect's form list (it works over the JSON protocol all the same).
	Reasons []string `json:"reasons"`
}

// CreateOpenRosaKey calls POST
// /v1/projects/{project}/devices/{device_id}/openrosa-key (managers): a fresh
// ODK Collect key for the device, replacing any earlier one.
func (c *Client) CreateOpenRosaKey(ctx context.Context, project, deviceID string) (OpenRosaKeyResponse, error) {
	var out OpenRosaKeyResponse
	err := c.Do(ctx, http.MethodPost, "/v1/projects/"+url.PathEscape(project)+"/devices/"+url.PathEscape(deviceID)+"/openrosa-key", nil, &out)
	return out, err
}

// String redacts the key (it is in ServerURL and QR), so that a response
// printed by mistake leaks nothing.
func (r OpenRosaKeyResponse) String() string { return "OpenRosaKeyResponse{[redacted]}" }
