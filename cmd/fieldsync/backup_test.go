package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/store/sqlite"
)

const testPassword = "a long enough password"

// siteForm is a small form definition for pushes.
const siteForm = `{"title": "Site", "conflict_policy": "merge", "schema": {"$schema": "https://json-schema.org/draft/2020-12/schema",
	"type": "object", "properties": {"site": {"type": "string"}, "n": {"type": "integer"}}, "required": ["site"]}}`

// setUpProject creates project p with the form "site" published and an
// enrolled tablet, through the API of the server at url; it returns the
// admin's and the tablet's clients.
func setUpProject(t *testing.T, url, p string) (admin, tablet *api.Client) {
	t.Helper()
	ctx := context.Background()
	anon, _ := api.NewClient(url)
	tok, err := anon.Login(ctx, "admin", testPassword)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	admin, _ = api.NewClient(url, api.WithToken(tok.AccessToken))
	if _, err := admin.CreateProject(ctx, p, "Backup test"); err != nil {
		t.Fatal(err)
	}
	base := "/v1/projects/" + p + "/forms/site/versions/1"
	if err := admin.Do(ctx, http.MethodPut, base, []byte(siteForm), nil); err != nil {
		t.Fatalf("put form: %v", err)
	}
	if err := admin.Do(ctx, http.MethodPost, base+"/publish", nil, nil); err != nil {
		t.Fatalf("publish: %v", err)
	}
	d, err := admin.CreateDevice(ctx, p, "tablet")
	if err != nil {
		t.Fatal(err)
	}
	dt, err := anon.Enroll(ctx, d.EnrollmentCode, nil)
	if err != nil {
		t.Fatal(err)
	}
	tablet, _ = api.NewClient(url, api.WithToken(dt.AccessToken))
	return admin, tablet
}

// newSubs makes n new records of the form "site".
func newSubs(n int, tag string) []api.Submission {
	subs := make([]api.Submission, n)
	for i := range subs {
		subs[i] = api.Submission{ID: uuid.NewString(), Form: "site", FormVersion: "1", ClientModifiedAt: time.Now().UTC(),
			Data: fmt.Appendf(nil, `{"site": "%s-%d", "n": %d}`, tag, i, i)}
	}
	return subs
}

// TestBackupDuringPushesAndRestore backs the store up with fieldsync backup
// while tablets push without pause, restores the backup into a fresh data
// directory with fieldsync restore, and finds there every record that was
// acknowledged before the backup began, at its acknowledged revision, and the
// attachment-like files of the data directory. fieldsync restore refuses the
// data directory of the running server.
func TestBackupDuringPushesAndRestore(t *testing.T) {
	dir := t.TempDir()
	// A file of the data directory besides the store (as attachments are),
	// and the secret, which must stay out of the backup.
	if err := os.MkdirAll(filepath.Join(dir, "media", "ab"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "media", "ab", "photo.jpg"), []byte("jpeg bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := startMain(t, "-data-dir", dir, "-admin-password", testPassword)
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + s.m.Listener.Addr().String()
	_, tablet := setUpProject(t, url, "survey")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu      sync.Mutex
		acked   = map[string]string{}
		pushes  atomic.Int64
		wg      sync.WaitGroup
		started = make(chan struct{})
	)
	for p := range 3 {
		wg.Go(func() {
			for b := 0; ctx.Err() == nil; b++ {
				out, err := tablet.Push(ctx, "survey", newSubs(25, fmt.Sprintf("p%d-b%d", p, b)))
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("push: %v", err)
					}
					return
				}
				mu.Lock()
				for _, r := range out.Results {
					acked[r.ID] = r.Rev
				}
				mu.Unlock()
				if pushes.Add(1) == 6 {
					close(started)
				}
			}
		})
	}
	<-started
	mu.Lock()
	before := make(map[string]string, len(acked))
	for id, rev := range acked {
		before[id] = rev
	}
	mu.Unlock()
	pushesBefore := pushes.Load()
	file := filepath.Join(t.TempDir(), "fieldsync-backup.tar.gz")
	var stderr strings.Builder
	if code := run(context.Background(), []string{"backup", "-data-dir", dir, file}, env(nil), &stderr); code != 0 {
		t.Fatalf("fieldsync backup: exit %d\n%s", code, stderr.String())
	}
	pushesDuring := pushes.Load() - pushesBefore

	// Restoring under the running server is refused, and changes nothing.
	stderr.Reset()
	if code := run(context.Background(), []string{"restore", "-data-dir", dir, file}, env(nil), &stderr); code != 1 || !strings.Contains(stderr.String(), "in use") {
		t.Errorf("restore under a running server: exit %d, %q; want 1 and that the store is in use", code, stderr.String())
	}
	cancel()
	wg.Wait()
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d records acknowledged before the backup, %d pushes during it, %d records acknowledged in all", len(before), pushesDuring, len(acked))

	// Restore into a new data directory, as on a new machine.
	restored := t.TempDir()
	stderr.Reset()
	if code := run(context.Background(), []string{"restore", "-data-dir", restored, file}, env(nil), &stderr); code != 0 {
		t.Fatalf("fieldsync restore: exit %d\n%s", code, stderr.String())
	}
	if b, err := os.ReadFile(filepath.Join(restored, "media", "ab", "photo.jpg")); err != nil || string(b) != "jpeg bytes" {
		t.Errorf("the data directory's other files were not restored: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(restored, secretKeyFile)); err == nil {
		t.Errorf("the secret key was in the backup")
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(restored, dbFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ids := make([]string, 0, len(before))
	for id := range before {
		ids = append(ids, id)
	}
	got, err := st.GetRecords(context.Background(), "survey", ids)
	if err != nil {
		t.Fatal(err)
	}
	var lost []string
	for id, rev := range before {
		if r, ok := got[id]; !ok || r.Rev != rev {
			lost = append(lost, id)
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d of %d records acknowledged before the backup are not in it: %v", len(lost), len(before), lost[:min(5, len(lost))])
	}

	// Restoring over a stopped server's store keeps the old store aside.
	stderr.Reset()
	var out strings.Builder
	m := NewMain(Config{DataDir: dir, Store: "sqlite", LogLevel: "info"}, io.Discard)
	m.Out = &out
	if err := m.Restore(context.Background(), file); err != nil {
		t.Fatalf("restore over a stopped server: %v", err)
	}
	if !strings.Contains(out.String(), ".replaced-") {
		t.Errorf("restore did not say where the replaced store is: %q", out.String())
	}
	matches, _ := filepath.Glob(filepath.Join(dir, dbFile+".replaced-*"))
	if len(matches) == 0 {
		t.Error("the replaced store was not kept")
	}
}

// TestRestoreRefusesGarbage: a file that is not a backup changes nothing.
func TestRestoreRefusesGarbage(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(t.TempDir(), "not-a-backup.tar.gz")
	if err := os.WriteFile(bad, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	if code := run(context.Background(), []string{"restore", "-data-dir", dir, bad}, env(nil), &stderr); code != 1 || !strings.Contains(stderr.String(), "not a fieldsync backup") {
		t.Errorf("restore of garbage: exit %d, %q", code, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, dbFile)); err == nil {
		t.Error("a store appeared")
	}
	// Nor does a backup of a directory without a store make one.
	stderr.Reset()
	if code := run(context.Background(), []string{"backup", "-data-dir", dir, filepath.Join(t.TempDir(), "b.tar.gz")}, env(nil), &stderr); code != 1 || !strings.Contains(stderr.String(), "no store to back up") {
		t.Errorf("backup of an empty directory: exit %d, %q", code, stderr.String())
	}
}
