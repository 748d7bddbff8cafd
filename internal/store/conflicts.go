package store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cairnstore/cairn/internal/doc"
)

// The conflict history: one row per version that lost a conflict
// resolution (last-writer-wins), so that what a resolution discarded can be
// listed and restored. It is a table of its own, next to those listed in
// keys.go:
//
//	'x' tenant 0x00 key 0x00 loserID(16) → conflictValue
//
// Keyed by the loser's version ID, so recording the same loss twice (two
// nodes, or a round redone after a crash) writes the same row.
const tableConflict = 'x'

// ConflictRecord is one lost version of a document: its version and body
// (nil for a tombstone), the version that won, and why.
type ConflictRecord struct {
	Key    string
	Loser  doc.Version
	Body   []byte
	Winner doc.ID
	Reason string
}

func conflictPrefix(tenant, key string) []byte {
	return append(append(tenantPrefix(tableConflict, tenant), key...), sep)
}

// MaxConflictHistory is how many lost versions of one document
// TrimConflicts keeps: a key two nodes keep writing at once loses a version
// at every meeting, and every loser's body would otherwise stay on disk
// for good.
const MaxConflictHistory = 64

// PutConflict records c in tenant's conflict history. It is written outside
// the document write path, like PutSyncState; TrimConflicts bounds the
// history later, off that path.
func (s *Store) PutConflict(tenant string, c ConflictRecord) error {
	const op = "store.put_conflict"
	if err := validate(op, tenant, c.Key, c.Body); err != nil {
		return err
	}
	id := c.Loser.ID()
	k := append(conflictPrefix(tenant, c.Key), id[:]...)
	return s.writeDirect(op, tenant, c.Key, func(b *pebble.Batch) error {
		return b.Set(k, appendConflictValue(nil, &c), nil)
	})
}

// TrimConflicts bounds tenant's conflict history: it keeps the newest keep
// records of each document (by the lost version's HLC; a record that does
// not decode counts as the oldest) and drops the whole history of a
// document the store no longer holds (its tombstone was collected). It
// returns how many records it removed. It reads the tenant's history
// once, a document at a time, and is meant for a background pass (the
// tombstone collector's), not a write path.
func (s *Store) TrimConflicts(ctx context.Context, tenant string, keep int) (int, error) {
	const op = "store.trim_conflicts"
	if err := validate(op, tenant, "-", nil); err != nil {
		return 0, err
	}
	type row struct {
		key []byte
		hlc doc.Timestamp
	}
	var (
		drop [][]byte
		dkey []byte // the document whose records rows holds
		rows []row
	)
	settle := func() error {
		if len(rows) == 0 {
			return nil
		}
		// The document's row, tombstone or not: only a collection
		// removes it, and with it the reason to keep its history.
		n := keep
		_, closer, err := s.db.Get(docKey(tenant, string(dkey)))
		switch {
		case errors.Is(err, pebble.ErrNotFound):
			n = 0
		case err != nil:
			return err
		default:
			closer.Close()
		}
		if len(rows) > n {
			slices.SortFunc(rows, func(a, b row) int { return cmp.Compare(a.hlc, b.hlc) })
			for _, r := range rows[:len(rows)-n] {
				drop = append(drop, r.key)
			}
		}
		rows = rows[:0]
		return nil
	}
	prefix := tenantPrefix(tableConflict, tenant)
	err := func() error {
		if err := s.acquire(); err != nil {
			return err
		}
		defer s.release()
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
		if err != nil {
			return err
		}
		defer it.Close()
		for ok := it.First(); ok; ok = it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			k := it.Key()
			dk, ok := conflictDocKey(k[len(prefix):])
			if !ok {
				continue // not a record's key: left for Conflicts to report
			}
			if !bytes.Equal(dk, dkey) {
				if err := settle(); err != nil {
					return err
				}
				dkey = append(dkey[:0], dk...)
			}
			var hlc doc.Timestamp
			if v := it.Value(); len(v) > 1 {
				if ver, _, err := doc.DecodeVersion(v[1:]); err == nil {
					hlc = ver.HLC
				}
			}
			rows = append(rows, row{bytes.Clone(k), hlc})
		}
		if err := it.Error(); err != nil {
			return err
		}
		return settle()
	}()
	if err != nil {
		return 0, wrap(op, tenant, "", err)
	}
	removed := len(drop)
	for len(drop) > 0 {
		n := min(len(drop), 1000)
		if err := s.writeLazy(op, tenant, "-", func(b *pebble.Batch) error {
			for _, k := range drop[:n] {
				_ = b.Delete(k, nil)
			}
			return nil
		}); err != nil {
			return removed - len(drop), err
		}
		drop = drop[n:]
	}
	return removed, nil
}

// conflictDocKey returns the document key of a conflict record's key, given
// without its tenant prefix: key 0x00 loserID(16).
func conflictDocKey(rest []byte) ([]byte, bool) {
	if len(rest) < 17 || rest[len(rest)-17] != sep {
		return nil, false
	}
	return rest[:len(rest)-17], true
}

// Conflicts streams tenant's conflict history for key ("" for every key),
// sorted by key then loser ID, over one consistent snapshot.
func (s *Store) Conflicts(ctx context.Context, tenant, key string) iter.Seq2[ConflictRecord, error] {
	const op = "store.conflicts"
	return func(yield func(ConflictRecord, error) bool) {
		err := validate(op, tenant, "-", nil) // the tenant alone
		if key != "" {
			err = validate(op, tenant, key, nil)
		}
		if err != nil {
			yield(ConflictRecord{}, err)
			return
		}
		prefix := tenantPrefix(tableConflict, tenant)
		if key != "" {
			prefix = conflictPrefix(tenant, key)
		}
		skip := len(tenantPrefix(tableConflict, tenant))
		stream(s, ctx, op, tenant, prefix, prefixEnd(prefix), yield, func(k, v []byte) (ConflictRecord, bool, error) {
			dk, ok := conflictDocKey(k[skip:])
			if !ok {
				return ConflictRecord{}, false, fmt.Errorf("%w: conflict key", errBadValue)
			}
			c, err := decodeConflictValue(v)
			c.Key = string(dk)
			return c, err == nil, err
		})
	}
}

// conflictValue: format, loser version, winner ID (16), uvarint reason
// length, reason, body.
func appendConflictValue(b []byte, c *ConflictRecord) []byte {
	b = append(b, valueFormat)
	b = c.Loser.AppendBinary(b)
	b = append(b, c.Winner[:]...)
	b = binary.AppendUvarint(b, uint64(len(c.Reason)))
	b = append(b, c.Reason...)
	return append(b, c.Body...)
}

func decodeConflictValue(val []byte) (ConflictRecord, error) {
	bad := func(what string) (ConflictRecord, error) {
		return ConflictRecord{}, fmt.Errorf("%w: conflict %s", errBadValue, what)
	}
	if len(val) < 1 || val[0] != valueFormat {
		return bad("format")
	}
	v, n, err := doc.DecodeVersion(val[1:])
	if err != nil {
		return ConflictRecord{}, fmt.Errorf("%w: %w", errBadValue, err)
	}
	rest := val[1+n:]
	if len(rest) < 16 {
		return bad("winner")
	}
	c := ConflictRecord{Loser: v}
	copy(c.Winner[:], rest)
	rest = rest[16:]
	l, m := binary.Uvarint(rest)
	if m <= 0 || uint64(len(rest)-m) < l {
		return bad("reason")
	}
	c.Reason = string(rest[m : m+int(l)])
	if body := rest[m+int(l):]; !v.Tombstone {
		c.Body = append([]byte{}, body...)
	}
	return c, nil
}
