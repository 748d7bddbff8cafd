package server

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnstore/cairn/internal/ingest"
	"github.com/cairnstore/cairn/internal/store"
	"github.com/cairnstore/cairn/internal/telemetry"
)

// The tracing and metrics of ingestion, kept beside ingest.go's handler.

// batchSpan starts the ingest.batch span of b, a child of the request's
// server span, with accepted of its records going to the store. The span
// lasts until endBatchSpan: batches are pipelined, so that is when the
// batch's commit is known, after the next batch was queued.
func (run *ingestRun) batchSpan(b *ingest.Batch, accepted int) trace.Span {
	_, span := telemetry.StartChild(run.ctx, "ingest.batch")
	if span.IsRecording() {
		span.SetAttributes(
			attribute.Int64("cairn.ingest.batch", int64(b.Seq)),
			attribute.Int("cairn.ingest.records", len(b.Records)),
			attribute.Int("cairn.ingest.accepted", accepted))
	}
	return span
}

// endBatchSpan ends a batch's span with its commit's outcome: the group
// commit size (cairn.store.group_size, as on store.commit) or the error.
func endBatchSpan(span trace.Span, recs []store.Record, err error) {
	if span.IsRecording() {
		switch {
		case err != nil:
			span.RecordError(err)
			span.SetStatus(codes.Error, "commit failed")
		case len(recs) > 0:
			span.SetAttributes(attribute.Int("cairn.store.group_size", recs[0].Group))
		}
	}
	span.End()
}

// countIngest tells IngestOptions.Counted of a finished stream. Counting
// per stream keeps the hot loop free of metric updates; a long stream
// shows up when it ends.
func (h *ingestHandler) countIngest(tenant string, st ingest.Stats) {
	if h.counted != nil {
		h.counted(tenant, st)
	}
}
