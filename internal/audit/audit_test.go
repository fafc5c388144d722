package audit_test

import (
	"context"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/audit"
	"github.com/fieldsync/fieldsync/internal/domain"
)

// TestDataTypesComplete: every event type constant of the package is listed in
// DataTypes, so the audit filter never refuses a type the server writes.
func TestDataTypesComplete(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "audit.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			for i := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				v, _ := strconv.Unquote(lit.Value)
				n++
				if !slices.Contains(audit.DataTypes, v) {
					t.Errorf("%s = %q is not in DataTypes", vs.Names[i].Name, v)
				}
			}
		}
	}
	if n != len(audit.DataTypes) {
		t.Errorf("%d constants, %d in DataTypes", n, len(audit.DataTypes))
	}
}

type failing struct{ got []domain.AuditEvent }

func (f *failing) AppendAudit(ctx context.Context, e domain.AuditEvent) (domain.AuditEvent, error) {
	if ctx.Err() != nil {
		return e, ctx.Err()
	}
	f.got = append(f.got, e)
	return e, errors.New("disk gone")
}

// TestAppendOutlivesRequest: a cancelled request still leaves its event, and a
// store failure is logged (type and subject, never detail).
func TestAppendOutlivesRequest(t *testing.T) {
	var logs strings.Builder
	st := &failing{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	audit.Append(ctx, st, slog.New(slog.NewTextHandler(&logs, nil)), func() time.Time { return now },
		domain.AuditEvent{Type: audit.CommentAdded, Subject: "rec-1", Detail: map[string]string{"secret": "answer"}})
	if len(st.got) != 1 || !st.got[0].Time.Equal(now) {
		t.Fatalf("stored %+v, want one event at %v", st.got, now)
	}
	if !strings.Contains(logs.String(), "audit event lost") || !strings.Contains(logs.String(), "rec-1") || strings.Contains(logs.String(), "answer") {
		t.Errorf("log = %q", logs.String())
	}
}
