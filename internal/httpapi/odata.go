package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/odata"
)

// OData feed (issue 12; protocol.md §4): Power BI's and Excel's "OData feed"
// connector. Analysts and managers, with a bearer token or, since those
// clients send it, HTTP Basic (basicauth.go).
func (s *Server) registerODataRoutes() {
	rule := ProjectRoles(domain.RoleAnalyst).WithBasic()
	const root = "/v1/projects/{project}/forms/{form}/odata"
	s.handle(http.MethodGet, root, rule, s.handleODataService)
	// $metadata before {set}: the router tries routes in this order.
	s.handle(http.MethodGet, root+"/$metadata", rule, s.handleODataMetadata)
	s.handle(http.MethodGet, root+"/{set}", rule, s.handleODataSet)
}

// odataModel builds the OData model of the route's form from its published
// versions.
func (s *Server) odataModel(r *http.Request) (*odata.Model, error) {
	ctx := r.Context()
	project, form := pathVar(r, "project"), pathVar(r, "form")
	f, err := s.store.GetForm(ctx, project, form)
	if errors.Is(err, domain.ErrNotFound) {
		return nil, &domain.Error{Kind: domain.KindNotFound, Code: "form_not_found", Title: "No such form in this project", Detail: fmt.Sprintf("form %q", form)}
	}
	if err != nil {
		return nil, err
	}
	var defs [][]byte
	for _, v := range f.Versions {
		if v.State != domain.VersionPublished {
			continue
		}
		fv, err := s.store.GetFormVersion(ctx, project, form, v.Version)
		if err != nil {
			return nil, err
		}
		defs = append(defs, fv.Definition)
	}
	return odata.BuildModel(form, defs)
}

// odataBase is the absolute URL of the form's service root as the client
// reached it: https when the connection or a trusted proxy says so, and the
// host the client asked for.
func (s *Server) odataBase(r *http.Request) string {
	scheme := "http"
	host := r.Host
	if r.TLS != nil {
		scheme = "https"
	} else if peer, ok := parseHop(r.RemoteAddr); ok && s.trustedProxy(peer) {
		if forwardedHTTPS(r) {
			scheme = "https"
		}
		if h := strings.TrimSpace(strings.Split(r.Header.Get("X-Forwarded-Host"), ",")[0]); h != "" {
			host = h
		}
	}
	return scheme + "://" + host + "/v1/projects/" + pathVar(r, "project") + "/forms/" + pathVar(r, "form") + "/odata"
}

// odataJSON is the content type of the feed's JSON answers.
const odataJSON = "application/json;odata.metadata=minimal"

func writeOData(w http.ResponseWriter, contentType string, body []byte) error {
	w.Header().Set("OData-Version", "4.0")
	return writeEncoded(w, http.StatusOK, contentType, body)
}

// handleODataService is GET …/odata: the service document.
func (s *Server) handleODataService(w http.ResponseWriter, r *http.Request) error {
	m, err := s.odataModel(r)
	if err != nil {
		return err
	}
	return writeOData(w, odataJSON, odata.ServiceDocument(m, s.odataBase(r)))
}

// handleODataMetadata is GET …/odata/$metadata: the CSDL XML.
func (s *Server) handleODataMetadata(w http.ResponseWriter, r *http.Request) error {
	m, err := s.odataModel(r)
	if err != nil {
		return err
	}
	return writeOData(w, "application/xml", m.Metadata())
}

// handleODataSet is GET …/odata/{set}: one page of an entity set.
func (s *Server) handleODataSet(w http.ResponseWriter, r *http.Request) error {
	m, err := s.odataModel(r)
	if err != nil {
		return err
	}
	maxPage := preferMaxPageSize(r.Header.Values("Prefer"))
	feed := odata.Feed{Source: s.odataSource()}
	body, size, err := feed.EntitySet(r.Context(), m, odata.Request{Base: s.odataBase(r), ProjectID: pathVar(r, "project"),
		FormID: pathVar(r, "form"), Set: pathVar(r, "set"), Query: r.URL.Query(), MaxPageSize: maxPage})
	if err != nil {
		return err
	}
	if maxPage > 0 {
		w.Header().Set("Preference-Applied", "odata.maxpagesize="+strconv.Itoa(size))
	}
	return writeOData(w, odataJSON, body)
}

// preferMaxPageSize reads odata.maxpagesize from Prefer headers (0: none).
func preferMaxPageSize(values []string) int {
	for _, v := range values {
		for _, pref := range strings.Split(v, ",") {
			k, val, ok := strings.Cut(strings.TrimSpace(pref), "=")
			if !ok || !strings.EqualFold(strings.TrimSpace(k), "odata.maxpagesize") {
				continue
			}
			if n, err := strconv.Atoi(strings.Trim(strings.TrimSpace(val), `"`)); err == nil && n > 0 {
				return n
			}
		}
	}
	return 0
}

// odataSource is the feed's data: the store's dataset query (the export's),
// one indexed read per page in (receive time, id) order, the order of the
// feed's skiptokens; $count is the store's count where the filter is all
// bounds the store knows.
func (s *Server) odataSource() odata.Source {
	return odata.QuerySource{Query: func(ctx context.Context, f odata.Filter, afterAt time.Time, afterID string, limit int) ([]domain.Record, bool, error) {
		p, err := s.store.QueryRecords(ctx, domain.RecordQuery{ProjectID: f.ProjectID, FormID: f.FormID, Since: f.Since, Until: f.Until,
			ReviewStates: f.ReviewStates, After: domain.RecordCursor{CreatedAt: afterAt, ID: afterID}, Limit: limit})
		if err != nil {
			return nil, false, err
		}
		return p.Records, p.More, nil
	}, CountFunc: func(ctx context.Context, f odata.Filter) (int, error) {
		return s.store.CountRecords(ctx, domain.RecordQuery{ProjectID: f.ProjectID, FormID: f.FormID, Since: f.Since, Until: f.Until,
			ReviewStates: f.ReviewStates})
	}}
}
