package ingest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/cairnstore/cairn/internal/streambuf"
)

// Record is one accepted JSON value of the stream. Raw, Key and the views in
// Market point into the batch's chunk buffer (or the mapped file) and arena:
// valid until the Handler returns.
type Record struct {
	Line   int64          // 1-based line number
	Offset int64          // byte offset of the value's first byte in the stream
	End    int64          // byte offset just past the value in the stream
	Raw    []byte         // the original bytes of the value (or of BodyPointer's), not re-encoded
	Key    streambuf.View // Generic schema with KeyField or KeyPointer set
	Market MarketData     // MarketData schema
}

// Batch is a group of consecutive records handed to the Handler at once, so
// that a store can commit them in one durable write.
type Batch struct {
	Seq     uint64   // 0-based batch number in stream order
	Records []Record // reused: do not retain past the Handler's return

	buf   *streambuf.Buffer
	chunk []byte // pooled read buffer; nil for mapped or in-memory input
	data  []byte // the complete lines of this batch
	line  int64  // line number of data[0]
	off   int64  // stream offset of data[0]
	bytes int64  // input bytes this batch accounts for (data + discarded)

	malformed, oversize int64
	rejects             []Reject // first Options.MaxRejects of this batch
	skips               []Reject
	feed                []byte // RawFeed scratch
}

// Skip marks record i as skipped: it is counted in Stats.Skipped and listed
// as a reject with the reason, not in Stats.Records. The Handler must not
// commit it.
func (b *Batch) Skip(i int, reason error) {
	r := &b.Records[i]
	b.skips = append(b.skips, Reject{Line: r.Line, Offset: r.Offset, Kind: KindSkipped, Err: reason})
}

// RawFeed decodes record i's raw_feed into a buffer owned by the batch. The
// result is valid until the next RawFeed call or the Handler's return.
func (b *Batch) RawFeed(i int) ([]byte, error) {
	var err error
	b.feed, err = b.Records[i].Market.AppendRawFeed(b.feed[:0])
	return b.feed, err
}

// Handler consumes a batch. It is called from one goroutine at a time, in
// stream order when Options.Ordered is set. Returning nil accepts every
// record not marked with Batch.Skip; an error wrapping ErrSkip skips the
// whole batch; any other error stops the stream and is returned by Process.
type Handler func(ctx context.Context, b *Batch) error

// PerRecord adapts a per-record function to a Handler: an error wrapping
// ErrSkip skips that record, any other error is fatal.
func PerRecord(f func(ctx context.Context, r *Record) error) Handler {
	return func(ctx context.Context, b *Batch) error {
		for i := range b.Records {
			if err := f(ctx, &b.Records[i]); err != nil {
				if !errors.Is(err, ErrSkip) {
					return err
				}
				b.Skip(i, err)
			}
		}
		return nil
	}
}

// The batch pool keeps chunk buffers, arenas, interners and record slices
// across Process calls, so steady-state ingestion does not allocate.
// outstanding counts batches taken and not yet returned: tests assert it
// drops back to zero after cancellation.
var (
	batchPool   sync.Pool
	outstanding atomic.Int64
)

func getBatch(chunkSize int, cfg streambuf.Config) *Batch {
	outstanding.Add(1)
	b, _ := batchPool.Get().(*Batch)
	if b == nil {
		b = &Batch{buf: streambuf.New(cfg)}
	}
	if chunkSize > 0 && cap(b.chunk) != chunkSize {
		b.chunk = make([]byte, chunkSize)
	}
	return b
}

func putBatch(b *Batch) {
	b.reset()
	batchPool.Put(b)
	outstanding.Add(-1)
}

// reset ends the lifetime of everything the batch handed out.
func (b *Batch) reset() {
	b.buf.Reset()
	clear(b.Records) // drop views into caller memory (mapped files)
	b.Records = b.Records[:0]
	b.data = nil
	b.bytes, b.malformed, b.oversize = 0, 0, 0
	b.rejects = b.rejects[:0]
	b.skips = b.skips[:0]
}
