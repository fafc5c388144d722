package syncer

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
)

// ErrBadRev is matched (with errors.Is) by the errors of ParseRev and NewRev for a
// revision id that is not "<generation>-<hash>".
var ErrBadRev = errors.New("malformed revision")

// RevHashLen is the number of hex digits of a revision's hash: the first 128 bits
// of a SHA-256. Revisions only need to be unique among the revisions of one
// record, and even across every record ever synced a collision needs about 2^64
// revisions; 32 characters keep ETags and pushed base_revs short on 2G links.
const RevHashLen = 32

// maxGeneration is the largest generation ParseRev accepts: 18 digits always fit
// an int64, and no record is edited 10^18 times.
const maxGeneration = 999_999_999_999_999_999

// revDomain separates revision hashes from every other SHA-256 the server makes
// and names the framing version, so the framing can change without ambiguity.
const revDomain = "fieldsync rev v1\x00"

// NewRev returns the revision id of an edit: "<generation>-<hash>", where the
// generation is the parent's plus one (1 without a parent, parent "") and the hash
// is the first RevHashLen hex digits of
//
//	SHA-256( "fieldsync rev v1\x00" ‖ len(parent) ‖ parent ‖ deleted ‖ len(data) ‖ Canonical(data) )
//
// with lengths as 8-byte big-endian integers and deleted as one byte 0 or 1. The
// length prefixes make the framing unambiguous: no choice of parent, deleted and
// data can produce the bytes of another choice. Because data is canonicalised,
// the same edit of the same parent gives the same revision on any instance, in
// whatever key order or spacing the client sent it. Empty data (a tombstone
// pushed without data) counts as JSON null.
//
// NewRev returns a *JSONError if data is not acceptable to Canonical, and an
// error matching ErrBadRev if parent is neither "" nor a valid revision.
func NewRev(parent string, data []byte, deleted bool) (string, error) {
	if len(data) == 0 {
		data = []byte("null")
	}
	canon, err := Canonical(data)
	if err != nil {
		return "", err
	}
	return revOf(parent, canon, deleted)
}

// NewRevCanonical is NewRev for data that is already the output of Canonical
// (the sync service canonicalises every pushed record once, and hashes those
// bytes): it skips canonicalising again. Data that is not canonical gives a
// revision other clients would not compute.
func NewRevCanonical(parent string, canon []byte, deleted bool) (string, error) {
	if len(canon) == 0 {
		canon = []byte("null")
	}
	return revOf(parent, canon, deleted)
}

// revOf is NewRev for data that is already canonical.
func revOf(parent string, canon []byte, deleted bool) (string, error) {
	gen := 1
	if parent != "" {
		pg, _, err := ParseRev(parent)
		if err != nil {
			return "", err
		}
		if pg >= maxGeneration {
			return "", badRev(parent, "generation would exceed 18 digits")
		}
		gen = pg + 1
	}
	var n [8]byte
	h := sha256.New()
	h.Write([]byte(revDomain))
	binary.BigEndian.PutUint64(n[:], uint64(len(parent)))
	h.Write(n[:])
	h.Write([]byte(parent))
	if deleted {
		h.Write([]byte{1})
	} else {
		h.Write([]byte{0})
	}
	binary.BigEndian.PutUint64(n[:], uint64(len(canon)))
	h.Write(n[:])
	h.Write(canon)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	buf := make([]byte, 0, 20+1+RevHashLen)
	buf = strconv.AppendInt(buf, int64(gen), 10)
	buf = append(buf, '-')
	buf = hex.AppendEncode(buf, sum[:RevHashLen/2])
	return string(buf), nil
}

// ParseRev splits a revision id into its generation (≥ 1, decimal without
// leading zeros) and hash (exactly RevHashLen lowercase hex digits). Anything else
// is an error matching ErrBadRev: revision ids are made only by NewRev, so a
// client's base_rev in another shape was never issued by this server.
func ParseRev(rev string) (gen int, hash string, err error) {
	g, h, ok := strings.Cut(rev, "-")
	if !ok {
		return 0, "", badRev(rev, "no '-'")
	}
	if g == "" || g[0] == '0' || len(g) > len(strconv.Itoa(maxGeneration)) {
		return 0, "", badRev(rev, "generation is not a positive decimal number")
	}
	for i := 0; i < len(g); i++ {
		if g[i] < '0' || g[i] > '9' {
			return 0, "", badRev(rev, "generation is not a positive decimal number")
		}
	}
	if len(h) != RevHashLen {
		return 0, "", badRev(rev, "hash is not "+strconv.Itoa(RevHashLen)+" hex digits")
	}
	for i := 0; i < len(h); i++ {
		if ch := h[i]; (ch < '0' || ch > '9') && (ch < 'a' || ch > 'f') {
			return 0, "", badRev(rev, "hash is not lowercase hex")
		}
	}
	gen, err = strconv.Atoi(g) // at most 18 digits: cannot overflow
	if err != nil {
		return 0, "", badRev(rev, err.Error())
	}
	return gen, h, nil
}

func badRev(rev, why string) error {
	if len(rev) > 80 {
		rev = rev[:80] + "…"
	}
	return &revError{rev: rev, why: why}
}

type revError struct{ rev, why string }

func (e *revError) Error() string        { return "malformed revision " + strconv.Quote(e.rev) + ": " + e.why }
func (e *revError) Is(target error) bool { return target == ErrBadRev }

// CompareRevs orders revisions for the protocol's tie-break ("ties: the larger rev
// hash"): it returns a negative number when a's hash is smaller than b's, a
// positive one when larger. Equal hashes (in practice: the same revision) are
// ordered by generation and then by the whole text, so the order is total and
// every instance breaks every tie the same way. A malformed id counts as its whole
// text for a hash, which keeps the function total without an error.
func CompareRevs(a, b string) int {
	ga, ha, errA := ParseRev(a)
	gb, hb, errB := ParseRev(b)
	if errA != nil {
		ha = a
	}
	if errB != nil {
		hb = b
	}
	if c := strings.Compare(ha, hb); c != 0 {
		return c
	}
	if ga != gb {
		if ga < gb {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}
