package httpapi

import (
	"bytes"
	"encoding/xml"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/api"
)

// TestOpenRosaBasicDoor: a Collect set up with the server URL
// /v1/projects/{project}/openrosa, a username and a password. Without
// credentials it gets the Basic challenge it answers; an enumerator's
// password lists the forms and submits (the record is the user's); a wrong
// password is 401, an analyst 403; every answer is an OpenRosaResponse with
// the OpenRosa headers.
func TestOpenRosaBasicDoor(t *testing.T) {
	e := newOREnv(t)
	e.ts.addUser(t, e.admin, "enu", "safety", api.RoleEnumerator)
	e.ts.addUser(t, e.admin, "ana", "safety", api.RoleAnalyst)
	base := "/v1/projects/safety/openrosa"
	call := func(method, path, user, password string, body *bytes.Buffer, contentType string) (*http.Response, []byte) {
		t.Helper()
		var req *http.Request
		if body != nil {
			req = e.ts.newRequest(t, method, path, body)
		} else {
			req = e.ts.newRequest(t, method, path, nil)
		}
		req.Header.Set("X-OpenRosa-Version", "1.0")
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if user != "" {
			req.SetBasicAuth(user, password)
		}
		resp, raw := e.ts.do(t, req)
		if resp.Header.Get("X-OpenRosa-Version") != "1.0" {
			t.Errorf("%s %s: no X-OpenRosa-Version", method, path)
		}
		return resp, raw
	}

	resp, raw := call(http.MethodGet, base+"/formList", "", "", nil, "")
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
		t.Fatalf("no credentials: %d %q %s, want 401 with a Basic challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), raw)
	}
	orMessage(t, raw)
	if resp, raw = call(http.MethodGet, base+"/formList", "enu", "not the password", nil, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong password: %d %s", resp.StatusCode, raw)
	}
	if resp, raw = call(http.MethodGet, base+"/formList", "ana", "pw-of-ana-1234", nil, ""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("an analyst: %d %s, want 403", resp.StatusCode, raw)
	}

	resp, raw = call(http.MethodGet, base+"/formList", "enu", "pw-of-enu-1234", nil, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("formList: %d %s", resp.StatusCode, raw)
	}
	var list xformsList
	if err := xml.Unmarshal(raw, &list); err != nil || len(list.Forms) == 0 {
		t.Fatalf("formList: %v %s", err, raw)
	}
	for _, f := range list.Forms {
		if !strings.Contains(f.DownloadURL, base+"/forms/") {
			t.Errorf("downloadUrl %q is not under the Basic door", f.DownloadURL)
		}
	}
	if resp, raw = call(http.MethodHead, base+"/submission", "enu", "pw-of-enu-1234", nil, ""); resp.StatusCode != http.StatusNoContent {
		t.Errorf("HEAD submission: %d %s", resp.StatusCode, raw)
	}

	id := uuid.NewString()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	w, _ := mw.CreateFormFile("xml_submission_file", "submission.xml")
	_, _ = w.Write([]byte(incident(id, "", "Stones thrown at the market.")))
	_ = mw.Close()
	resp, raw = call(http.MethodPost, base+"/submission", "enu", "pw-of-enu-1234", &b, mw.FormDataContentType())
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("submission: %d %s", resp.StatusCode, raw)
	}
	if rec := e.record(t, id); rec.CreatedBy != "enu" {
		t.Errorf("the record was made by %q, want the signed-in enumerator", rec.CreatedBy)
	}
}
