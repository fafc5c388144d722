package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/store/mongo"
	"github.com/fieldsync/fieldsync/internal/store/mongo/mongotest"
	"github.com/fieldsync/fieldsync/internal/store/sqlite"
)

// TestMain stops the embedded FerretDB after the tests.
func TestMain(m *testing.M) { os.Exit(mongotest.RunMain(m)) }

// sameJSON fails the test unless a and b encode to the same JSON.
func sameJSON(t *testing.T, what string, a, b any) {
	t.Helper()
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		t.Errorf("%s differ after the migration:\nSQLite:  %s\nMongoDB: %s", what, ja, jb)
	}
}

// TestMigrateToMongo fills a SQLite store through the API (users and
// members, tablets with sessions, a revoked tablet, forms with versions and a
// closed form, records with history, a quarantined item, the audit log),
// copies it with fieldsync migrate to the embedded MongoDB-protocol server,
// and finds everything there: the same lists, the feed in the same order, the
// history of every record, and a tablet's refresh token still good on a
// server started on the MongoDB store.
func TestMigrateToMongo(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := startMain(t, "-data-dir", dir, "-admin-password", testPassword)
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + s.m.Listener.Addr().String()
	admin, tablet := setUpProject(t, url, "survey")
	if _, err := admin.CreateUser(ctx, api.CreateUserRequest{Username: "ana", Password: "ana's long password"}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.SetMember(ctx, "survey", "ana", api.RoleAnalyst); err != nil {
		t.Fatal(err)
	}
	// A second version, and a closed form.
	v2 := strings.Replace(siteForm, `"Site"`, `"Site v2"`, 1)
	for _, step := range []struct{ method, path, body string }{
		{http.MethodPut, "/v1/projects/survey/forms/site/versions/2", v2},
		{http.MethodPost, "/v1/projects/survey/forms/site/versions/2/publish", ""},
		{http.MethodPut, "/v1/projects/survey/forms/old/versions/1", siteForm},
		{http.MethodPost, "/v1/projects/survey/forms/old/versions/1/publish", ""},
		{http.MethodPost, "/v1/projects/survey/forms/old/close", ""},
	} {
		var body any
		if step.body != "" {
			body = []byte(step.body)
		}
		if err := admin.Do(ctx, step.method, step.path, body, nil); err != nil {
			t.Fatalf("%s %s: %v", step.method, step.path, err)
		}
	}
	// Records, some edited, and one rejected item.
	subs := newSubs(30, "m")
	if _, err := tablet.Push(ctx, "survey", subs); err != nil {
		t.Fatal(err)
	}
	edits := make([]api.Submission, 10)
	for i := range edits {
		e := subs[i]
		out, err := tablet.Push(ctx, "survey", []api.Submission{e})
		if err != nil {
			t.Fatal(err)
		}
		base := out.Results[0].Rev
		e.BaseRev = &base
		e.Data = []byte(`{"site": "edited", "n": 99}`)
		e.ClientModifiedAt = time.Now().UTC()
		edits[i] = e
	}
	if _, err := tablet.Push(ctx, "survey", edits); err != nil {
		t.Fatal(err)
	}
	bad := newSubs(1, "bad")
	bad[0].Data = []byte(`{"n": 1}`) // no site: rejected
	if out, err := tablet.Push(ctx, "survey", bad); err != nil || out.Results[0].Status != api.PushRejected {
		t.Fatalf("bad push: %+v, %v", out, err)
	}
	// A review thread, a dismissed quarantine entry, and a record's file.
	state := api.ReviewApproved
	for _, c := range []api.CommentRequest{{Text: "checked with the team lead"}, {Text: "fine", ReviewState: &state}} {
		if _, err := admin.AddComment(ctx, "survey", subs[0].ID, c); err != nil {
			t.Fatal(err)
		}
	}
	ql, err := admin.ListQuarantine(ctx, "survey", api.QuarantineQuery{})
	if err != nil || len(ql.Items) != 1 {
		t.Fatalf("quarantine: %+v, %v", ql, err)
	}
	if err := admin.DismissQuarantine(ctx, "survey", ql.Items[0].ID, "a training interview"); err != nil {
		t.Fatal(err)
	}
	photo := []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00 a photo of the site")
	sum := sha256.Sum256(photo)
	withFile := newSubs(1, "file")
	withFile[0].Attachments = []api.Attachment{{Name: "site.jpg", SHA256: hex.EncodeToString(sum[:]), Size: int64(len(photo)), ContentType: "image/jpeg"}}
	if out, err := tablet.Push(ctx, "survey", withFile); err != nil || len(out.Results[0].MissingAttachments) != 1 {
		t.Fatalf("push with a file: %+v, %v", out, err)
	}
	if _, err := tablet.AppendAttachment(ctx, "survey", withFile[0].ID, "site.jpg", 0, bytes.NewReader(photo)); err != nil {
		t.Fatal(err)
	}
	// A revoked tablet, and a tablet whose session must survive the move.
	d, err := admin.CreateDevice(ctx, "survey", "lost tablet")
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.RevokeDevice(ctx, "survey", d.DeviceID); err != nil {
		t.Fatal(err)
	}
	d2, err := admin.CreateDevice(ctx, "survey", "kept tablet")
	if err != nil {
		t.Fatal(err)
	}
	anon, _ := api.NewClient(url)
	session, err := anon.Enroll(ctx, d2.EnrollmentCode, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}

	cfg := mongotest.Config(t)
	uri := strings.TrimRight(cfg.URI, "/") + "/" + cfg.Database
	var stderr strings.Builder
	if code := run(ctx, []string{"migrate", "-data-dir", dir, "-to", uri}, env(nil), &stderr); code != 0 {
		t.Fatalf("fieldsync migrate: exit %d\n%s", code, stderr.String())
	}
	// A second run refuses the filled database.
	stderr.Reset()
	if code := run(ctx, []string{"migrate", "-data-dir", dir, "-to", uri}, env(nil), &stderr); code != 1 || !strings.Contains(stderr.String(), "empty database") {
		t.Errorf("a second migrate: exit %d, %q", code, stderr.String())
	}

	src, err := sqlite.Open(ctx, filepath.Join(dir, dbFile))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := mongo.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	pair := func(what string, get func(domain.Store) (any, error)) {
		t.Helper()
		a, err := get(src)
		if err != nil {
			t.Fatalf("%s from SQLite: %v", what, err)
		}
		b, err := get(dst)
		if err != nil {
			t.Fatalf("%s from MongoDB: %v", what, err)
		}
		sameJSON(t, what, a, b)
	}
	pair("users", func(st domain.Store) (any, error) { return st.ListUsers(ctx) })
	pair("projects", func(st domain.Store) (any, error) { return st.ListProjects(ctx) })
	pair("memberships", func(st domain.Store) (any, error) { return st.ListMemberships(ctx, domain.MembershipFilter{}) })
	pair("devices", func(st domain.Store) (any, error) { return st.ListDevices(ctx, "survey") })
	pair("last seen", func(st domain.Store) (any, error) { return st.DeviceLastSeen(ctx, "survey") })
	pair("signing keys", func(st domain.Store) (any, error) { return st.ListSigningKeys(ctx) })
	pair("forms", func(st domain.Store) (any, error) {
		fs, err := st.ListForms(ctx, "survey")
		for i := range fs {
			fs[i].UpdatedAt = time.Time{} // publishing again sets it
			for j := range fs[i].Versions {
				fs[i].Versions[j].UpdatedAt = time.Time{}
			}
		}
		return fs, err
	})
	pair("quarantine", func(st domain.Store) (any, error) {
		items, _, err := st.ListQuarantine(ctx, "survey", domain.QuarantineFilter{}, "", 100)
		if len(items) != 1 || items[0].DismissedAt == nil {
			t.Errorf("quarantine: want the one dismissed entry, got %+v", items)
		}
		return items, err
	})
	pair("review thread", func(st domain.Store) (any, error) {
		entries, _, err := st.ListReviews(ctx, "survey", subs[0].ID, "", 100)
		for i := range entries {
			entries[i].ID = ""
		}
		if len(entries) != 2 {
			t.Errorf("review thread: %d entries, want 2", len(entries))
		}
		return entries, err
	})
	pair("attachment links", func(st domain.Store) (any, error) {
		return st.ListAttachmentLinks(ctx, "survey", []string{withFile[0].ID})
	})
	for name, st := range map[string]domain.Store{"SQLite": src, "MongoDB": dst} {
		b, err := st.OpenBlob(ctx, hex.EncodeToString(sum[:]))
		if err != nil {
			t.Fatalf("the photo on %s: %v", name, err)
		}
		got, err := io.ReadAll(b)
		b.Close()
		if err != nil || !bytes.Equal(got, photo) {
			t.Errorf("the photo on %s: %q, %v", name, got, err)
		}
	}
	pair("audit", func(st domain.Store) (any, error) {
		events, _, err := st.ListAudit(ctx, domain.AuditFilter{}, "", 1000)
		for i := range events {
			events[i].ID = ""
		}
		return events, err
	})
	feed := func(st domain.Store) (any, error) {
		page, err := st.Changes(ctx, domain.ChangesQuery{ProjectID: "survey", Limit: 1000})
		var out []domain.Record
		for _, r := range page.Records {
			r.Seq, r.Version = 0, 0
			out = append(out, r)
		}
		return out, err
	}
	pair("the feed", feed)
	// A tablet's cursor from the old store is below every new position: a
	// pull from it returns every record again, none is skipped.
	last, err := src.LastFeedPosition(ctx, "survey")
	if err != nil || last == 0 {
		t.Fatalf("last feed position: %d %v", last, err)
	}
	all, err := src.Changes(ctx, domain.ChangesQuery{ProjectID: "survey", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	after, err := dst.Changes(ctx, domain.ChangesQuery{ProjectID: "survey", Since: last, Limit: 1000})
	if err != nil || len(after.Records) != len(all.Records) {
		t.Errorf("a pull from the old store's last position: %d records, %v; want all %d (a tablet would skip the rest)", len(after.Records), err, len(all.Records))
	}
	for _, s := range subs[:12] {
		pair("history of "+s.ID, func(st domain.Store) (any, error) { return st.ListRevisions(ctx, "survey", s.ID) })
	}

	// A server on the MongoDB store, with the SQLite server's secret key:
	// the tablet's session goes on, and admin signs in.
	ms, err := startMain(t, "-data-dir", t.TempDir(), "-store", uri, "-secret-key-file", filepath.Join(dir, secretKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	murl := "http://" + ms.m.Listener.Addr().String()
	manon, _ := api.NewClient(murl)
	if _, err := manon.Refresh(ctx, session.RefreshToken); err != nil {
		t.Errorf("the tablet's refresh token on the migrated store: %v", err)
	}
	if _, err := manon.Login(ctx, "admin", testPassword); err != nil {
		t.Errorf("admin login on the migrated store: %v", err)
	}
}
