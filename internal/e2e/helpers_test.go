package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/forms"
	"github.com/fieldsync/fieldsync/internal/httpapi"
	"github.com/fieldsync/fieldsync/internal/identity"
	"github.com/fieldsync/fieldsync/internal/records"
	"github.com/fieldsync/fieldsync/internal/store/mongo"
	"github.com/fieldsync/fieldsync/internal/store/mongo/mongotest"
	"github.com/fieldsync/fieldsync/internal/store/sqlite"
	"github.com/fieldsync/fieldsync/schemas"
)

// TestMain stops the embedded FerretDB (if a test started one) after the tests.
func TestMain(m *testing.M) { os.Exit(mongotest.RunMain(m)) }

// adminPassword is the password of the bootstrapped user admin everywhere here.
const adminPassword = "e2e-admin-password"

// instance is one fieldsync server, wired as cmd/fieldsync's Main.Run wires it
// (instrumented store, identity with bootstrap, forms, records, httpapi with the
// real router and middleware), served by an httptest server on a real TCP port.
// Two instances on two stores opened on one database share nothing but the
// database, like two server processes behind a load balancer.
type instance struct {
	name  string
	srv   *httptest.Server
	store domain.Store // the instrumented store the services use
	reg   *prometheus.Registry
	ids   *identity.Service
	forms *forms.Service
	recs  *records.Service
}

// startInstance starts a server on st (which the caller closes) and stops it when
// the test ends, before the caller's earlier cleanups close the store.
func startInstance(tb testing.TB, name string, st domain.Store, logger *slog.Logger) *instance {
	tb.Helper()
	ctx := context.Background()
	reg := registryOf(st)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	store := st

	ids, err := identity.New(ctx, identity.Config{Store: store, Logger: logger, Issuer: "fieldsync"})
	if err != nil {
		tb.Fatalf("%s: identity.New: %v", name, err)
	}
	if _, err := ids.Bootstrap(ctx, adminPassword); err != nil {
		tb.Fatalf("%s: Bootstrap: %v", name, err)
	}
	fs := forms.NewService(forms.ServiceConfig{Store: store})
	recs := records.New(records.Config{Store: store, Forms: records.FormsOf(fs), Logger: logger})
	h, err := httpapi.New(httpapi.Config{
		Store:         store,
		Logger:        logger,
		MaxBodyBytes:  httpapi.DefaultMaxBodyBytes,
		Registry:      reg,
		Authenticator: ids,
		Identity:      ids,
		Forms:         fs,
		Records:       recs,
	})
	if err != nil {
		tb.Fatalf("%s: httpapi.New: %v", name, err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ReadHeaderTimeout = 10 * time.Second
	srv.Config.IdleTimeout = 120 * time.Second
	srv.Start()
	tb.Cleanup(srv.Close)
	return &instance{name: name, srv: srv, store: store, reg: reg, ids: ids, forms: fs, recs: recs}
}

// storeTimings summarises the instance's store metrics (count and mean time of
// the named operations), for the test log.
func (in *instance) storeTimings(ops ...string) string {
	mfs, err := in.reg.Gather()
	if err != nil {
		return err.Error()
	}
	var parts []string
	for _, mf := range mfs {
		if mf.GetName() != "fieldsync_store_operation_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			op := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "op" {
					op = l.GetValue()
				}
			}
			if !slices.Contains(ops, op) {
				continue
			}
			h := m.GetHistogram()
			if n := h.GetSampleCount(); n > 0 {
				mean := time.Duration(h.GetSampleSum() / float64(n) * float64(time.Second))
				parts = append(parts, fmt.Sprintf("%s n=%d mean=%v", op, n, mean.Round(10*time.Microsecond)))
			}
		}
	}
	slices.Sort(parts)
	return in.name + ": " + strings.Join(parts, ", ")
}

// storeRegistries holds the metrics registry of each store the pair openers
// opened (domain.Store → *prometheus.Registry): a store reports its timings to
// the observer it is opened with, before the instance that serves it exists.
var storeRegistries sync.Map

// storeMetrics makes the registry and store observer of a store to be opened;
// remember hands the opened store to startInstance.
func storeMetrics(tb testing.TB) (observe func(string, time.Duration), remember func(domain.Store)) {
	tb.Helper()
	reg := prometheus.NewRegistry()
	observe, err := httpapi.StoreMetrics(reg)
	if err != nil {
		tb.Fatal(err)
	}
	return observe, func(st domain.Store) {
		storeRegistries.Store(st, reg)
		tb.Cleanup(func() { storeRegistries.Delete(st) })
	}
}

// registryOf returns the registry storeMetrics made for st, or a new one.
func registryOf(st domain.Store) *prometheus.Registry {
	if reg, ok := storeRegistries.Load(st); ok {
		return reg.(*prometheus.Registry)
	}
	return prometheus.NewRegistry()
}

// backend opens two independent stores on one fresh database.
type backend struct {
	name string
	open func(tb testing.TB) [2]domain.Store
	// small says the backend is slow with much data (FerretDB scans whole
	// collections): tests use their small sizes.
	small bool
}

func backends() []backend {
	return []backend{
		{name: "sqlite", open: openSQLitePair},
		{name: "mongodb", open: openMongoPair, small: true},
	}
}

// openSQLitePair opens the same SQLite file twice: two connection pools, two
// write gates, the file's lock the only thing they share.
func openSQLitePair(tb testing.TB) [2]domain.Store {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "fieldsync.db")
	var out [2]domain.Store
	for i := range out {
		observe, remember := storeMetrics(tb)
		st, err := sqlite.OpenConfig(context.Background(), sqlite.Config{Path: path, Observe: observe})
		if err != nil {
			tb.Fatalf("sqlite.Open #%d: %v", i, err)
		}
		remember(st)
		tb.Cleanup(func() {
			if err := st.Close(); err != nil {
				tb.Errorf("close sqlite store #%d: %v", i, err)
			}
		})
		out[i] = st
	}
	return out
}

// openMongoPair opens the same database of the test MongoDB server (embedded
// FerretDB, or FIELDSYNC_TEST_MONGO_URI) twice: two clients, two sweepers. The
// database is dropped when the test ends.
func openMongoPair(tb testing.TB) [2]domain.Store {
	tb.Helper()
	cfg := mongotest.Config(tb) // short VoidGrace, so a stalled reader voids soon
	logs := &syncBuffer{}
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	tb.Cleanup(func() {
		s := logs.String()
		tb.Logf("mongo store warnings: %d voided positions, %d completed interrupted writes, %d lines",
			strings.Count(s, "voided a feed position"), strings.Count(s, "completed an interrupted"), strings.Count(s, "\n"))
	})
	var out [2]domain.Store
	for i := range out {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		observe, remember := storeMetrics(tb)
		cfg.Observe = observe
		st, err := mongo.Open(ctx, cfg)
		cancel()
		if err != nil {
			tb.Fatalf("mongo.Open #%d: %v", i, err)
		}
		remember(st)
		tb.Cleanup(func() {
			if err := st.Close(); err != nil {
				tb.Errorf("close mongo store #%d: %v", i, err)
			}
		})
		out[i] = st
	}
	return out
}

// syncBuffer is a bytes.Buffer safe for concurrent writers (the servers' log).
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// cluster is two instances on one database and a project set up on them.
type cluster struct {
	tb      testing.TB
	inst    [2]*instance
	hc      *http.Client
	project string
	admin   [2]*api.Client
}

// newCluster starts one instance on each store (in turn, so the second finds
// the signing key and the admin the first created), logs the admin in through
// the first and creates the project through the second. The servers log
// warnings and errors to a buffer that is printed when the test fails.
func newCluster(tb testing.TB, stores [2]domain.Store) *cluster {
	tb.Helper()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	tb.Cleanup(func() {
		if tb.Failed() {
			s := logs.String()
			if len(s) > 8000 {
				s = "…" + s[len(s)-8000:]
			}
			tb.Logf("server log (warnings and errors):\n%s", s)
		}
	})
	c := &cluster{tb: tb, project: "survey"}
	for i := range c.inst {
		c.inst[i] = startInstance(tb, fmt.Sprintf("instance-%d", i), stores[i], logger)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	c.hc = &http.Client{Transport: tr, Timeout: 2 * time.Minute}
	tb.Cleanup(tr.CloseIdleConnections)

	ctx := context.Background()
	tok, err := c.client(0, "").Login(ctx, "admin", adminPassword)
	if err != nil {
		tb.Fatalf("admin login: %v", err)
	}
	c.admin = c.clients(tok.AccessToken)
	if _, err := c.admin[1].CreateProject(ctx, c.project, "Community safety (e2e)"); err != nil {
		tb.Fatalf("create project: %v", err)
	}
	return c
}

// client is an API client of instance i with the given access token.
func (c *cluster) client(i int, token string) *api.Client {
	cl, err := api.NewClient(c.inst[i].srv.URL, api.WithHTTPClient(c.hc), api.WithToken(token))
	if err != nil {
		c.tb.Fatal(err)
	}
	return cl
}

// clients are the clients of both instances with one token.
func (c *cluster) clients(token string) [2]*api.Client {
	return [2]*api.Client{c.client(0, token), c.client(1, token)}
}

// addAnalyst creates a user with the analyst role and logs it in through
// instance 1; it returns the access token.
func (c *cluster) addAnalyst(username string) string {
	c.tb.Helper()
	ctx := context.Background()
	pw := username + "-password"
	if _, err := c.admin[0].CreateUser(ctx, api.CreateUserRequest{Username: username, Password: pw}); err != nil {
		c.tb.Fatalf("create user %s: %v", username, err)
	}
	if _, err := c.admin[1].SetMember(ctx, c.project, username, string(domain.RoleAnalyst)); err != nil {
		c.tb.Fatalf("set member %s: %v", username, err)
	}
	tok, err := c.client(1, "").Login(ctx, username, pw)
	if err != nil {
		c.tb.Fatalf("login %s: %v", username, err)
	}
	return tok.AccessToken
}

// device is an enrolled tablet: an enumerator of the project.
type device struct {
	id      string
	subject string // created_by of its records
	token   string
}

// addDevice creates a device through one instance and enrolls it through the
// other.
func (c *cluster) addDevice(name string) device {
	c.tb.Helper()
	ctx := context.Background()
	d, err := c.admin[0].CreateDevice(ctx, c.project, name)
	if err != nil {
		c.tb.Fatalf("create device %s: %v", name, err)
	}
	tok, err := c.client(1, "").Enroll(ctx, d.EnrollmentCode, map[string]string{"model": "e2e"})
	if err != nil {
		c.tb.Fatalf("enroll %s: %v", name, err)
	}
	return device{id: d.DeviceID, subject: domain.DeviceSubject(d.DeviceID), token: tok.AccessToken}
}

// publish uploads and publishes a form version through the API.
func (c *cluster) publish(form, version string, def []byte) {
	c.tb.Helper()
	publishForm(c.tb, c.admin[0], c.project, form, version, def, func() *forms.Service { return c.inst[1].forms })
}

// publishForm uploads and publishes a form version through the HTTP API. While
// the server has no form routes (PUT answers 404 not_found, the router's answer
// for an unknown path), it falls back to the forms service fallback returns, on
// a store of the same database.
func publishForm(tb testing.TB, c *api.Client, project, form, version string, def []byte, fallback func() *forms.Service) {
	tb.Helper()
	ctx := context.Background()
	base := "/v1/projects/" + project + "/forms/" + form + "/versions/" + version
	err := c.Do(ctx, http.MethodPut, base, def, nil)
	if err == nil {
		if err := c.Do(ctx, http.MethodPost, base+"/publish", nil, nil); err != nil {
			tb.Fatalf("publish %s/%s: %v", form, version, err)
		}
		return
	}
	if !api.IsCode(err, api.CodeNotFound) || fallback == nil {
		tb.Fatalf("upload %s/%s: %v", form, version, err)
	}
	fs := fallback()
	if _, _, err := fs.PutVersion(ctx, project, form, version, def); err != nil {
		tb.Fatalf("forms.PutVersion %s/%s: %v", form, version, err)
	}
	if _, err := fs.Publish(ctx, project, form, version); err != nil {
		tb.Fatalf("forms.Publish %s/%s: %v", form, version, err)
	}
}

// siteForm is the small form of the sync tests: a site visit with a few fields
// that edits change independently.
func siteForm(shared bool) []byte {
	def := map[string]any{
		"title":           "Site visit (e2e)",
		"conflict_policy": "merge",
		"shared":          shared,
		"schema": json.RawMessage(`{
			"$schema": "https://json-schema.org/draft/2020-12/schema",
			"type": "object",
			"properties": {
				"site": {"type": "string", "minLength": 1, "maxLength": 100},
				"visit": {"type": "integer", "minimum": 0},
				"a": {"type": "string"},
				"b": {"type": "string"},
				"score": {"type": "integer", "minimum": 1, "maximum": 5},
				"location": {"type": "object", "format": "geopoint"}
			},
			"required": ["site", "visit"],
			"additionalProperties": false
		}`),
	}
	b, err := json.Marshal(def)
	if err != nil {
		panic(err)
	}
	return b
}

// push sends one push.
func push(ctx context.Context, c *api.Client, project string, subs []api.Submission) (api.PushResponse, error) {
	var out api.PushResponse
	err := c.Do(ctx, http.MethodPost, "/v1/projects/"+project+"/sync/push", api.PushRequest{Submissions: subs}, &out)
	if err == nil && len(out.Results) != len(subs) {
		err = fmt.Errorf("push of %d items answered %d results", len(subs), len(out.Results))
	}
	return out, err
}

// pull fetches one page of the changes feed.
func pull(ctx context.Context, c *api.Client, project, since string, limit int) (api.PullResponse, error) {
	var out api.PullResponse
	q := url.Values{}
	q.Set("since", since)
	q.Set("limit", fmt.Sprint(limit))
	err := c.Do(ctx, http.MethodGet, "/v1/projects/"+project+"/sync/pull?"+q.Encode(), nil, &out)
	return out, err
}

// getRecord reads one record as the client's caller.
func getRecord(ctx context.Context, c *api.Client, project, id string) (api.Record, error) {
	var out api.Record
	err := c.Do(ctx, http.MethodGet, "/v1/projects/"+project+"/records/"+id, nil, &out)
	return out, err
}

// retryable says a failed request was not acknowledged and may be sent again:
// the server was busy or its store did not answer.
func retryable(err error) bool {
	var p *api.Problem
	if !errors.As(err, &p) {
		return false
	}
	return p.Status == http.StatusServiceUnavailable || p.Status == http.StatusTooManyRequests
}

// signal is a broadcast: wait returns a channel that the next fire closes.
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

func newSignal() *signal { return &signal{ch: make(chan struct{})} }

func (s *signal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ch
}

func (s *signal) fire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.ch)
	s.ch = make(chan struct{})
}

// generation is the number before the dash of a rev ("3-9c1f…" → 3).
func generation(rev string) int {
	var g int
	if _, err := fmt.Sscanf(rev, "%d-", &g); err != nil {
		return -1
	}
	return g
}

// short abbreviates a list of problems for an error message.
func short(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, "\n\t")
	}
	return strings.Join(items[:n], "\n\t") + fmt.Sprintf("\n\t… and %d more", len(items)-n)
}

// surveyForm is the example community safety perception survey (nested
// respondent, multiple choice, trust scores 1–5, geopoints, repeated incidents).
func surveyForm(tb testing.TB) []byte {
	tb.Helper()
	def, err := schemas.Example("perception-survey")
	if err != nil {
		tb.Fatal(err)
	}
	return def
}

// surveyRecord is a valid answer of surveyForm of about 600 bytes; i varies it.
func surveyRecord(i int) []byte {
	genders := []string{"female", "male", "other", "prefer_not_to_say"}
	threats := []string{"theft", "armed_violence", "gbv", "land_disputes", "domestic_violence", "police_abuse", "youth_gangs", "cattle_raiding"}
	places := []string{"Kibera", "Mathare", "Langas", "Kondele", "Majengo", "Bondeni"}
	return fmt.Appendf(nil, `{"consent":true,"interview_start":"2024-05-%02dT%02d:%02d:10+03:00",`+
		`"interview_location":{"latitude":%.5f,"longitude":%.5f,"accuracy":%.1f},`+
		`"respondent":{"age":%d,"gender":%q,"community":%q,"village":"Laini Saba %d","role":"women_group_member"},`+
		`"feeling_safe":{"day":%d,"night":%d},"main_threats":[%q,%q,%q],`+
		`"trust":{"police":%d,"chiefs":%d,"community_watch":%d,"ngos":%d},`+
		`"incidents":[{"date":"2024-02-%02d","type":%q,"reported_to":"nobody","location":{"latitude":%.5f,"longitude":%.5f}}],`+
		`"priorities":["street_lighting","gbv_services"],"comments":"Lights near the water point, household %d."}`,
		1+i%28, 8+i%10, i%60, -1.3+float64(i%1000)/10000, 36.7+float64(i%997)/10000, 3+float64(i%50)/10,
		18+i%80, genders[i%4], places[i%len(places)], i%40,
		1+i%5, 1+(i/5)%5, threats[i%8], threats[(i+3)%8], threats[(i+5)%8],
		1+i%5, 1+(i/3)%5, 1+(i/7)%5, 1+(i/11)%5,
		1+i%28, threats[(i+1)%8], -1.3+float64(i%991)/10000, 36.7+float64(i%983)/10000, i)
}
