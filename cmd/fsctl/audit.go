package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fieldsync/fieldsync/api"
)

// runAudit is fsctl audit [--type T] [--actor A] [--project P] [--since T]
// [--until T] [--limit N] [--cursor C] (admins): one page of the security log,
// newest first.
func runAudit(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "audit", "[--type TYPE] [--actor NAME] [--project ID] [--since TIME] [--until TIME] [--limit N] [--cursor C]")
	var q api.AuditQuery
	fs.StringVar(&q.Type, "type", "", "only events of this type (login, login_failed, family_revoked, password_changed, role_set, member_removed, device_enrolled, device_revoked, …; the server refuses a type it does not know and lists the others)")
	fs.StringVar(&q.Actor, "actor", "", "only events done by this username (or device:<id>)")
	fs.StringVar(&q.Project, "project", "", "only events of this project")
	since := fs.String("since", "", "only events at or after this time (RFC 3339, or a duration ago such as 24h)")
	until := fs.String("until", "", "only events before this time (RFC 3339, or a duration ago)")
	fs.IntVar(&q.Limit, "limit", 50, "events per page (at most 1000)")
	fs.StringVar(&q.Cursor, "cursor", "", "the page after this cursor (printed under the previous page)")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	var err error
	if q.Since, err = parseWhen(*since, e.clock()); err != nil {
		return fs.usageErrorf("--since: %v", err)
	}
	if q.Until, err = parseWhen(*until, e.clock()); err != nil {
		return fs.usageErrorf("--until: %v", err)
	}
	s, err := e.session(ctx)
	if err != nil {
		return err
	}
	var page api.AuditList
	err = s.do(ctx, func(c *api.Client) error {
		page, err = c.ListAudit(ctx, q)
		return err
	})
	if err != nil {
		return err
	}
	if len(page.Events) == 0 {
		fmt.Fprintln(e.stdout, "No events.")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tTYPE\tACTOR\tPROJECT\tSUBJECT\tADDRESS\tDETAIL")
	for _, ev := range page.Events {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ev.Time.UTC().Format(time.RFC3339), ev.Type, dash(ev.Actor),
			dash(ev.Project), dash(ev.Subject), dash(ev.RemoteAddr), details(ev.Detail))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if page.Next != "" {
		fmt.Fprintf(e.stdout, "\nMore: add --cursor %s\n", page.Next)
	}
	return nil
}

// parseWhen reads an RFC 3339 time or a duration before now ("24h").
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time (2026-03-01T00:00:00Z) nor a duration (24h)", s)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// details prints an event's detail map in a stable order.
func details(m map[string]string) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, " ")
}
