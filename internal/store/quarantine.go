package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"iter"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Quarantine: one row per damaged remote object the reconciler found
// before it repaired it, so an operator can see what was damaged, when,
// and (when the backend handed them back) the damaged bytes. A table of
// its own, next to those listed in keys.go:
//
//	'q' backend 0x00 tenant 0x00 key 0x00 etag → quarantineValue
//
// Keyed by the damaged object's ETag, so finding the same damaged object
// twice (a round redone after a crash, or a repair that raced) writes the
// same row, and a later, different damage of the key adds a row. Rows are
// never deleted by cairn: they are the record.
const tableQuarantine = 'q'

// QuarantineRecord is one damaged remote object. Raw holds at most
// backend.MaxDamagedRaw bytes (fewer than Size when cut, none when the
// backend returned none).
type QuarantineRecord struct {
	Backend, Tenant, Key, ETag string
	Time                       time.Time
	Reason                     string // the verification error
	Size                       int64
	Raw                        []byte
}

func quarantineKey(r *QuarantineRecord) []byte {
	b := make([]byte, 0, 5+len(r.Backend)+len(r.Tenant)+len(r.Key)+len(r.ETag))
	b = append(b, tableQuarantine)
	for _, f := range []string{r.Backend, r.Tenant, r.Key} {
		b = append(append(b, f...), sep)
	}
	return append(b, r.ETag...)
}

// PutQuarantine durably records r. It is written outside the document
// write path, like PutSyncState.
func (s *Store) PutQuarantine(r QuarantineRecord) error {
	const op = "store.put_quarantine"
	if err := validateSync(op, r.Backend, r.Tenant, r.Key); err != nil {
		return err
	}
	return s.writeDirect(op, r.Tenant, r.Key, func(b *pebble.Batch) error {
		return b.Set(quarantineKey(&r), appendQuarantineValue(nil, &r), nil)
	})
}

// Quarantine streams every quarantine row, without the damaged bytes,
// sorted by backend, tenant, key and ETag, over one consistent snapshot.
func (s *Store) Quarantine(ctx context.Context) iter.Seq2[QuarantineRecord, error] {
	return s.quarantine(ctx, "store.quarantine", []byte{tableQuarantine}, false)
}

// QuarantineOf streams the quarantine rows of one key on one backend,
// with their damaged bytes.
func (s *Store) QuarantineOf(ctx context.Context, backend, tenant, key string) iter.Seq2[QuarantineRecord, error] {
	const op = "store.quarantine_of"
	if err := validateSync(op, backend, tenant, key); err != nil {
		return func(yield func(QuarantineRecord, error) bool) { yield(QuarantineRecord{}, err) }
	}
	prefix := quarantineKey(&QuarantineRecord{Backend: backend, Tenant: tenant, Key: key})
	return s.quarantine(ctx, op, prefix, true) // the key ends in sep: no other key shares it
}

func (s *Store) quarantine(ctx context.Context, op string, prefix []byte, withRaw bool) iter.Seq2[QuarantineRecord, error] {
	return func(yield func(QuarantineRecord, error) bool) {
		stream(s, ctx, op, "", prefix, prefixEnd(prefix), yield, func(k, v []byte) (QuarantineRecord, bool, error) {
			f := bytes.SplitN(k[1:], []byte{sep}, 4) // the ETag, last, may hold anything
			if len(f) != 4 {
				return QuarantineRecord{}, false, fmt.Errorf("%w: quarantine key", errBadValue)
			}
			r, err := decodeQuarantineValue(v, withRaw)
			r.Backend, r.Tenant, r.Key, r.ETag = string(f[0]), string(f[1]), string(f[2]), string(f[3])
			return r, err == nil, err
		})
	}
}

// quarantineValue: format, time (int64 unix nanos, BE), uvarint size,
// uvarint reason length, reason, raw.
func appendQuarantineValue(b []byte, r *QuarantineRecord) []byte {
	b = append(b, valueFormat)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Time.UnixNano()))
	b = binary.AppendUvarint(b, uint64(r.Size))
	b = binary.AppendUvarint(b, uint64(len(r.Reason)))
	b = append(b, r.Reason...)
	return append(b, r.Raw...)
}

func decodeQuarantineValue(val []byte, withRaw bool) (QuarantineRecord, error) {
	bad := func(what string) (QuarantineRecord, error) {
		return QuarantineRecord{}, fmt.Errorf("%w: quarantine %s", errBadValue, what)
	}
	if len(val) < 9 || val[0] != valueFormat {
		return bad("format")
	}
	r := QuarantineRecord{Time: time.Unix(0, int64(binary.BigEndian.Uint64(val[1:9]))).UTC()}
	rest := val[9:]
	size, m := binary.Uvarint(rest)
	if m <= 0 {
		return bad("size")
	}
	r.Size, rest = int64(size), rest[m:]
	l, m := binary.Uvarint(rest)
	if m <= 0 || uint64(len(rest)-m) < l {
		return bad("reason")
	}
	r.Reason = string(rest[m : m+int(l)])
	if withRaw {
		r.Raw = append([]byte{}, rest[m+int(l):]...)
	}
	return r, nil
}
