package reconcile

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnstore/cairn/internal/telemetry"
)

// Span names and attributes. A round is a root span of its own (a pass has
// no request to belong to) unless a RunRound caller's context carried one;
// decisions are its children, sampled (see sampleDecision).
const (
	spanRound    = "reconcile.round"
	spanDecision = "reconcile.decision"

	attrTenant  = attribute.Key("cairn.tenant")
	attrBackend = attribute.Key("cairn.backend")
	attrKey     = attribute.Key("cairn.key")
	attrAction  = attribute.Key("cairn.reconcile.action")
	attrReason  = attribute.Key("cairn.reconcile.reason")
	attrDeletes = attribute.Key("cairn.reconcile.deletes")
	attrResumed = attribute.Key("cairn.reconcile.resumed_after")
	attrScanned = attribute.Key("cairn.reconcile.scanned")
	attrApplied = attribute.Key("cairn.reconcile.actions")
	attrConfl   = attribute.Key("cairn.reconcile.conflicts")
	attrBytesUp = attribute.Key("cairn.reconcile.bytes_up")
	attrBytesDn = attribute.Key("cairn.reconcile.bytes_down")
)

// DefaultSampleInSync is how many InSync decisions share one span when
// Config.SampleInSync is 0: a converged round is almost all InSync, and a
// span per key would be a span per document.
const DefaultSampleInSync = 100

func (e *Engine) startRoundSpan(ctx context.Context, r *round) trace.Span {
	if e.cfg.Tracer == nil {
		return trace.SpanFromContext(context.Background()) // non-recording
	}
	_, span := e.cfg.Tracer.Start(ctx, spanRound, trace.WithAttributes(
		attrTenant.String(r.tenant), attrBackend.String(e.name), attrResumed.String(r.cursor)))
	return span
}

func endRoundSpan(span trace.Span, st *Stats, err error) {
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attrScanned.Int(st.Scanned), attrApplied.Int(st.Applied()),
		attrConfl.Int(st.Conflicts), attrBytesUp.Int64(st.BytesUp), attrBytesDn.Int64(st.BytesDown))
	for a, n := range st.Actions {
		if n > 0 {
			span.SetAttributes(attribute.Int("cairn.reconcile.action."+Action(a).String(), n))
		}
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// decisionSpan starts the span of one decision of round g, when sampled:
// every action but InSync, and one InSync in Config.SampleInSync. The
// uploader (g nil) has no round span, so its decisions have none.
func (e *Engine) decisionSpan(ctx context.Context, g *round, k *keyState, d Decision) trace.Span {
	if g == nil || !g.span.IsRecording() {
		return nil
	}
	if d.Action == InSync {
		g.mu.Lock()
		g.inSync++
		skip := (g.inSync-1)%e.cfg.SampleInSync != 0
		g.mu.Unlock()
		if skip {
			return nil
		}
	}
	_, span := telemetry.StartChild(ctx, spanDecision)
	span.SetAttributes(attrKey.String(k.key), attrAction.String(d.Action.String()), attrReason.String(d.Reason))
	if d.Deletes {
		span.SetAttributes(attrDeletes.Bool(true))
	}
	return span
}

func endDecisionSpan(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
