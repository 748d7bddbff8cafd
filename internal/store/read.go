package store

import (
	"bytes"
	"context"
	"errors"
	"iter"
	"math"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// Get returns the current version of (tenant, key). A tombstone is returned
// as a Record with Version.Tombstone set and a nil Body, so that callers can
// cache the deletion; a key never written (or whose tombstone was collected)
// is fault.NotFound. Get sees every acknowledged write, and may see a write
// that is durable but whose writer has not been answered yet.
func (s *Store) Get(ctx context.Context, tenant, key string) (Record, error) {
	const op = "store.get"
	if err := validate(op, tenant, key, nil); err != nil {
		return Record{}, err
	}
	if err := ctx.Err(); err != nil {
		return Record{}, wrap(op, tenant, key, err)
	}
	if err := s.acquire(); err != nil {
		return Record{}, wrap(op, tenant, key, err)
	}
	defer s.release()
	rec, ok, err := getRecord(s.db, tenant, key)
	if err == nil && ok {
		err = s.waitDurable(ctx, rec.Seq)
	}
	if err != nil {
		return Record{}, wrap(op, tenant, key, err)
	}
	if !ok {
		return Record{}, fault.New(fault.NotFound, fault.Context{Op: op, Tenant: tenant, Key: key}, "document not found")
	}
	return rec, nil
}

// makeRecord decodes a document row, copying the body if withBody and
// computing the ETag if withETag.
func makeRecord(tenant, key string, val []byte, withBody, withETag bool) (Record, error) {
	seq, v, body, err := decodeRecordValue(val)
	if err != nil {
		return Record{}, err
	}
	rec := Record{Tenant: tenant, Key: key, Seq: seq, Version: v}
	if withETag {
		rec.ETag = v.ETag()
	}
	if withBody && !v.Tombstone {
		rec.Body = bytes.Clone(body)
		if rec.Body == nil {
			rec.Body = []byte{}
		}
	}
	return rec, nil
}

// ListOptions select a range of a tenant's documents.
type ListOptions struct {
	Prefix     string // only keys starting with Prefix
	After      string // only keys sorting after After (exclusive), for paging
	Limit      int    // at most this many records; 0 means no limit
	Tombstones bool   // include tombstones (they never count when false)
	KeysOnly   bool   // leave Body nil: no copy of the bodies
	// NoETag leaves ETag empty: a caller that compares versions, not
	// ETags, spares a hash of every version listed.
	NoETag bool
}

// List streams a tenant's documents sorted by key bytes. The whole listing
// reads one consistent snapshot taken when iteration starts: writes made
// while it runs are not seen. Records are decoded one at a time, so memory
// does not grow with the listing. An error ends the sequence as its last
// element. Close waits for running List loops; do not call it from one.
func (s *Store) List(ctx context.Context, tenant string, o ListOptions) iter.Seq2[Record, error] {
	const op = "store.list"
	return func(yield func(Record, error) bool) {
		if err := doc.ValidateTenant(tenant); err != nil {
			yield(Record{}, fault.E(fault.Invalid, fault.Context{Op: op}, err))
			return
		}
		lower := docKey(tenant, o.Prefix)
		upper := prefixEnd(lower)
		if o.After != "" {
			if a := docKey(tenant, o.After+"\x00"); bytes.Compare(a, lower) > 0 {
				lower = a // the smallest key after After
			}
		}
		skip := len(tenantPrefix(tableDoc, tenant))
		n := 0
		stream(s, ctx, op, tenant, lower, upper, yield, func(k, v []byte) (Record, bool, error) {
			if o.Limit > 0 && n >= o.Limit {
				return Record{}, false, errStop
			}
			rec, err := makeRecord(tenant, string(k[skip:]), v, !o.KeysOnly, !o.NoETag)
			if err == nil {
				err = s.waitDurable(ctx, rec.Seq) // also for a tombstone it skips
			}
			if err != nil || (rec.Version.Tombstone && !o.Tombstones) {
				return rec, false, err
			}
			n++
			return rec, true, nil
		})
	}
}

// errStop ends a stream early without an error.
var errStop = errors.New("stop")

// stream iterates [lower, upper) over one Pebble iterator (a consistent
// point-in-time view) and yields what decode makes of each row. decode
// returns (item, emit, err): emit false skips the row, errStop ends the
// stream quietly, any other error is yielded and ends it.
func stream[T any](s *Store, ctx context.Context, op, tenant string, lower, upper []byte,
	yield func(T, error) bool, decode func(k, v []byte) (T, bool, error)) {
	var zero T
	fail := func(err error) { yield(zero, wrap(op, tenant, "", err)) }
	if err := s.acquire(); err != nil {
		fail(err)
		return
	}
	defer s.release()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		fail(err)
		return
	}
	defer it.Close()
	for i, valid := 0, it.First(); valid; i, valid = i+1, it.Next() {
		if i%64 == 63 {
			if err := ctx.Err(); err != nil {
				fail(err)
				return
			}
		}
		val, err := it.ValueAndErr()
		if err != nil {
			fail(err)
			return
		}
		item, emit, err := decode(it.Key(), val)
		switch {
		case errors.Is(err, errStop):
			return
		case err != nil:
			fail(err)
			return
		case emit && !yield(item, nil):
			return
		}
	}
	if err := it.Error(); err != nil {
		fail(err)
	}
}

// Change is one entry of a tenant's change log: the version of Key written
// at Seq.
type Change struct {
	Seq     uint64
	Key     string
	Version doc.Version
}

// Changes streams a tenant's change log after afterSeq, in commit order, at
// most limit entries (0: no limit), over one consistent snapshot. Every
// document write has exactly one entry, written in the same atomic batch.
// Seqs are node-wide, so a tenant's log has gaps.
func (s *Store) Changes(ctx context.Context, tenant string, afterSeq uint64, limit int) iter.Seq2[Change, error] {
	const op = "store.changes"
	return func(yield func(Change, error) bool) {
		if err := doc.ValidateTenant(tenant); err != nil {
			yield(Change{}, fault.E(fault.Invalid, fault.Context{Op: op}, err))
			return
		}
		if afterSeq == math.MaxUint64 {
			return
		}
		lower := changeKey(tenant, afterSeq+1)
		upper := prefixEnd(tenantPrefix(tableChange, tenant))
		skip := len(tenantPrefix(tableChange, tenant))
		n := 0
		stream(s, ctx, op, tenant, lower, upper, yield, func(k, v []byte) (Change, bool, error) {
			if limit > 0 && n >= limit {
				return Change{}, false, errStop
			}
			seq, err := decodeUint64(k[skip:])
			if err != nil {
				return Change{}, false, err
			}
			key, ver, err := decodeChangeValue(v)
			if err == nil {
				err = s.waitDurable(ctx, seq) // an uploader must not ship a write a crash can lose
			}
			n++
			return Change{Seq: seq, Key: key, Version: ver}, true, err
		})
	}
}

// TrimChanges deletes a tenant's change-log entries up to and including
// uptoSeq, once every consumer has seen them. Trimming beyond the highest
// Seq seen so far is not defined: a write committing concurrently may keep
// its entry.
func (s *Store) TrimChanges(tenant string, uptoSeq uint64) error {
	const op = "store.trim_changes"
	if err := doc.ValidateTenant(tenant); err != nil {
		return fault.E(fault.Invalid, fault.Context{Op: op}, err)
	}
	upper := prefixEnd(tenantPrefix(tableChange, tenant))
	if uptoSeq < math.MaxUint64 {
		upper = changeKey(tenant, uptoSeq+1)
	}
	return s.writeDirect(op, tenant, "", func(b *pebble.Batch) error {
		return b.DeleteRange(changeKey(tenant, 0), upper, nil)
	})
}

// Tenants streams the tenants that have at least one document row (live or
// tombstone), in order, over one consistent snapshot. It seeks past each
// tenant, so its cost grows with the number of tenants, not documents.
func (s *Store) Tenants(ctx context.Context) iter.Seq2[string, error] {
	const op = "store.tenants"
	return func(yield func(string, error) bool) {
		if err := s.acquire(); err != nil {
			yield("", wrap(op, "", "", err))
			return
		}
		defer s.release()
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tableDoc}, UpperBound: []byte{tableDoc + 1}})
		if err != nil {
			yield("", wrap(op, "", "", err))
			return
		}
		defer it.Close()
		for valid := it.First(); valid; {
			if err := ctx.Err(); err != nil {
				yield("", wrap(op, "", "", err))
				return
			}
			k := it.Key()
			end := bytes.IndexByte(k, sep)
			if end < 0 {
				yield("", wrap(op, "", "", errBadValue))
				return
			}
			tenant := string(k[1:end])
			if !yield(tenant, nil) {
				return
			}
			valid = it.SeekGE(prefixEnd(tenantPrefix(tableDoc, tenant)))
		}
		if err := it.Error(); err != nil {
			yield("", wrap(op, "", "", err))
		}
	}
}

// writeDirect commits a write that does not touch documents (sync state,
// checkpoints, change-log trims) straight to Pebble, outside the committer:
// nothing about it depends on the current documents. It has the store's
// durability and, like the committer, fails the store if the commit fails.
func (s *Store) writeDirect(op, tenant, key string, fill func(b *pebble.Batch) error) error {
	return s.writeDirectWith(op, tenant, key, s.wopts, fill)
}

// writeLazy is writeDirect without a sync of its own, for rows that can be
// derived again (sync state): the write goes into Pebble's log behind the
// writes before it and reaches the disk with the log's next sync, which
// the next durable write makes, or at Close. A crash before then loses it
// and nothing after it.
func (s *Store) writeLazy(op, tenant, key string, fill func(b *pebble.Batch) error) error {
	return s.writeDirectWith(op, tenant, key, pebble.NoSync, fill)
}

func (s *Store) writeDirectWith(op, tenant, key string, wo *pebble.WriteOptions, fill func(b *pebble.Batch) error) error {
	if err := s.acquire(); err != nil {
		return wrap(op, tenant, key, err)
	}
	defer s.release()
	b := s.db.NewBatch()
	defer b.Close()
	if err := fill(b); err != nil {
		return wrap(op, tenant, key, err)
	}
	return wrap(op, tenant, key, s.commitBatch(b, wo))
}

// MemoryStats is Pebble's share of a node's memory at one moment, for
// measuring where the memory goes (test/scale reports it with each round).
// The block cache and the memtables are allocated outside the Go heap.
type MemoryStats struct {
	BlockCacheBytes int64  // blocks held by the block cache (at most its size less the memtables' reservation)
	BlockCacheCount int64  // blocks held
	MemTableBytes   uint64 // allocated by memtables, including ones being flushed
	FileCacheTables int64  // open sstables (their readers hold no blocks: those are in the block cache)
	Tables          int64  // sstables in the LSM, all levels
}

// MemoryStats returns the store's current MemoryStats.
func (s *Store) MemoryStats() MemoryStats {
	m := s.db.Metrics()
	var tables int64
	for i := range m.Levels {
		tables += m.Levels[i].TablesCount
	}
	return MemoryStats{BlockCacheBytes: m.BlockCache.Size, BlockCacheCount: m.BlockCache.Count,
		MemTableBytes: m.MemTable.Size, FileCacheTables: m.FileCache.TableCount, Tables: tables}
}
