package api

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
