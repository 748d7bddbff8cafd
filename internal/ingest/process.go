package ingest

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/cairnstore/cairn/internal/streambuf"
)

// Schema selects how each record is decoded.
type Schema uint8

const (
	// Generic accepts any JSON value, fully validated; the key comes from
	// Options.KeyField or Options.KeyPointer (none: no key).
	Generic Schema = iota
	// MarketDataSchema decodes each record into Record.Market.
	MarketDataSchema
)

// Options configure Process. Zero fields take the documented defaults.
type Options struct {
	Schema     Schema
	KeyField   string // top-level member holding the key (Generic)
	KeyPointer string // RFC 6901 pointer to the key (Generic); exclusive with KeyField
	// BodyPointer, if set, is an RFC 6901 pointer to the document within
	// each record (Generic): Record.Raw is that value's bytes, not the
	// record's. A record without it is rejected. The export format
	// (ExportKeyPointer, ExportBodyPointer) is read this way. MaxRecordSize
	// and MaxDepth then bound the document; the line around it may be
	// longer by recordSlack and deeper by the pointer's length.
	BodyPointer string

	ChunkSize     int // read buffer per batch (default 1 MiB; raised above MaxRecordSize)
	MaxRecordSize int // longest line accepted (default 1 MiB); longer lines are rejected
	MaxDepth      int // nesting limit (default DefaultMaxDepth)
	Workers       int // parallel decoders (default GOMAXPROCS)
	InFlight      int // batches alive at once, the memory bound (default Workers+2, min 2)
	Ordered       bool
	MaxRejects    int // rejects listed in Stats (default 100; all are counted)

	Intern streambuf.Config // interner bounds of each pooled batch

	maxLine int // longest line: MaxRecordSize, plus recordSlack with BodyPointer
}

// recordSlack is how much longer than its document a line read with
// BodyPointer may be: the key (doc.MaxKeyLen bytes, up to six times as
// long JSON-escaped) and the member names and punctuation around them.
const recordSlack = 8 << 10

const (
	defaultChunkSize  = 1 << 20
	defaultMaxRecord  = 1 << 20
	defaultMaxRejects = 100
)

// The pointers of the export format ('cairn export'): each line is
// {"key": KEY, "doc": DOCUMENT}.
const (
	ExportKeyPointer  = "/key"
	ExportBodyPointer = "/doc"
)

// Check reports the error Process would return for o before it reads
// anything: a key or body pointer that does not parse, or two ways to find
// keys.
func (o Options) Check() error {
	_, _, _, err := o.normalize()
	return err
}

func (o Options) normalize() (Options, []string, []string, error) {
	o, key, err := o.normalizeKey()
	if err != nil || o.BodyPointer == "" {
		return o, key, nil, err
	}
	if o.Schema != Generic {
		return o, nil, nil, fmt.Errorf("ingest: options: BodyPointer is for the generic schema")
	}
	body, err := parsePointer(o.BodyPointer)
	return o, key, body, err
}

func (o Options) normalizeKey() (Options, []string, error) {
	if o.MaxRecordSize <= 0 {
		o.MaxRecordSize = defaultMaxRecord
	}
	o.maxLine = o.MaxRecordSize
	if o.BodyPointer != "" {
		o.maxLine += recordSlack
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = defaultChunkSize
	}
	// A chunk must hold a carried partial line of maxLine (and a CRLF
	// line end's CR) plus room to read more; doubling keeps reads large when
	// the two are close.
	if o.ChunkSize <= o.maxLine+1 {
		o.ChunkSize = 2 * (o.maxLine + 1)
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	if o.BodyPointer != "" {
		o.MaxDepth += strings.Count(o.BodyPointer, "/") // one level a reference token
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.InFlight <= 0 {
		o.InFlight = o.Workers + 2
	}
	o.InFlight = max(o.InFlight, 2)
	if o.MaxRejects <= 0 {
		o.MaxRejects = defaultMaxRejects
	}
	switch {
	case o.KeyField != "" && o.KeyPointer != "":
		return o, nil, fmt.Errorf("ingest: options: set KeyField or KeyPointer, not both")
	case o.KeyField != "":
		return o, []string{o.KeyField}, nil
	case o.KeyPointer != "":
		p, err := parsePointer(o.KeyPointer)
		return o, p, err
	}
	return o, nil, nil
}

// RejectKind says why a record was not accepted.
type RejectKind uint8

// The kinds of Reject.
const (
	KindMalformed RejectKind = iota // invalid JSON or wrong shape
	KindOversize                    // line longer than MaxRecordSize
	KindSkipped                     // the Handler skipped it
)

func (k RejectKind) String() string {
	return [...]string{"malformed", "oversize", "skipped"}[k]
}

// Reject describes one record that was not accepted.
type Reject struct {
	Line   int64 // 1-based line number
	Offset int64 // byte offset in the stream of the record (or line) start
	Kind   RejectKind
	Err    error // *SyntaxError or *FieldError (absolute offsets), ErrOversize, or the Handler's reason
}

// Reason is Err's message, for reports.
func (r Reject) Reason() string { return r.Err.Error() }

// Stats summarise a Process call, complete or not.
type Stats struct {
	Records   int64 // accepted records (delivered and not skipped)
	Bytes     int64 // input bytes consumed
	Malformed int64
	Oversize  int64
	Skipped   int64
	Duration  time.Duration
	Rejects   []Reject // the first MaxRejects rejects, by offset
}

// Throughput is the input rate in bytes per second.
func (s Stats) Throughput() float64 {
	if s.Duration <= 0 {
		return 0
	}
	return float64(s.Bytes) / s.Duration.Seconds()
}

// RecordsPerSecond is the accepted-record rate.
func (s Stats) RecordsPerSecond() float64 {
	if s.Duration <= 0 {
		return 0
	}
	return float64(s.Records) / s.Duration.Seconds()
}

// Process reads an NDJSON stream (one JSON value per line), decodes the
// lines in parallel and hands the records to h in batches. See the package doc for the pipeline, the error
// classes and view lifetimes.
//
// It returns the statistics of what was processed and: nil at end of input;
// the Handler's fatal error (wrapped); the context's error when ctx was
// cancelled; or a read error. Malformed, oversize and skipped records are
// not errors: they are counted and listed in Stats.
func Process(ctx context.Context, r io.Reader, opts Options, h Handler) (Stats, error) {
	return run(ctx, &readerSource{r: r}, opts, h)
}

// ProcessBytes is Process over input already in memory: batches are views of
// data, with no copying into chunk buffers.
func ProcessBytes(ctx context.Context, data []byte, opts Options, h Handler) (Stats, error) {
	return run(ctx, &bytesSource{data: data}, opts, h)
}

// source fills batches with complete lines and sends them to work. It owns
// every batch between taking it from free and sending it on.
type source interface {
	run(ctx context.Context, p *pipeline, free chan *Batch, work chan<- *Batch) error
}

type pipeline struct {
	opts     Options
	key      []string
	body     []string // BodyPointer's tokens; nil: the record is the document
	oversize error    // ErrOversize, naming the limit
}

func run(ctx context.Context, src source, opts Options, h Handler) (Stats, error) {
	start := time.Now()
	opts, key, body, err := opts.normalize()
	if err != nil {
		return Stats{}, err
	}
	p := &pipeline{opts: opts, key: key, body: body,
		oversize: fmt.Errorf("%w: a line holds at most %d bytes", ErrOversize, opts.maxLine)}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	// Every batch lives in exactly one of: free, the source, work, a worker,
	// done, the collector. Their number is the memory bound.
	free := make(chan *Batch, opts.InFlight)
	work := make(chan *Batch, opts.InFlight)
	done := make(chan *Batch, opts.InFlight)
	chunk := opts.ChunkSize
	if _, inMemory := src.(*bytesSource); inMemory {
		chunk = 0
	}
	for range opts.InFlight {
		free <- getBatch(chunk, opts.Intern)
	}

	var readErr error
	var readers, workers sync.WaitGroup
	readers.Go(func() {
		defer close(work)
		readErr = src.run(ctx, p, free, work)
	})
	for range opts.Workers {
		workers.Go(func() { p.decodeLoop(ctx, work, done) })
	}
	go func() { // owned: ends when the workers do, which run waits for via done
		workers.Wait()
		close(done)
	}()

	st, herr := p.collect(ctx, cancel, done, free, h)
	readers.Wait()
	for range opts.InFlight {
		putBatch(<-free)
	}
	st.Duration = time.Since(start)
	switch {
	case herr != nil:
		return st, herr
	case context.Cause(ctx) != nil:
		return st, fmt.Errorf("ingest: stopped after %d bytes: %w", st.Bytes, context.Cause(ctx))
	case readErr != nil:
		return st, fmt.Errorf("ingest: read after %d bytes: %w", st.Bytes, readErr)
	}
	return st, nil
}
