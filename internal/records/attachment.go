package records

import (
	"context"
	"fmt"
	"strings"
	"unicode"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// Attachments on the push path (issue 13): the shape of a declaration, the
// answers that name files, and which declared files the server holds.

// MaxAttachmentsPerItem bounds the files one item declares.
const MaxAttachmentsPerItem = 100

// mediaChecker is what a form version's validator offers when its answers
// may name files (forms.Definition.MediaFindings).
type mediaChecker interface {
	MediaFindings(data []byte, declared []domain.Attachment) []domain.Finding
}

// ValidAttachmentName reports whether name can name an attachment: what a
// tablet's file system and a zip entry both take, and a URL path segment.
func ValidAttachmentName(name string) bool {
	if name == "" || len(name) > 255 || name == "." || name == ".." {
		return false
	}
	for _, r := range name {
		if r == '/' || r == '\\' || unicode.IsControl(r) || r == unicode.ReplacementChar {
			return false
		}
	}
	return true
}

// ValidSHA256 reports whether s is a sha256 in lowercase hex.
func ValidSHA256(s string) bool {
	return len(s) == 64 && strings.Trim(s, "0123456789abcdef") == ""
}

// checkAttachments checks the item's declarations. With later, a
// declaration may leave sha256 and size out (Submission.LaterFiles).
func checkAttachments(atts []domain.Attachment, later bool) []domain.Finding {
	var f []domain.Finding
	if len(atts) > MaxAttachmentsPerItem {
		return []domain.Finding{{Path: "/attachments", Keyword: "maxItems", Message: fmt.Sprintf("an item declares at most %d files", MaxAttachmentsPerItem)}}
	}
	names := map[string]bool{}
	for i, a := range atts {
		p := fmt.Sprintf("/attachments/%d", i)
		if !ValidAttachmentName(a.Name) {
			f = append(f, domain.Finding{Path: p + "/name", Keyword: "format", Message: "name must be 1 to 255 bytes without / \\ or control characters"})
		} else if names[a.Name] {
			f = append(f, domain.Finding{Path: p + "/name", Keyword: "uniqueItems", Message: fmt.Sprintf("the file %q is declared twice", a.Name)})
		}
		names[a.Name] = true
		if later && a.SHA256 == "" && a.Size == 0 {
			continue
		}
		if !ValidSHA256(a.SHA256) {
			f = append(f, domain.Finding{Path: p + "/sha256", Keyword: "format", Message: "sha256 must be 64 lowercase hex digits"})
		}
		if a.Size < 0 {
			f = append(f, domain.Finding{Path: p + "/size", Keyword: "minimum", Message: "size must be >= 0"})
		}
	}
	return f
}

// checkMedia rejects an item whose answers name files it does not declare.
func checkMedia(it *item) bool {
	mc, ok := it.fv.Validator.(mediaChecker)
	if !ok {
		return true
	}
	if f := mc.MediaFindings(it.canonical, it.sub.Attachments); len(f) > 0 {
		it.reject(dataFindings(f)...)
		return false
	}
	return true
}

// Presence says, for each record id, which of its declared attachments the
// server holds (a link with the declared sha256). Records without
// attachments cost nothing.
func (s *Service) Presence(ctx context.Context, projectID string, recs []domain.Record) (map[string]map[string]bool, error) {
	var ids []string
	for _, r := range recs {
		if len(r.Attachments) > 0 {
			ids = append(ids, r.ID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	links, err := s.store.ListAttachmentLinks(ctx, projectID, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]map[string]bool, len(ids))
	for _, r := range recs {
		if len(r.Attachments) == 0 {
			continue
		}
		held := map[string]string{}
		for _, l := range links[r.ID] {
			held[l.Name] = l.SHA256
		}
		m := make(map[string]bool, len(r.Attachments))
		for _, a := range r.Attachments {
			m[a.Name] = isHeld(held, a)
		}
		out[r.ID] = m
	}
	return out, nil
}

// isHeld reports whether a's file is linked to its record (held: the linked
// sha256 by name). A declaration without a hash (a Collect file sent in a
// later part: Submission.LaterFiles) is held once any file is linked.
func isHeld(held map[string]string, a domain.Attachment) bool {
	h, ok := held[a.Name]
	return ok && (a.SHA256 == "" || h == a.SHA256)
}

// fillMissing sets MissingAttachments of the stored (or replayed) items to
// the declared files the server does not hold for their record yet.
func (s *Service) fillMissing(ctx context.Context, projectID string, items []*item) error {
	var ids []string
	for _, it := range items {
		if len(it.res.MissingAttachments) > 0 || (it.res.Status == StatusUnchanged && len(it.sub.Attachments) > 0) {
			ids = append(ids, it.sub.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	links, err := s.store.ListAttachmentLinks(ctx, projectID, ids)
	if err != nil {
		return err
	}
	for _, it := range items {
		if len(it.res.MissingAttachments) == 0 && it.res.Status != StatusUnchanged {
			continue
		}
		held := map[string]string{}
		for _, l := range links[it.sub.ID] {
			held[l.Name] = l.SHA256
		}
		var missing []string
		for _, a := range it.sub.Attachments {
			if !isHeld(held, a) {
				missing = append(missing, a.Name)
			}
		}
		it.res.MissingAttachments = missing
	}
	return nil
}
