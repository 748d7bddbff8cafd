// Package ingest turns NDJSON streams into batches of validated records
// without copying them: a strict RFC 8259 validator, a zero-copy decoder of
// MarketData records (symbol, price, volume, exchange metadata: the schema
// docs/ingest.md describes) and a bounded, parallel streaming pipeline.
//
// # Basics
//
//   - [Validate] checks one JSON value. The server reuses it for PUT bodies;
//     errors are *[SyntaxError] with the byte offset.
//   - [Decoder] decodes one MarketData record into views of its input.
//   - [Process], [ProcessBytes] and [ProcessFile] stream records to a
//     [Handler] in [Batch]es, one durable commit per batch.
//
// # Strictness
//
// Validation is strict RFC 8259; where the RFC leaves a choice, the
// decoder reads as encoding/json does (an escaped lone surrogate decodes to
// U+FFFD; of duplicate keys the last one wins). docs/ingest.md, "What is
// valid", lists every rule and the MarketData schema's required fields.
//
// # Pipeline
//
// A source goroutine fills pooled chunk buffers (or slices a mapped file)
// with complete lines, carrying a partial line to the next chunk; Workers
// goroutines decode batches in parallel; the caller's goroutine calls the
// Handler and merges statistics. Exactly InFlight batches exist, and each is
// always in one place (free list, source, work queue, worker, done queue,
// Handler), so memory is InFlight chunks plus arenas whatever the input size,
// and a slow Handler stalls the source instead of growing a queue.
//
// Framing is NDJSON: each line holds one JSON value, with optional
// whitespace around it; blank lines are skipped. A line is accepted or
// rejected whole: a value followed by anything but whitespace ({"a":1}},
// {"a":1}"tail", {"a":1}{"b":2}) is malformed ("trailing data"), as the same
// bytes are for [Validate], so no part of a rejected line is ever delivered.
// A newline is always a safe point to resume after a malformed line because
// a valid JSON string cannot hold a raw newline; the price is that one value
// may not span lines (pretty-printed JSON is rejected line by line). A line
// longer than MaxRecordSize is rejected as oversize and skipped up to its
// newline. Malformed and oversize records are counted, the first MaxRejects
// listed in [Stats] with line, offset and reason, and processing continues.
//
// # View lifetimes (the sharp edge)
//
// Everything a Handler sees — Batch.Records, Record.Raw, Record.Key, the
// views in Record.Market, Batch.RawFeed's result — points into the batch's
// chunk buffer, arena or the mapped file, and is valid only until the
// Handler returns: the batch is then reset and reused for later input.
// Copy what must outlive the call (a store that commits synchronously within
// the Handler needs no copy). Interned exchange and data_source values are
// the exception: they are permanent. Tests run with -tags cairndebug turn a
// retained view into a panic (see package streambuf).
//
// # Errors and concurrency
//
// A Handler error wrapping [ErrSkip] skips the batch; [Batch.Skip] skips
// single records; [PerRecord] adapts a per-record function. Any other error
// is fatal: Process stops, returns the statistics of the batches handled
// before it and the error. Cancelling ctx stops the source, the workers and
// the Handler calls promptly; Process returns only after every goroutine it
// started has exited and every batch is back in the pool. One caveat: a
// Read blocked in the io.Reader cannot be interrupted, so Process waits for
// it to return (an HTTP request body does once its request is cancelled).
//
// Validate, Process, ProcessBytes and ProcessFile are safe for concurrent
// use. A Decoder is not.
package ingest
