package sqlite

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// How record and revision data is stored (migration 0011, issue 16).
//
// A record's answers were stored as JSON text in the data columns, and the
// revision a record replaced kept a full copy of them: ~1 KB of JSON took
// 1.3 KB in records and, once edited, a 4 KB overflow page in revisions (a
// WITHOUT ROWID row keeps at most ~1000 bytes in its b-tree page). Now data of
// more than a few bytes is a BLOB in the zdata columns, in one of three forms
// told apart by its first byte:
//
//   - 'D', the id of the dictionary of the record's form (a uvarint, see
//     data_dict.go) and an s2 block of the JSON encoded with it (about a
//     third of its size for survey answers);
//   - 'z' and a zstd frame of the JSON (about 0.6 of its size), for a form
//     with no dictionary yet;
//   - 'd', the revision's rev it is a delta of (a uvarint length, the rev), the
//     CRC-32C of the JSON, and an s2 block of the JSON encoded with the data of
//     that revision as dictionary: what an edit left unchanged costs a few
//     bytes (a 1 KB record edited in two answers takes ~20).
//
// A delta's base is always a revision of the same record whose row was
// inserted in the transaction that wrote the delta, with data_in_record set
// (see detachData): so bases are always newer rows, a chain of deltas never
// loops, and a base's data is never lost, as it is either the record's or
// stored in its own row (itself perhaps a delta of a newer one). The CRC
// makes a wrong base an error, never wrong answers. Rows written before keep
// their JSON text in data (and zdata NULL) and read as before; short JSON is
// still written there, where compression would not pay.
//
// Nothing reads data in SQL (no json_extract over records): every query that
// needs the answers decodes them here, in Go.
const (
	dataZstd  = 'z'
	dataDelta = 'd'
	dataDict  = 'D'
	// minCompress is the shortest JSON worth compressing: a zstd frame costs
	// about a dozen bytes of its own.
	minCompress = 64
	// maxDeltaChain bounds the work of reading one revision; chains grow by
	// one per edit of a record, so this is far beyond any real history.
	maxDeltaChain = 100_000
)

var (
	zstdEncoder = sync.OnceValue(func() *zstd.Encoder {
		// EncodeAll is safe for concurrent use. No CRC: SQLite pages carry
		// the bytes, and a short frame matters more here.
		e, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(false), zstd.WithEncoderConcurrency(1),
			zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithWindowSize(1<<17))
		if err != nil {
			panic(err)
		}
		return e
	})
	zstdDecoder = sync.OnceValue(func() *zstd.Decoder {
		// DecodeAll is safe for concurrent use. The limit refuses a frame
		// that claims more than a record can hold.
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(1<<30))
		if err != nil {
			panic(err)
		}
		return d
	})
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

// encodeData is how data is stored: (text, blob) for the data and zdata
// columns, one of them nil.
func encodeData(b json.RawMessage) (text, blob any) {
	if len(b) == 0 {
		return nil, nil
	}
	if len(b) < minCompress {
		return string(b), nil
	}
	z := zstdEncoder().EncodeAll(b, make([]byte, 1, len(b)/2+16))
	if len(z) >= len(b) {
		return string(b), nil
	}
	z[0] = dataZstd
	return nil, z
}

// decodeData reads what encodeData stored (coalesce(zdata, data), as the driver
// hands it over). A delta has no meaning alone: see decodeRevisionData.
func decodeData(v any) (json.RawMessage, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		return json.RawMessage(v), nil
	case []byte:
		if len(v) == 0 {
			return nil, errors.New("sqlite: empty stored data")
		}
		switch v[0] {
		case dataZstd:
			out, err := zstdDecoder().DecodeAll(v[1:], nil)
			if err != nil {
				return nil, fmt.Errorf("sqlite: decode stored data: %w", err)
			}
			return out, nil
		case dataDelta:
			return nil, errors.New("sqlite: a delta read without its base")
		case dataDict:
			return nil, errors.New("sqlite: data read without its dictionary")
		}
		return nil, fmt.Errorf("sqlite: stored data of unknown form %q", v[0])
	}
	// Not stored by this package (TEXT affinity makes numbers text): convert
	// as a scan into sql.NullString would.
	return json.RawMessage(fmt.Sprint(v)), nil
}

// encodeDelta stores data as a delta of base, the data of revision baseRev.
// ok is false when a delta would not be shorter than storing it whole (full),
// or when base is too short to be a dictionary.
func encodeDelta(data, base json.RawMessage, baseRev string, full int) (blob []byte, ok bool) {
	if len(data) == 0 {
		return nil, false
	}
	d := s2.MakeDict(base, nil)
	if d == nil {
		return nil, false
	}
	out := make([]byte, 1, 1+binary.MaxVarintLen64+len(baseRev)+4+len(data)/8+16)
	out[0] = dataDelta
	out = binary.AppendUvarint(out, uint64(len(baseRev)))
	out = append(out, baseRev...)
	out = binary.BigEndian.AppendUint32(out, crc32.Checksum(data, castagnoli))
	out = append(out, d.Encode(nil, data)...)
	if len(out) >= full {
		return nil, false
	}
	return out, true
}

// isDelta reports whether a stored value is a delta, and of which revision.
func isDelta(v any) (baseRev string, ok bool) {
	b, _ := v.([]byte)
	if len(b) == 0 || b[0] != dataDelta {
		return "", false
	}
	n, k := binary.Uvarint(b[1:])
	if k <= 0 || uint64(len(b)-1-k) < n {
		return "", false
	}
	return string(b[1+k : 1+k+int(n)]), true
}

// decodeRevisionData reads a revision's stored data with decode, applying
// deltas to the data of their bases, which base returns as stored.
func decodeRevisionData(v any, base func(rev string) (any, error), decode func(any) (json.RawMessage, error)) (json.RawMessage, error) {
	var chain [][]byte
	for {
		rev, ok := isDelta(v)
		if !ok {
			break
		}
		if len(chain) == maxDeltaChain {
			return nil, errors.New("sqlite: stored data: delta chain too long")
		}
		chain = append(chain, v.([]byte))
		var err error
		if v, err = base(rev); err != nil {
			return nil, fmt.Errorf("sqlite: base %s of a stored delta: %w", rev, err)
		}
	}
	data, err := decode(v)
	if err != nil {
		return nil, err
	}
	for i := len(chain) - 1; i >= 0; i-- {
		b := chain[i]
		n, k := binary.Uvarint(b[1:])
		body := b[1+k+int(n):]
		if len(body) < 4 {
			return nil, errors.New("sqlite: stored delta too short")
		}
		d := s2.MakeDict(data, nil)
		if d == nil {
			return nil, errors.New("sqlite: stored delta of a base too short")
		}
		out, err := d.Decode(nil, body[4:])
		if err != nil {
			return nil, fmt.Errorf("sqlite: decode stored delta: %w", err)
		}
		if crc32.Checksum(out, castagnoli) != binary.BigEndian.Uint32(body) {
			return nil, errors.New("sqlite: stored delta does not match its base")
		}
		data = out
	}
	return data, nil
}

// storedLen is the size of a stored value.
func storedLen(v any) int {
	switch v := v.(type) {
	case string:
		return len(v)
	case []byte:
		return len(v)
	}
	return 0
}

// sameStored reports whether two stored values are the same bytes.
func sameStored(a, b any) bool {
	switch a := a.(type) {
	case nil:
		return b == nil
	case string:
		s, ok := b.(string)
		return ok && s == a
	case []byte:
		s, ok := b.([]byte)
		return ok && bytes.Equal(a, s)
	}
	return false
}
