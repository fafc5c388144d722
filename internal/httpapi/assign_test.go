package httpapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/api"
)

// TestAssignOnlyToWhoCanReceive: a record handed to a misspelt user, a user of
// no role in the project, a device of another project or a revoked tablet
// would reach nobody; the patch names each bad assignee and changes nothing.
func TestAssignOnlyToWhoCanReceive(t *testing.T) {
	e := newSyncEnv(t)
	s := e.newSub("survey", `{"name": "Amina"}`)
	e.wantStatuses(t, e.push(t, e.devA.token, s), api.PushCreated)
	path := "/v1/projects/" + syncProject + "/records/" + s.ID

	resp, body := e.ts.call(t, http.MethodPatch, path, e.analyst, api.RecordPatch{AssignedTo: &[]string{e.devB.subject, "anna", "device:no-such-tablet"}})
	p := problemOf(t, resp, body, http.StatusUnprocessableEntity, "invalid_patch")
	if len(p.Errors) != 2 || p.Errors[0].Path != "/assigned_to/1" || p.Errors[1].Path != "/assigned_to/2" || !strings.Contains(p.Errors[0].Message, `"anna"`) {
		t.Errorf("findings %+v, want the two bad names", p.Errors)
	}
	if rec := e.record(t, e.analyst, s.ID); len(rec.AssignedTo) != 0 {
		t.Errorf("a refused patch assigned the record: %v", rec.AssignedTo)
	}

	// A member (the analyst "ana") and a tablet of the project are fine.
	var patched api.Record
	e.ts.want(t, http.StatusOK, http.MethodPatch, path, e.analyst, api.RecordPatch{AssignedTo: &[]string{"ana", e.devB.subject}}, &patched)
	if len(patched.AssignedTo) != 2 {
		t.Errorf("assigned_to %v", patched.AssignedTo)
	}
}
