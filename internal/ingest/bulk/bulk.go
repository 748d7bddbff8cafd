// Package bulk commits the batches of an ingest stream to the store: the
// write path the server's ingest route and the offline 'cairn import' share,
// so both give the same guarantees.
//
// # Use
//
// Make a [Loader] per stream, pass its Handle to ingest.Process (or
// ProcessBytes, ProcessFile) with Options.Ordered set, and call Wait once
// Process returned: the last batch is still being committed then. Each
// batch becomes one store group commit (store.StartPutBatch: one fsync under
// sync durability, each record its own version, change-log entry and sync
// state); the next batch is staged while the previous one is fsynced, so a
// stream never has more than two batches in the store. Records are durable
// in stream order: LastLine and DurableEnd say how far.
//
// A record whose key doc.ValidateKey refuses is skipped (Batch.Skip), not
// stored. A store error stops the stream: Handle returns it, and it is kept
// in StoreErr.
//
// # Concurrency
//
// A Loader is used from Process's goroutine only (Process calls the Handler
// from one goroutine) and read after Process and Wait returned.
package bulk

import (
	"context"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/ingest"
	"github.com/cairnstore/cairn/internal/store"
)

// Writer is the store as a stream writes to it. *store.Store implements it.
type Writer interface {
	StartPutBatch(ctx context.Context, tenant string, items []store.Item) (*store.PendingBatch, error)
}

// Loader commits one stream's batches.
type Loader struct {
	// Ctx is the stream's context. A queued batch must not use the context
	// Process passes to the Handler: Process cancels it when it returns,
	// which would withdraw the last batch, still queued, as "not written".
	Ctx    context.Context
	W      Writer
	Tenant string
	// Market names each record by its MarketData symbol, else by the
	// key the pipeline found (Options.KeyField or KeyPointer).
	Market bool
	// Batch, if set, is told of each batch handed to Handle with the
	// number of records queued, and returns what is told of its commit's
	// outcome (the Records, or the error) once LastLine and DurableEnd
	// count it; a batch with nothing to queue is told nil, nil at once.
	// The server's ingest spans hang here.
	Batch func(b *ingest.Batch, accepted int) (done func(recs []store.Record, err error))

	LastLine   int64 // line of the last durable record
	DurableEnd int64 // offset just past it: everything before is durable or rejected
	Batches    int64 // batches committed
	Stored     int64 // records committed
	StoreErr   error // the store failure that stopped the stream

	items             []store.Item // reused per batch
	pending           *store.PendingBatch
	pendDone          func([]store.Record, error)
	pendLine, pendEnd int64
}

// Handle is the ingest.Handler: it names each record, skips those whose
// key is not a valid document key, and queues the rest as one group
// commit (StartPutBatch copies them, so the views in b may be reused once
// Handle returns). It then waits for the previous batch's commit.
func (l *Loader) Handle(_ context.Context, b *ingest.Batch) error {
	l.items = l.items[:0]
	var line, end int64
	for i := range b.Records {
		rec := &b.Records[i]
		var key string
		if l.Market {
			key = rec.Market.Symbol.String()
		} else {
			key = rec.Key.String()
		}
		if err := doc.ValidateKey(key); err != nil {
			b.Skip(i, err)
			continue
		}
		l.items = append(l.items, store.Item{Key: key, Body: rec.Raw})
		line, end = rec.Line, rec.End
	}
	done := func([]store.Record, error) {}
	if l.Batch != nil {
		done = l.Batch(b, len(l.items))
	}
	if len(l.items) == 0 {
		done(nil, nil)
		return nil
	}
	// Every item goes through the store's committer, so the store's
	// Watcher (a node's cache) sees each one.
	p, err := l.W.StartPutBatch(l.Ctx, l.Tenant, l.items)
	clear(l.items) // drop the views before the batch is reused
	if err != nil {
		done(nil, err)
		l.StoreErr = err
		return err
	}
	if err := l.Wait(); err != nil {
		// This batch is queued already: wait for it too, so that nothing
		// is left in flight; it is not reported as durable.
		done(p.Wait())
		return err
	}
	l.pending, l.pendDone, l.pendLine, l.pendEnd = p, done, line, end
	return nil
}

// Wait waits for the pending batch, if any, and records it as durable.
func (l *Loader) Wait() error {
	p := l.pending
	if p == nil {
		return nil
	}
	l.pending = nil
	recs, err := p.Wait()
	if err != nil {
		l.StoreErr = err
	} else {
		l.LastLine, l.DurableEnd = l.pendLine, l.pendEnd
		l.Batches++
		l.Stored += int64(len(recs))
	}
	l.pendDone(recs, err) // after the marks: it may read them
	return err
}
