package records

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// Bounds on what one item can make the server hold. Without them one pushed
// item whose array holds a million wrong answers made a million findings: a
// 172 MB answer, 1.9 GB of server memory and 190 MB more in the quarantine.
const (
	// MaxFindings is the most findings an item's result (or a 422) lists; a
	// last one says how many more there were. A person fixes the first and
	// pushes again; a hundred say all there is to say about a form.
	MaxFindings = 100
	// MaxValues bounds the JSON values (answers, with the objects and arrays
	// around them) of one record's data. A long household roster is a few
	// thousand; validating costs memory in proportion to the values that
	// fail, so the bound keeps one item's validation to tens of megabytes.
	MaxValues = 10000
	// MaxDataBytes bounds one record's data as sent. Pages of free-text
	// answers are tens of kilobytes (photos and audio are attachments); a
	// megabyte checked against the patterns of a form takes seconds.
	MaxDataBytes = 1 << 20
	// MaxQuarantinedBytes bounds the copy of a rejected item the quarantine
	// keeps. An interview is a few kilobytes; a larger item is kept as its
	// size, digest and first kilobytes (see quarantinedBody).
	MaxQuarantinedBytes = 256 << 10
	// quarantinePageBytes bounds the submissions of one quarantine page: a
	// page holds fewer items than asked rather than more than this (but
	// always at least one).
	quarantinePageBytes = 4 << 20
	// quarantineHeadBytes is how much of an oversized item is kept, as text.
	quarantineHeadBytes = 4 << 10
)

// capFindings keeps the first MaxFindings findings and says how many more
// there were.
func capFindings(f []domain.Finding) []domain.Finding {
	if len(f) <= MaxFindings {
		return f
	}
	out := append([]domain.Finding(nil), f[:MaxFindings]...)
	return append(out, domain.Finding{Path: "", Keyword: "more", Message: fmt.Sprintf("and %d more findings not listed; fix these and send the item again", len(f)-MaxFindings)})
}

// countValues counts the JSON values of canonical JSON (no whitespace), or
// stops counting past limit: each comma outside strings separates two, and
// each object or array opens one more.
func countValues(canon []byte, limit int) int {
	n := 1
	inString := false
	for i := 0; i < len(canon) && n <= limit; i++ {
		c := canon[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case ',', '{', '[':
			n++
		}
	}
	return n
}

// tooManyValues is the finding for data larger than MaxDataBytes or with more
// than MaxValues values, nil when it has neither.
func tooManyValues(canon []byte) []domain.Finding {
	if f := dataTooLarge(canon); f != nil {
		return f
	}
	if countValues(canon, MaxValues) <= MaxValues {
		return nil
	}
	return []domain.Finding{{Path: "/data", Keyword: "maxValues",
		Message: fmt.Sprintf("data holds more than %d answers: split the record, or send the long list as an attachment", MaxValues)}}
}

// quarantinedBody is what the quarantine keeps of a rejected item: the item
// as sent, or, past MaxQuarantinedBytes, a stand-in that says so and keeps
// its size, its SHA-256 and its first kilobytes as text (the id, form and
// version are kept on the entry itself).
func quarantinedBody(raw []byte) json.RawMessage {
	if len(raw) <= MaxQuarantinedBytes {
		return raw
	}
	head := raw[:quarantineHeadBytes]
	for len(head) > 0 && !utf8.Valid(head) {
		head = head[:len(head)-1] // do not cut a character in two
	}
	sum := sha256.Sum256(raw)
	b, _ := json.Marshal(map[string]any{"truncated": map[string]any{
		"bytes":  len(raw),
		"sha256": hex.EncodeToString(sum[:]),
		"head":   string(head),
		"note":   fmt.Sprintf("the item was larger than the %d bytes the quarantine keeps; this is its size, digest and beginning", MaxQuarantinedBytes),
	}})
	return b
}

// dataTooLarge is the finding for data larger than MaxDataBytes, nil for
// smaller data.
func dataTooLarge(data []byte) []domain.Finding {
	if len(data) <= MaxDataBytes {
		return nil
	}
	return []domain.Finding{{Path: "/data", Keyword: "maxBytes",
		Message: fmt.Sprintf("data is larger than %d bytes: split the record, or send long texts and lists as attachments", MaxDataBytes)}}
}
