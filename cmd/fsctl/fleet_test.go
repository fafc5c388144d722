package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/store/mongo/mongotest"
	"github.com/fieldsync/fieldsync/internal/store/sqlite"
)

// TestMain stops the embedded FerretDB of the fleet's MongoDB run.
func TestMain(m *testing.M) { os.Exit(mongotest.RunMain(m)) }

// newFleetCLI logs a CLI in as admin on a real server on st (wired as
// cmd/fieldsync wires it), its handler wrapped by wrap unless nil.
func newFleetCLI(t *testing.T, st domain.Store, wrap func(http.Handler) http.Handler) *cli {
	t.Helper()
	srv := newServerOn(t, st, wrap)
	c := &cli{t: t, env: map[string]string{"FSCTL_CONFIG": filepath.Join(t.TempDir(), "fsctl.json")}}
	c.must(adminPassword+"\n", "login", "--server", srv.URL, "--username", "admin")
	return c
}

func openSQLite(t *testing.T) (domain.Store, string) {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "fieldsync.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st, dir
}

// runFleet runs fsctl load --json and decodes its report.
func runFleet(t *testing.T, c *cli, args ...string) (int, loadReport, string) {
	t.Helper()
	code, out, errOut := c.run("", append([]string{"load", "--json", "--project", "fleet", "--setup", "--seed", "42"}, args...)...)
	var rep loadReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("load --json: exit %d, not one JSON object (%v):\n%s\n%s", code, err, out, errOut)
	}
	return code, rep, errOut
}

// checkFleet asserts what a user of the report relies on: everything
// acknowledged is there once, the flaky link was exercised, the analysts'
// edits made conflicts, and each was recorded.
func checkFleet(t *testing.T, code int, rep loadReport, errOut string, total int) {
	t.Helper()
	if code != 0 || !rep.OK {
		t.Errorf("exit %d, ok %v: %s", code, rep.OK, errOut)
	}
	if rep.Lost != 0 || rep.Duplicated != 0 || rep.Forked != 0 || rep.ConflictsUnrecorded != 0 {
		t.Errorf("lost %d, duplicated %d, forked %d, conflicts not recorded %d: %v",
			rep.Lost, rep.Duplicated, rep.Forked, rep.ConflictsUnrecorded, rep.Examples)
	}
	// Every new record was acknowledged (created, or unchanged when its
	// batch was sent again after a lost answer).
	if rep.Records != total || rep.Statuses[api.PushCreated] == 0 {
		t.Errorf("created %d, verified %d records; want %d", rep.Statuses[api.PushCreated], rep.Records, total)
	}
	if rep.Statuses[api.PushRejected]+rep.Statuses[api.PushForbidden] != 0 {
		t.Errorf("generated records refused: %v", rep.Statuses)
	}
	if rep.Cuts["mid_body"] == 0 || rep.Cuts["before_answer"] == 0 || rep.Retries == 0 {
		t.Errorf("--flaky cut nothing: cuts %v, retries %d", rep.Cuts, rep.Retries)
	}
	// A batch whose answer was cut after the server applied it comes back
	// as unchanged when it is sent again.
	if rep.Statuses[api.PushUnchanged] == 0 {
		t.Errorf("no retried item answered unchanged: %v", rep.Statuses)
	}
	if rep.Conflicts == 0 || rep.Statuses[api.PushConflict] != rep.Conflicts {
		t.Errorf("conflicts %d (statuses %v): the analysts' edits made none", rep.Conflicts, rep.Statuses)
	}
	if rep.Statuses[api.PushUpdated] == 0 || rep.Statuses[api.PushMerged] == 0 {
		t.Errorf("no updates or merges: %v", rep.Statuses)
	}
	if rep.Latency["push"].N == 0 || rep.Latency["pull"].N == 0 || rep.Latency["record_put"].N == 0 || rep.PushRate <= 0 || rep.PullRate <= 0 {
		t.Errorf("figures missing: %+v", rep)
	}
}

// TestFsctlLoadFleet: a fleet of tablets on a link that drops a fifth of
// the requests, against a real server on SQLite, loses and doubles nothing.
func TestFsctlLoadFleet(t *testing.T) {
	st, dir := openSQLite(t)
	c := newFleetCLI(t, st, nil)
	code, rep, errOut := runFleet(t, c, "--devices", "6", "--batch", "10", "--total", "200",
		"--flaky", "0.25", "--edits", "0.5", "--shared", "0.3", "--data-dir", dir)
	checkFleet(t, code, rep, errOut, 200)
	if rep.ServerPeakRSS <= 0 {
		t.Errorf("server peak RSS %d: /metrics not read", rep.ServerPeakRSS)
	}
	if rep.DataDirBytes <= 0 || rep.BytesPerRecord <= 0 {
		t.Errorf("data dir %d bytes, %f per record", rep.DataDirBytes, rep.BytesPerRecord)
	}
	if n := c.must("", "device", "list", "fleet"); strings.Count(n, "revoked") != 6 {
		t.Errorf("the tablets are not revoked:\n%s", n)
	}
}

// TestFsctlLoadFleetMongo: the same fleet against the MongoDB store (over
// the wire to embedded FerretDB): a correctness run, small.
func TestFsctlLoadFleetMongo(t *testing.T) {
	c := newFleetCLI(t, mongotest.Open(t), nil)
	code, rep, errOut := runFleet(t, c, "--devices", "2", "--batch", "5", "--total", "20",
		"--flaky", "0.3", "--edits", "0.6", "--shared", "0.5")
	t.Logf("%+v %+v", rep.Statuses, rep.Latency)
	// Too few requests to be sure a cut, a retry or a conflict happens (the
	// dice are shared by the tablets, whose requests interleave as they
	// may: a run in CI had no retry): what must hold is that nothing is
	// lost, doubled or left unrecorded. TestFsctlLoadFleet checks the cuts.
	if code != 0 || !rep.OK || rep.Records != 20 || rep.Lost+rep.Duplicated+rep.Forked+rep.ConflictsUnrecorded != 0 {
		t.Errorf("exit %d, ok %v, %d records, %d retries, %d conflicts: %s %v", code, rep.OK, rep.Records, rep.Retries, rep.Conflicts, errOut, rep.Examples)
	}
}

// TestFsctlLoadFleetCatchesLoss: the verification is not a formality. A
// server whose final pull leaves out one record and carries another twice,
// or that answers a push with a revision it did not store, fails the run.
func TestFsctlLoadFleetCatchesLoss(t *testing.T) {
	var lie atomic.Value // "pull" or "ack"
	lie.Store("")
	var lied atomic.Bool
	wrap := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tablet := strings.HasSuffix(r.UserAgent(), " load")
			isPull := strings.HasSuffix(r.URL.Path, "/sync/pull")
			isPush := strings.HasSuffix(r.URL.Path, "/sync/push")
			r.Header.Del("Accept-Encoding") // to read the answers here
			switch {
			case lie.Load() == "pull" && isPull && !tablet: // the analyst's final pull
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				var page map[string]any
				if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
					t.Error(err)
				}
				if ch, _ := page["changes"].([]any); len(ch) > 2 && lied.CompareAndSwap(false, true) {
					page["changes"] = append(ch[1:], ch[1]) // the first lost, the second doubled
				}
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(page)
			case lie.Load() == "ack" && isPush && tablet:
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				var res api.PushResponse
				if err := json.Unmarshal(rec.Body.Bytes(), &res); err == nil && len(res.Results) > 0 && lied.CompareAndSwap(false, true) {
					res.Results[0].Rev = "9-" + strings.Repeat("0", 32) // an acknowledgement of nothing stored
				}
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(res)
			default:
				h.ServeHTTP(w, r)
			}
		})
	}
	st, _ := openSQLite(t)
	c := newFleetCLI(t, st, wrap)
	for _, tc := range []struct{ lie, want string }{
		{"pull", "1 lost, 1 duplicated"},
		{"ack", "1 lost, 0 duplicated"},
	} {
		lie.Store(tc.lie)
		lied.Store(false)
		code, rep, errOut := runFleet(t, c, "--devices", "2", "--batch", "5", "--total", "20")
		if code != 1 || rep.OK || !strings.Contains(errOut, "verification failed: "+tc.want) {
			t.Errorf("a server that lies (%s): exit %d, ok %v, stderr %q; want exit 1 with %q", tc.lie, code, rep.OK, errOut, tc.want)
		}
	}
}

// TestFsctlLoadFleetDuration: a run bounded by time instead of a total stops
// on time and verifies what was acknowledged until then.
func TestFsctlLoadFleetDuration(t *testing.T) {
	st, _ := openSQLite(t)
	c := newFleetCLI(t, st, nil)
	code, rep, errOut := runFleet(t, c, "--devices", "2", "--batch", "5", "--total", "0", "--duration", "500ms", "--flaky", "0.1")
	if code != 0 || !rep.OK || rep.Records == 0 || rep.Lost != 0 {
		t.Errorf("exit %d, ok %v, %d records, %d lost: %s", code, rep.OK, rep.Records, rep.Lost, errOut)
	}
}
