package store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
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

// MaxConflictHistory is how many lost versions the history keeps of one
// document: a key two nodes keep writing at once loses a version at every
// meeting, and every loser's body would otherwise stay on disk for good.
// Past it the versions written longest ago (by their HLC) go first.
const MaxConflictHistory = 64

// PutConflict records c in tenant's conflict history, dropping the key's
// oldest records past MaxConflictHistory. It is written outside the
// document write path, like PutSyncState.
func (s *Store) PutConflict(tenant string, c ConflictRecord) error {
	const op = "store.put_conflict"
	if err := validate(op, tenant, c.Key, c.Body); err != nil {
		return err
	}
	id := c.Loser.ID()
	prefix := conflictPrefix(tenant, c.Key)
	k := append(prefix[:len(prefix):len(prefix)], id[:]...)
	return s.writeDirect(op, tenant, c.Key, func(b *pebble.Batch) error {
		old, err := s.oldestConflicts(prefix, id, MaxConflictHistory-1)
		if err != nil {
			return err
		}
		for _, o := range old {
			_ = b.Delete(o, nil)
		}
		return b.Set(k, appendConflictValue(nil, &c), nil)
	})
}

// oldestConflicts returns the keys of the records under prefix, other than
// id's, past the newest keep of them (by the lost version's HLC).
func (s *Store) oldestConflicts(prefix []byte, id doc.ID, keep int) ([][]byte, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	type row struct {
		key []byte
		hlc doc.Timestamp
	}
	var rows []row
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) == len(prefix)+16 && doc.ID(k[len(prefix):]) == id {
			continue
		}
		v, _, err := doc.DecodeVersion(it.Value()[min(1, len(it.Value())):])
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errBadValue, err)
		}
		rows = append(rows, row{bytes.Clone(k), v.HLC})
	}
	if err := it.Error(); err != nil || len(rows) <= keep {
		return nil, err
	}
	slices.SortFunc(rows, func(a, b row) int { return cmp.Compare(a.hlc, b.hlc) })
	old := make([][]byte, 0, len(rows)-keep)
	for _, r := range rows[:len(rows)-keep] {
		old = append(old, r.key)
	}
	return old, nil
}

// dropConflicts removes tenant's conflict history of key: its document's
// tombstone was collected, and with it what the history was kept for.
func (s *Store) dropConflicts(tenant, key string) error {
	prefix := conflictPrefix(tenant, key)
	old, err := s.oldestConflicts(prefix, doc.ID{}, 0)
	if err != nil || len(old) == 0 {
		return err
	}
	return s.writeLazy("store.drop_conflicts", tenant, key, func(b *pebble.Batch) error {
		for _, o := range old {
			_ = b.Delete(o, nil)
		}
		return nil
	})
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
			rest := k[skip:]
			if len(rest) < 17 || rest[len(rest)-17] != sep {
				return ConflictRecord{}, false, fmt.Errorf("%w: conflict key", errBadValue)
			}
			c, err := decodeConflictValue(v)
			c.Key = string(rest[:len(rest)-17])
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
