package ingest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
)

// decodeLoop is one decode worker. It owns its Decoder and key finder; the
// arena and interner it writes into belong to the batch.
func (p *pipeline) decodeLoop(ctx context.Context, work <-chan *Batch, done chan<- *Batch) {
	d := &Decoder{maxDepth: max(p.opts.MaxDepth, 2)}
	kf := &keyFinder{path: p.key, name: p.keyName()}
	for b := range work {
		if ctx.Err() == nil { // cancelled: pass the batch through undecoded
			p.decodeBatch(d, kf, b)
		}
		done <- b // never blocks: done has room for every batch
	}
}

func (p *pipeline) keyName() string {
	if p.opts.KeyField != "" {
		return p.opts.KeyField
	}
	return p.opts.KeyPointer
}

// decodeBatch decodes a batch line by line: a newline is always a safe
// resynchronisation point, because valid JSON strings cannot hold a raw
// newline. A value may therefore not span lines.
func (p *pipeline) decodeBatch(d *Decoder, kf *keyFinder, b *Batch) {
	d.buf, kf.buf = b.buf, b.buf
	data, line := b.data, b.line
	for pos := 0; pos < len(data); line++ {
		end := len(data)
		if k := bytes.IndexByte(data[pos:], '\n'); k >= 0 {
			end = pos + k
		}
		off := b.off + int64(pos)
		if recordLen(data[pos:end]) > p.opts.maxLine {
			b.oversize++
			p.reject(b, Reject{Line: line, Offset: off, Kind: KindOversize, Err: p.oversize})
		} else {
			p.decodeLine(d, kf, b, data[pos:end], line, off)
		}
		pos = end + 1
	}
}

// recordLen is the length of line ln counted against MaxRecordSize: without
// the carriage return of a CRLF line end, so that a record at the limit is
// accepted whichever line end its producer writes.
func recordLen(ln []byte) int {
	if n := len(ln); n > 0 && ln[n-1] == '\r' {
		return n - 1
	}
	return len(ln)
}

// decodeLine decodes the one JSON value of a line (NDJSON). A line is
// accepted or rejected as a whole: a value followed by anything but
// whitespace makes the line malformed, so that no part of a rejected line is
// stored and a client may send its rejected lines again without writing
// anything twice. Blank lines are skipped.
func (p *pipeline) decodeLine(d *Decoder, kf *keyFinder, b *Batch, ln []byte, line, off int64) {
	i := skipWS(ln, 0)
	if i == len(ln) {
		return
	}
	b.Records = append(b.Records, Record{})
	rec := &b.Records[len(b.Records)-1]
	d.base = off
	end, err := p.decodeValue(d, kf, ln, i, rec)
	switch err.(type) { // a type switch: errors.As would make every call allocate
	case nil:
		if t := skipWS(ln, end); t < len(ln) {
			err = syntaxErr(errTrailing, t, off)
		}
	case *FieldError:
		// Trailing data is a syntax error, and "is it JSON?" is answered
		// before "is it the right shape?", as Decode and PUT do.
		if verr := wholeValue(ln, i, d.maxDepth, off); verr != nil {
			err = verr
		}
	}
	if bo, ok := err.(*bodyOversize); ok {
		b.Records = b.Records[:len(b.Records)-1]
		b.oversize++
		p.reject(b, Reject{Line: line, Offset: off + int64(i), Kind: KindOversize, Err: bo})
		return
	}
	if err != nil {
		b.Records = b.Records[:len(b.Records)-1]
		b.malformed++
		p.reject(b, Reject{Line: line, Offset: off + int64(i), Kind: KindMalformed, Err: namedBOM(err, ln, i)})
		return
	}
	rec.Line, rec.Offset, rec.End = line, off+int64(i), off+int64(end)
	if rec.Raw == nil { // BodyPointer set it otherwise
		rec.Raw = ln[i:end:end]
	}
}

func (p *pipeline) decodeValue(d *Decoder, kf *keyFinder, ln []byte, i int, rec *Record) (int, error) {
	if p.opts.Schema == MarketDataSchema {
		end, err := d.decodeAt(ln, i, &rec.Market)
		if err == nil {
			err = d.checkRawFeed(&rec.Market)
		}
		return end, err
	}
	end, c := skipValue(ln, i, p.opts.MaxDepth)
	if c != ok {
		return end, syntaxErr(c, end, d.base)
	}
	if kf.path != nil {
		k, err := kf.find(ln, i, d.base)
		if err != nil {
			return end, err
		}
		rec.Key = k
	}
	if p.body != nil {
		at, found := kf.locate(ln, i, p.body)
		if !found {
			return end, &FieldError{Field: p.opts.BodyPointer, Offset: d.base + int64(i), Msg: "document not found"}
		}
		bend := skipValid(ln, at)
		if bend-at > p.opts.MaxRecordSize {
			return end, &bodyOversize{size: bend - at, max: p.opts.MaxRecordSize}
		}
		rec.Raw = ln[at:bend:bend]
	}
	return end, nil
}

func (p *pipeline) reject(b *Batch, r Reject) {
	if len(b.rejects) < p.opts.MaxRejects {
		b.rejects = append(b.rejects, r)
	}
}

// collect runs on Process's goroutine: it calls the Handler (in stream order
// if asked), merges statistics and returns batches to free. After a fatal
// error or cancellation it keeps draining done, without calling the Handler,
// until the workers have stopped, so every batch comes home.
func (p *pipeline) collect(ctx context.Context, cancel context.CancelCauseFunc,
	done <-chan *Batch, free chan<- *Batch, h Handler) (Stats, error) {
	var st Stats
	var fatal error
	deliver := func(b *Batch) {
		if fatal == nil && ctx.Err() == nil {
			if fatal = p.handle(ctx, b, h, &st); fatal != nil {
				cancel(fatal)
			}
		}
		b.reset()
		free <- b // never blocks: free has room for every batch
	}
	pending := make(map[uint64]*Batch, p.opts.InFlight) // ordered mode only
	var next uint64
	for b := range done {
		if !p.opts.Ordered {
			deliver(b)
			continue
		}
		// Progress is guaranteed: the missing batch holds one of the
		// InFlight slots and is in a worker, never waiting on this loop.
		pending[b.Seq] = b
		for nb, ok := pending[next]; ok; nb, ok = pending[next] {
			delete(pending, next)
			next++
			deliver(nb)
		}
	}
	for _, b := range pending { // left behind by a cancellation
		b.reset()
		free <- b
	}
	return st, fatal
}

// handle delivers one batch and accounts for it. Statistics count a batch
// only once it was handed over, so a fatal stop reports what was processed.
func (p *pipeline) handle(ctx context.Context, b *Batch, h Handler, st *Stats) error {
	if len(b.Records) > 0 {
		if err := h(ctx, b); err != nil {
			if !errors.Is(err, ErrSkip) {
				return fmt.Errorf("ingest: handler, batch %d at line %d: %w", b.Seq, b.line, err)
			}
			b.skips = b.skips[:0]
			for i := range b.Records {
				b.Skip(i, err)
			}
		}
	}
	st.Bytes += b.bytes
	st.Malformed += b.malformed
	st.Oversize += b.oversize
	st.Skipped += int64(len(b.skips))
	st.Records += int64(len(b.Records) - len(b.skips))
	p.addRejects(st, b.rejects)
	p.addRejects(st, b.skips)
	return nil
}

// addRejects keeps the MaxRejects rejects with the lowest offsets, sorted:
// with parallel, unordered delivery they arrive out of order.
func (p *pipeline) addRejects(st *Stats, rs []Reject) {
	for _, r := range rs {
		if len(st.Rejects) == p.opts.MaxRejects {
			if r.Offset >= st.Rejects[len(st.Rejects)-1].Offset {
				continue
			}
			st.Rejects = st.Rejects[:len(st.Rejects)-1]
		}
		at, _ := slices.BinarySearchFunc(st.Rejects, r.Offset, func(x Reject, off int64) int {
			return cmp.Compare(x.Offset, off)
		})
		st.Rejects = slices.Insert(st.Rejects, at, r)
	}
}
