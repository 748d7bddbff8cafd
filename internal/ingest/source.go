package ingest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"

	"github.com/edsrzf/mmap-go"
)

// ProcessFile is Process over a file. A regular, non-empty file is mapped
// into memory (no read copies: records are views of the page cache); if
// mapping fails, or for pipes and devices, it falls back to reads.
//
// Sharp edge: a mapped file truncated by another process while it is being
// processed makes the process crash with SIGBUS. Ingest files that are not
// being written.
func ProcessFile(ctx context.Context, path string, opts Options, h Handler) (st Stats, err error) {
	f, err := os.Open(path)
	if err != nil {
		return Stats{}, err
	}
	defer f.Close()
	if fi, serr := f.Stat(); serr == nil && fi.Mode().IsRegular() && fi.Size() > 0 {
		if m, merr := mmap.Map(f, mmap.RDONLY, 0); merr == nil {
			defer func() {
				// After ProcessBytes returns no batch refers to m any more.
				if uerr := m.Unmap(); uerr != nil && err == nil {
					err = errors.Join(err, uerr)
				}
			}()
			return ProcessBytes(ctx, m, opts, h)
		}
	}
	return Process(ctx, f, opts, h)
}

func acquire(ctx context.Context, free <-chan *Batch) (*Batch, bool) {
	select {
	case b := <-free:
		return b, true
	case <-ctx.Done():
		return nil, false
	}
}

// send hands b to the workers, or back to free if ctx is done first (free
// always has room for a batch its holder returns).
func send(ctx context.Context, work chan<- *Batch, free chan<- *Batch, b *Batch) bool {
	select {
	case work <- b:
		return true
	case <-ctx.Done():
		b.reset()
		free <- b
		return false
	}
}

// bytesSource cuts in-memory input into batches of about ChunkSize bytes,
// ending at newlines, without copying.
type bytesSource struct{ data []byte }

func (s *bytesSource) run(ctx context.Context, p *pipeline, free chan *Batch, work chan<- *Batch) error {
	data, line := s.data, int64(1)
	var seq uint64
	for pos := 0; pos < len(data); {
		b, ok := acquire(ctx, free)
		if !ok {
			return nil
		}
		end := min(pos+p.opts.ChunkSize, len(data))
		if end < len(data) {
			if k := bytes.LastIndexByte(data[pos:end], '\n'); k >= 0 {
				end = pos + k + 1
			} else if k := bytes.IndexByte(data[end:], '\n'); k >= 0 {
				end += k + 1 // one long line: the worker rejects it as oversize
			} else {
				end = len(data)
			}
		}
		b.data, b.line, b.off, b.bytes, b.Seq = data[pos:end], line, int64(pos), int64(end-pos), seq
		seq++
		line += int64(bytes.Count(b.data, []byte{'\n'}))
		pos = end
		if !send(ctx, work, free, b) {
			return nil
		}
	}
	return nil
}

// readerSource reads into each batch's pooled chunk. The partial line at the
// end of a chunk is carried to the next one; a partial line longer than
// MaxRecordSize is rejected and discarded up to its newline, so memory stays
// at InFlight chunks whatever the input.
type readerSource struct {
	r          io.Reader
	carry      []byte
	off        int64 // stream offset of the next chunk's first byte
	line       int64 // line number of that byte
	seq        uint64
	eof        bool
	discarding bool // inside an oversize line
}

func (s *readerSource) run(ctx context.Context, p *pipeline, free chan *Batch, work chan<- *Batch) error {
	s.carry, s.line = make([]byte, 0, p.opts.maxLine+1), 1 // +1: a CRLF line's CR
	for !s.eof {
		b, ok := acquire(ctx, free)
		if !ok {
			return nil
		}
		if err := s.fill(ctx, p, b); err != nil {
			b.reset()
			free <- b
			return err
		}
		if len(b.data) == 0 && len(b.rejects) == 0 && b.bytes == 0 {
			b.reset()
			free <- b
			continue
		}
		b.Seq = s.seq
		s.seq++
		if !send(ctx, work, free, b) {
			return nil
		}
	}
	return nil
}

// fill loads complete lines into b.
func (s *readerSource) fill(ctx context.Context, p *pipeline, b *Batch) error {
	n := copy(b.chunk, s.carry)
	s.carry = s.carry[:0]
	for {
		b.off, b.line = s.off, s.line
		var err error
		if n, err = s.read(ctx, b.chunk, n); err != nil {
			return err
		}
		if !s.discarding {
			break
		}
		k := bytes.IndexByte(b.chunk[:n], '\n')
		if k < 0 { // the whole chunk belongs to the oversize line
			b.bytes += int64(n)
			s.off += int64(n)
			if n = 0; s.eof {
				return nil
			}
			continue
		}
		b.bytes += int64(k + 1)
		s.off += int64(k + 1)
		s.line++
		s.discarding = false
		n = copy(b.chunk, b.chunk[k+1:n])
		b.off, b.line = s.off, s.line
		if s.eof || n == len(b.chunk) {
			break
		}
	}
	s.cut(p, b, b.chunk[:n])
	return nil
}

// cut makes c's complete lines the batch and carries (or rejects) the rest.
func (s *readerSource) cut(p *pipeline, b *Batch, c []byte) {
	if s.eof {
		b.data = c
		b.bytes += int64(len(c))
		s.off += int64(len(c))
		return
	}
	k := bytes.LastIndexByte(c, '\n')
	b.data = c[:k+1]
	lines := int64(bytes.Count(b.data, []byte{'\n'}))
	tail := c[k+1:]
	if recordLen(tail) > p.opts.maxLine {
		b.oversize++
		p.reject(b, Reject{Line: s.line + lines, Offset: s.off + int64(k+1), Kind: KindOversize, Err: p.oversize})
		s.discarding = true
	} else {
		s.carry = append(s.carry, tail...)
	}
	consumed := len(c) - len(s.carry)
	b.bytes += int64(consumed)
	s.off += int64(consumed)
	s.line += lines
}

// read fills chunk[n:] until it is full or the input ends. It returns early
// after a short read that completed a line, so a slow producer's records are
// not held back waiting for a full chunk.
func (s *readerSource) read(ctx context.Context, chunk []byte, n int) (int, error) {
	for n < len(chunk) && !s.eof {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		m, err := s.r.Read(chunk[n:])
		n += m
		switch {
		case errors.Is(err, io.EOF):
			s.eof = true
		case err != nil:
			return n, err
		case m > 0 && n < len(chunk) && bytes.IndexByte(chunk[n-m:n], '\n') >= 0:
			return n, nil
		}
	}
	return n, nil
}
