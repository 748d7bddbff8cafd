package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cairnstore/cairn/internal/doc"
)

// Keyspace. Every Pebble key starts with one byte naming its table; the
// fields after it are joined by sep (0x00).
//
//	'd' tenant 0x00 key                    → document record (recordValue)
//	'c' tenant 0x00 seq(8 bytes, BE)       → change-log entry (changeValue)
//	's' backend 0x00 tenant 0x00 key       → sync state (syncValue)
//	'k' backend 0x00 tenant                → reconciler checkpoint (opaque bytes)
//	'm' name                               → store metadata (high-water marks)
//	'm' 'k' seq(8 bytes, BE)               → a bulk group's high-water marks (stageMarks)
//	'q' backend 0x00 tenant 0x00 key 0x00 etag → quarantine row (quarantine.go)
//
// Why NUL: tenant ids are [a-z0-9][a-z0-9-]*, keys and backend names never
// contain NUL, so 0x00 sorts below every byte that can follow a name. Two
// consequences: (1) the prefix 'd' "ab" 0x00 can never be a prefix of another
// tenant's keys ('d' "abc" 0x00… differs at the fourth byte, where 'c' > 0x00),
// so tenants cannot collide; (2) within one tenant, the Pebble byte order of
// 'd' tenant 0x00 key is exactly the byte order of key, which is what List
// promises. The change log's seq is big-endian fixed width so that byte order
// is numeric order, which is commit order.
const (
	tableDoc        = 'd'
	tableChange     = 'c'
	tableSync       = 's'
	tableCheckpoint = 'k'
	tableMeta       = 'm'
	sep             = 0x00
)

// Metadata keys: the high-water marks, written in every committed batch
// (see committer.commit). A group that a bulk write joined writes them
// under a key of its own instead, markKey(its last Seq), so that a bulk
// load's batches overwrite no key of another: see stageMarks for why.
var (
	metaSeq  = []byte{tableMeta, 's', 'e', 'q'} // uint64 BE: highest assigned Seq
	metaHLC  = []byte{tableMeta, 'h', 'l', 'c'} // uint64 BE: highest HLC handed out or observed
	metaMark = []byte{tableMeta, 'k'}           // + Seq, uint64 BE: a bulk group's marks; the value is its HLC mark, uint64 BE
	// metaMarkEnd bounds the marks' keys: the first key after them.
	metaMarkEnd = []byte{tableMeta, 'k' + 1}
)

// markKey is the key of the marks of a bulk group whose last Seq is seq.
func markKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(nil), metaMark...), seq)
}

// valueFormat is the first byte of every value this package encodes, so the
// encoding can change later without guessing.
const valueFormat = 1

// errBadValue is wrapped by every value decoding error; the store reports it
// as fault.Corruption.
var errBadValue = errors.New("store: malformed stored value")

// tenantPrefix returns table tenant 0x00: the prefix of all of a tenant's
// rows in a table.
func tenantPrefix(table byte, tenant string) []byte {
	b := make([]byte, 0, 2+len(tenant)+8)
	b = append(b, table)
	b = append(b, tenant...)
	return append(b, sep)
}

func docKey(tenant, key string) []byte {
	return append(tenantPrefix(tableDoc, tenant), key...)
}

func changeKey(tenant string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(tenantPrefix(tableChange, tenant), seq)
}

// appendChangeKey appends changeKey(tenant, seq) to b.
func appendChangeKey(b []byte, tenant string, seq uint64) []byte {
	b = append(b, tableChange)
	b = append(b, tenant...)
	b = append(b, sep)
	return binary.BigEndian.AppendUint64(b, seq)
}

func syncKey(backend, tenant, key string) []byte {
	b := make([]byte, 0, 3+len(backend)+len(tenant)+len(key))
	b = append(b, tableSync)
	b = append(b, backend...)
	b = append(b, sep)
	b = append(b, tenant...)
	b = append(b, sep)
	return append(b, key...)
}

func checkpointKey(backend, tenant string) []byte {
	b := make([]byte, 0, 2+len(backend)+len(tenant))
	b = append(b, tableCheckpoint)
	b = append(b, backend...)
	b = append(b, sep)
	return append(b, tenant...)
}

// prefixEnd returns the smallest key greater than every key with prefix p,
// or nil if there is none (p is all 0xff).
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// recordValue: format, uvarint seq, version (self-delimiting), body.
func appendRecordValue(b []byte, seq uint64, v *doc.Version, body []byte) []byte {
	return append(appendRecordHeader(b, seq, v), body...)
}

// appendRecordHeader appends a record value up to its body.
func appendRecordHeader(b []byte, seq uint64, v *doc.Version) []byte {
	b = append(b, valueFormat)
	b = binary.AppendUvarint(b, seq)
	return v.AppendBinary(b)
}

// decodeRecordValue decodes a document row. body aliases val; callers copy.
func decodeRecordValue(val []byte) (seq uint64, v doc.Version, body []byte, err error) {
	if len(val) < 1 || val[0] != valueFormat {
		return 0, v, nil, fmt.Errorf("%w: record format", errBadValue)
	}
	seq, n := binary.Uvarint(val[1:])
	if n <= 0 {
		return 0, v, nil, fmt.Errorf("%w: record seq", errBadValue)
	}
	rest := val[1+n:]
	v, m, err := doc.DecodeVersion(rest)
	if err != nil {
		return 0, v, nil, fmt.Errorf("%w: %w", errBadValue, err)
	}
	return seq, v, rest[m:], nil
}

// changeValue: format, uvarint key length, key, version.
func appendChangeValue(b []byte, key string, v *doc.Version) []byte {
	b = append(b, valueFormat)
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	return v.AppendBinary(b)
}

func decodeChangeValue(val []byte) (key string, v doc.Version, err error) {
	if len(val) < 1 || val[0] != valueFormat {
		return "", v, fmt.Errorf("%w: change format", errBadValue)
	}
	n, w := binary.Uvarint(val[1:])
	if w <= 0 || n > uint64(len(val)-1-w) {
		return "", v, fmt.Errorf("%w: change key", errBadValue)
	}
	rest := val[1+w:]
	key = string(rest[:n])
	if err := v.UnmarshalBinary(rest[n:]); err != nil {
		return "", v, fmt.Errorf("%w: %w", errBadValue, err)
	}
	return key, v, nil
}

// syncValue, without a base body: format, base version, remote ETag (the
// rest). With one (syncFormatBody): the format byte syncFormatBody, base
// version, uvarint ETag length, ETag, body (the rest). Rows without a body
// keep the first form, so they cost nothing more than before bodies existed.
const syncFormatBody = 2

func appendSyncValue(b []byte, st *SyncState) []byte {
	if st.Body == nil {
		b = append(b, valueFormat)
		b = st.Base.AppendBinary(b)
		return append(b, st.RemoteETag...)
	}
	b = append(b, syncFormatBody)
	b = st.Base.AppendBinary(b)
	b = binary.AppendUvarint(b, uint64(len(st.RemoteETag)))
	b = append(b, st.RemoteETag...)
	return append(b, st.Body...)
}

// decodeSyncValue decodes a sync-state row. Body aliases val (non-nil,
// possibly empty, when the row has one); callers copy.
func decodeSyncValue(val []byte) (SyncState, error) {
	if len(val) < 1 || (val[0] != valueFormat && val[0] != syncFormatBody) {
		return SyncState{}, fmt.Errorf("%w: sync state format", errBadValue)
	}
	v, n, err := doc.DecodeVersion(val[1:])
	if err != nil {
		return SyncState{}, fmt.Errorf("%w: %w", errBadValue, err)
	}
	rest := val[1+n:]
	if val[0] == valueFormat {
		return SyncState{Base: v, RemoteETag: string(rest)}, nil
	}
	l, w := binary.Uvarint(rest)
	if w <= 0 || l > uint64(len(rest)-w) {
		return SyncState{}, fmt.Errorf("%w: sync state etag", errBadValue)
	}
	rest = rest[w:]
	return SyncState{Base: v, RemoteETag: string(rest[:l]), Body: rest[l:len(rest):len(rest)]}, nil
}

func encodeUint64(x uint64) []byte { return binary.BigEndian.AppendUint64(nil, x) }

func decodeUint64(val []byte) (uint64, error) {
	if len(val) != 8 {
		return 0, fmt.Errorf("%w: %d-byte counter", errBadValue, len(val))
	}
	return binary.BigEndian.Uint64(val), nil
}
