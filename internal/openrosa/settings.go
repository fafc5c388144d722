package openrosa

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/json"
)

// SettingsPayload is the text of ODK Collect's settings QR code for a server
// URL: base64 of the zlib-deflated settings JSON, the format Collect's "Scan
// QR code" reads (openrosa.md §1). projectName names the Collect project.
func SettingsPayload(serverURL, projectName string) (string, error) {
	settings := map[string]any{
		"general": map[string]any{"server_url": serverURL},
		"admin":   map[string]any{},
		"project": map[string]any{"name": projectName},
	}
	raw, err := json.Marshal(settings)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	zw := zlib.NewWriter(&b)
	if _, err := zw.Write(raw); err != nil {
		return "", err
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b.Bytes()), nil
}
