package httpapi

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// Instrument wraps s so that every call is timed in the histogram
// fieldsync_store_operation_duration_seconds{op}, op being the method name. It
// lives in the HTTP layer because that is where the registry is; main wraps the
// store once and hands the result to New and to the services.
//
// Calling it twice with the same registry shares one histogram. It panics if
// reg refuses the histogram for another reason, as prometheus.MustRegister does:
// that is a wiring bug.
func Instrument(s domain.Store, reg prometheus.Registerer) domain.Store {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "fieldsync_store_operation_duration_seconds",
		Help: "Time taken by store operations, by operation.",
		// From a cached SQLite read to a slow MongoDB write batch.
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"op"})
	h, err := register(reg, h)
	if err != nil {
		panic("httpapi: Instrument: " + err.Error())
	}
	return &instrumentedStore{s: s, h: h}
}

// instrumentedStore delegates each method by hand: mechanical, but the compiler
// checks it is complete (below), and a new Store method fails the build here
// until it is timed too.
type instrumentedStore struct {
	s domain.Store
	h *prometheus.HistogramVec
}

var _ domain.Store = (*instrumentedStore)(nil)

// observe is deferred with the start time evaluated at the call.
func (i *instrumentedStore) observe(op string, start time.Time) {
	i.h.WithLabelValues(op).Observe(time.Since(start).Seconds())
}

// UserStore

func (i *instrumentedStore) CreateUser(ctx context.Context, u domain.User) error {
	defer i.observe("CreateUser", time.Now())
	return i.s.CreateUser(ctx, u)
}

func (i *instrumentedStore) GetUser(ctx context.Context, username string) (domain.User, error) {
	defer i.observe("GetUser", time.Now())
	return i.s.GetUser(ctx, username)
}

func (i *instrumentedStore) UpdateUser(ctx context.Context, u domain.User) error {
	defer i.observe("UpdateUser", time.Now())
	return i.s.UpdateUser(ctx, u)
}

func (i *instrumentedStore) ListUsers(ctx context.Context) ([]domain.User, error) {
	defer i.observe("ListUsers", time.Now())
	return i.s.ListUsers(ctx)
}

// ProjectStore

func (i *instrumentedStore) CreateProject(ctx context.Context, p domain.Project) error {
	defer i.observe("CreateProject", time.Now())
	return i.s.CreateProject(ctx, p)
}

func (i *instrumentedStore) GetProject(ctx context.Context, id string) (domain.Project, error) {
	defer i.observe("GetProject", time.Now())
	return i.s.GetProject(ctx, id)
}

func (i *instrumentedStore) ListProjects(ctx context.Context) ([]domain.Project, error) {
	defer i.observe("ListProjects", time.Now())
	return i.s.ListProjects(ctx)
}

func (i *instrumentedStore) PutMembership(ctx context.Context, m domain.Membership) error {
	defer i.observe("PutMembership", time.Now())
	return i.s.PutMembership(ctx, m)
}

func (i *instrumentedStore) GetMembership(ctx context.Context, projectID, username string) (domain.Membership, error) {
	defer i.observe("GetMembership", time.Now())
	return i.s.GetMembership(ctx, projectID, username)
}

func (i *instrumentedStore) ListMemberships(ctx context.Context, f domain.MembershipFilter) ([]domain.Membership, error) {
	defer i.observe("ListMemberships", time.Now())
	return i.s.ListMemberships(ctx, f)
}

func (i *instrumentedStore) DeleteMembership(ctx context.Context, projectID, username string) error {
	defer i.observe("DeleteMembership", time.Now())
	return i.s.DeleteMembership(ctx, projectID, username)
}

// DeviceStore

func (i *instrumentedStore) CreateDevice(ctx context.Context, d domain.Device) error {
	defer i.observe("CreateDevice", time.Now())
	return i.s.CreateDevice(ctx, d)
}

func (i *instrumentedStore) GetDevice(ctx context.Context, id string) (domain.Device, error) {
	defer i.observe("GetDevice", time.Now())
	return i.s.GetDevice(ctx, id)
}

func (i *instrumentedStore) ListDevices(ctx context.Context, projectID string) ([]domain.Device, error) {
	defer i.observe("ListDevices", time.Now())
	return i.s.ListDevices(ctx, projectID)
}

func (i *instrumentedStore) EnrollDevice(ctx context.Context, enrollmentHash string, info map[string]string, now time.Time) (domain.Device, error) {
	defer i.observe("EnrollDevice", time.Now())
	return i.s.EnrollDevice(ctx, enrollmentHash, info, now)
}

func (i *instrumentedStore) RevokeDevice(ctx context.Context, id string, at time.Time) error {
	defer i.observe("RevokeDevice", time.Now())
	return i.s.RevokeDevice(ctx, id, at)
}

// TokenStore

func (i *instrumentedStore) CreateTokenFamily(ctx context.Context, f domain.TokenFamily) error {
	defer i.observe("CreateTokenFamily", time.Now())
	return i.s.CreateTokenFamily(ctx, f)
}

func (i *instrumentedStore) GetTokenFamily(ctx context.Context, id string) (domain.TokenFamily, error) {
	defer i.observe("GetTokenFamily", time.Now())
	return i.s.GetTokenFamily(ctx, id)
}

func (i *instrumentedStore) RevokeTokenFamily(ctx context.Context, id string, at time.Time) error {
	defer i.observe("RevokeTokenFamily", time.Now())
	return i.s.RevokeTokenFamily(ctx, id, at)
}

func (i *instrumentedStore) RevokeSubjectFamilies(ctx context.Context, subject string, at time.Time) (int, error) {
	defer i.observe("RevokeSubjectFamilies", time.Now())
	return i.s.RevokeSubjectFamilies(ctx, subject, at)
}

func (i *instrumentedStore) CreateRefreshToken(ctx context.Context, t domain.RefreshToken) error {
	defer i.observe("CreateRefreshToken", time.Now())
	return i.s.CreateRefreshToken(ctx, t)
}

func (i *instrumentedStore) SpendRefreshToken(ctx context.Context, hash string, at time.Time) (domain.RefreshToken, error) {
	defer i.observe("SpendRefreshToken", time.Now())
	return i.s.SpendRefreshToken(ctx, hash, at)
}

func (i *instrumentedStore) GetRefreshTokenByParent(ctx context.Context, parentHash string) (domain.RefreshToken, error) {
	defer i.observe("GetRefreshTokenByParent", time.Now())
	return i.s.GetRefreshTokenByParent(ctx, parentHash)
}

// KeyStore

func (i *instrumentedStore) CreateSigningKey(ctx context.Context, k domain.SigningKey) error {
	defer i.observe("CreateSigningKey", time.Now())
	return i.s.CreateSigningKey(ctx, k)
}

func (i *instrumentedStore) ListSigningKeys(ctx context.Context) ([]domain.SigningKey, error) {
	defer i.observe("ListSigningKeys", time.Now())
	return i.s.ListSigningKeys(ctx)
}

func (i *instrumentedStore) RetireSigningKeys(ctx context.Context, keepID string, at time.Time) error {
	defer i.observe("RetireSigningKeys", time.Now())
	return i.s.RetireSigningKeys(ctx, keepID, at)
}

// SettingStore

func (i *instrumentedStore) GetSetting(ctx context.Context, key string) (string, error) {
	defer i.observe("GetSetting", time.Now())
	return i.s.GetSetting(ctx, key)
}

func (i *instrumentedStore) PutSettingIfAbsent(ctx context.Context, key, value string) (string, bool, error) {
	defer i.observe("PutSettingIfAbsent", time.Now())
	return i.s.PutSettingIfAbsent(ctx, key, value)
}

// FormStore

func (i *instrumentedStore) PutFormVersion(ctx context.Context, v domain.FormVersion) (bool, error) {
	defer i.observe("PutFormVersion", time.Now())
	return i.s.PutFormVersion(ctx, v)
}

func (i *instrumentedStore) GetFormVersion(ctx context.Context, projectID, formID, version string) (domain.FormVersion, error) {
	defer i.observe("GetFormVersion", time.Now())
	return i.s.GetFormVersion(ctx, projectID, formID, version)
}

func (i *instrumentedStore) PublishFormVersion(ctx context.Context, projectID, formID, version string, at time.Time) (domain.FormVersion, error) {
	defer i.observe("PublishFormVersion", time.Now())
	return i.s.PublishFormVersion(ctx, projectID, formID, version, at)
}

func (i *instrumentedStore) CloseForm(ctx context.Context, projectID, formID string, at time.Time) error {
	defer i.observe("CloseForm", time.Now())
	return i.s.CloseForm(ctx, projectID, formID, at)
}

func (i *instrumentedStore) GetForm(ctx context.Context, projectID, formID string) (domain.Form, error) {
	defer i.observe("GetForm", time.Now())
	return i.s.GetForm(ctx, projectID, formID)
}

func (i *instrumentedStore) ListForms(ctx context.Context, projectID string) ([]domain.Form, error) {
	defer i.observe("ListForms", time.Now())
	return i.s.ListForms(ctx, projectID)
}

// RecordStore

func (i *instrumentedStore) GetRecord(ctx context.Context, projectID, id string) (domain.Record, error) {
	defer i.observe("GetRecord", time.Now())
	return i.s.GetRecord(ctx, projectID, id)
}

func (i *instrumentedStore) GetRecords(ctx context.Context, projectID string, ids []string) (map[string]domain.Record, error) {
	defer i.observe("GetRecords", time.Now())
	return i.s.GetRecords(ctx, projectID, ids)
}

func (i *instrumentedStore) WriteRecords(ctx context.Context, writes []domain.RecordWrite) ([]error, error) {
	defer i.observe("WriteRecords", time.Now())
	return i.s.WriteRecords(ctx, writes)
}

func (i *instrumentedStore) GetRevision(ctx context.Context, projectID, recordID, rev string) (domain.Revision, error) {
	defer i.observe("GetRevision", time.Now())
	return i.s.GetRevision(ctx, projectID, recordID, rev)
}

func (i *instrumentedStore) ListRevisions(ctx context.Context, projectID, recordID string) ([]domain.Revision, error) {
	defer i.observe("ListRevisions", time.Now())
	return i.s.ListRevisions(ctx, projectID, recordID)
}

func (i *instrumentedStore) Changes(ctx context.Context, q domain.ChangesQuery) (domain.ChangesPage, error) {
	defer i.observe("Changes", time.Now())
	return i.s.Changes(ctx, q)
}

// QuarantineStore

func (i *instrumentedStore) PutQuarantine(ctx context.Context, item domain.QuarantineItem) (domain.QuarantineItem, error) {
	defer i.observe("PutQuarantine", time.Now())
	return i.s.PutQuarantine(ctx, item)
}

func (i *instrumentedStore) ListQuarantine(ctx context.Context, projectID string, includeResolved bool, cursor string, limit int) ([]domain.QuarantineItem, string, error) {
	defer i.observe("ListQuarantine", time.Now())
	return i.s.ListQuarantine(ctx, projectID, includeResolved, cursor, limit)
}

func (i *instrumentedStore) ResolveQuarantine(ctx context.Context, projectID string, recordIDs []string, at time.Time) error {
	defer i.observe("ResolveQuarantine", time.Now())
	return i.s.ResolveQuarantine(ctx, projectID, recordIDs, at)
}

// AuditStore

func (i *instrumentedStore) AppendAudit(ctx context.Context, e domain.AuditEvent) (domain.AuditEvent, error) {
	defer i.observe("AppendAudit", time.Now())
	return i.s.AppendAudit(ctx, e)
}

func (i *instrumentedStore) ListAudit(ctx context.Context, f domain.AuditFilter, cursor string, limit int) ([]domain.AuditEvent, string, error) {
	defer i.observe("ListAudit", time.Now())
	return i.s.ListAudit(ctx, f, cursor, limit)
}

// Ping and Close

func (i *instrumentedStore) Ping(ctx context.Context) error {
	defer i.observe("Ping", time.Now())
	return i.s.Ping(ctx)
}

func (i *instrumentedStore) Close() error {
	defer i.observe("Close", time.Now())
	return i.s.Close()
}
