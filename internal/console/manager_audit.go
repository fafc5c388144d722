package console

import (
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/identity"
)

// auditPageSize is the events of one page of the audit log.
const auditPageSize = 50

// auditTimeLayout is the value of an <input type="datetime-local">, read
// as UTC (the page says so).
const auditTimeLayout = "2006-01-02T15:04"

// auditView is the data of manager/audit.
type auditView struct {
	Types  []string
	Filter auditFilter
	Events []auditRow
	// Next is the query of the next page ("" on the last); First that of
	// the first page when this is not it.
	Next, First string
}

// auditFilter is the filter form's values, as typed.
type auditFilter struct {
	Type, Actor, Project, Since, Until string
}

type auditRow struct {
	domain.AuditEvent
	// Details is Detail as sorted "key=value" pairs.
	Details []string
}

// auditPage is the audit log, newest first, filtered by type, actor,
// project and a time range (since inclusive, until exclusive, UTC), with
// paging, as GET /v1/audit (admins).
func (c *Console) auditPage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	v := auditView{Types: identity.AuditTypes, Filter: auditFilter{
		Type: q.Get("type"), Actor: q.Get("actor"), Project: q.Get("project"), Since: q.Get("since"), Until: q.Get("until")}}
	f := domain.AuditFilter{Type: v.Filter.Type, Actor: strings.TrimSpace(v.Filter.Actor), ProjectID: strings.TrimSpace(v.Filter.Project)}
	var findings []domain.Finding
	for _, tf := range []struct {
		name string
		in   string
		out  *time.Time
	}{{"since", v.Filter.Since, &f.Since}, {"until", v.Filter.Until, &f.Until}} {
		if tf.in == "" {
			continue
		}
		t, err := time.ParseInLocation(auditTimeLayout, tf.in, time.UTC)
		if err != nil {
			findings = append(findings, domain.Finding{Path: "/" + tf.name, Message: "must be a date and time, such as 2026-03-01T08:00"})
			continue
		}
		*tf.out = t
	}
	if len(findings) > 0 {
		pc := pageFrom(r.Context())
		pc.formError, pc.formStatus = &domain.Error{Title: "The filter is not valid", Findings: findings}, http.StatusBadRequest
		c.render(w, r, http.StatusBadRequest, "manager/audit", "manager.audit.title", v)
		return nil
	}
	cursor := q.Get("cursor")
	events, next, err := c.cfg.Identity.ListAudit(r.Context(), principal(r), f, cursor, auditPageSize)
	if err != nil {
		pc := pageFrom(r.Context())
		return c.formFailed(w, r, err, func(w http.ResponseWriter, r *http.Request) error {
			c.render(w, r, pc.formStatus, "manager/audit", "manager.audit.title", v)
			return nil
		})
	}
	for _, e := range events {
		row := auditRow{AuditEvent: e}
		for k, val := range e.Detail {
			row.Details = append(row.Details, k+"="+val)
		}
		sort.Strings(row.Details)
		v.Events = append(v.Events, row)
	}
	keep := url.Values{}
	for k, val := range map[string]string{"type": v.Filter.Type, "actor": v.Filter.Actor, "project": v.Filter.Project, "since": v.Filter.Since, "until": v.Filter.Until} {
		if val != "" {
			keep.Set(k, val)
		}
	}
	if next != "" {
		n := url.Values{}
		for k, val := range keep {
			n[k] = val
		}
		n.Set("cursor", next)
		v.Next = "?" + n.Encode()
	}
	if cursor != "" {
		v.First = "?" + keep.Encode()
	}
	c.render(w, r, http.StatusOK, "manager/audit", "manager.audit.title", v)
	return nil
}
