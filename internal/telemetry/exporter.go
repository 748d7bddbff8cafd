package telemetry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// lineExporter writes each span of a batch as one line, built by format, in
// one Write per batch (so an O_APPEND file gets whole lines even when two
// processes share it). It is the console and the json exporter.
type lineExporter struct {
	format func(buf []byte, s sdktrace.ReadOnlySpan) []byte

	mu  sync.Mutex // guards w and buf
	w   io.Writer  // nil after Shutdown
	buf []byte
}

var _ sdktrace.SpanExporter = (*lineExporter)(nil)

func newConsoleExporter(w io.Writer) *lineExporter {
	return &lineExporter{w: w, format: appendConsole}
}

func newJSONExporter(w io.Writer) *lineExporter {
	return &lineExporter{w: w, format: appendJSON}
}

func (e *lineExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.w == nil {
		return nil
	}
	e.buf = e.buf[:0]
	for _, s := range spans {
		e.buf = e.format(e.buf, s)
		e.buf = append(e.buf, '\n')
	}
	if _, err := e.w.Write(e.buf); err != nil {
		return fmt.Errorf("telemetry: write spans: %w", err)
	}
	return nil
}

// Shutdown stops writing; the owner closes the writer.
func (e *lineExporter) Shutdown(context.Context) error {
	e.mu.Lock()
	e.w = nil
	e.mu.Unlock()
	return nil
}

// appendConsole formats a span for people:
//
//	span GET /v1/tenants/{tenant}/docs/{key...} 1.234ms trace=4bf9… span=00f0… parent=… status=ok http.route=… cairn.tenant=acme
func appendConsole(b []byte, s sdktrace.ReadOnlySpan) []byte {
	sc := s.SpanContext()
	b = append(b, "span "...)
	b = append(b, s.Name()...)
	b = append(b, ' ')
	b = append(b, s.EndTime().Sub(s.StartTime()).Round(time.Microsecond).String()...)
	b = append(b, " trace="...)
	b = append(b, sc.TraceID().String()...)
	b = append(b, " span="...)
	b = append(b, sc.SpanID().String()...)
	if p := s.Parent(); p.IsValid() {
		b = append(b, " parent="...)
		b = append(b, p.SpanID().String()...)
	}
	b = append(b, " kind="...)
	b = append(b, s.SpanKind().String()...)
	b = append(b, " status="...)
	b = append(b, statusName(s.Status().Code)...)
	if d := s.Status().Description; d != "" {
		b = append(b, " status_message="...)
		b = strconv.AppendQuote(b, d)
	}
	for _, kv := range s.Attributes() {
		b = append(b, ' ')
		b = append(b, kv.Key...)
		b = append(b, '=')
		b = appendConsoleValue(b, kv.Value)
	}
	for _, ev := range s.Events() {
		b = append(b, " event="...)
		b = strconv.AppendQuote(b, ev.Name)
	}
	return b
}

func appendConsoleValue(b []byte, v attribute.Value) []byte {
	if v.Type() == attribute.STRING {
		s := v.AsString()
		if needsQuote(s) {
			return strconv.AppendQuote(b, s)
		}
		return append(b, s...)
	}
	return append(b, v.String()...)
}

func needsQuote(s string) bool {
	if s == "" {
		return true
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == '"' || c == '=' || c >= 0x7f {
			return true
		}
	}
	return false
}

func statusName(c codes.Code) string {
	switch c {
	case codes.Ok:
		return "ok"
	case codes.Error:
		return "error"
	}
	return "unset"
}

// jsonSpan is the json exporter's line: flat, with ids as hex strings and
// attributes as an object, so that jq and grep read it without knowing OTLP.
type jsonSpan struct {
	Name          string         `json:"name"`
	TraceID       string         `json:"trace_id"`
	SpanID        string         `json:"span_id"`
	ParentSpanID  string         `json:"parent_span_id,omitempty"`
	Kind          string         `json:"kind"`
	Start         time.Time      `json:"start"`
	End           time.Time      `json:"end"`
	DurationNanos int64          `json:"duration_ns"`
	Status        string         `json:"status"`
	StatusMessage string         `json:"status_message,omitempty"`
	Attributes    map[string]any `json:"attributes,omitempty"`
	Events        []jsonEvent    `json:"events,omitempty"`
	Links         []jsonLink     `json:"links,omitempty"`
	Resource      map[string]any `json:"resource,omitempty"`
	Scope         string         `json:"scope,omitempty"`
}

type jsonEvent struct {
	Name       string         `json:"name"`
	Time       time.Time      `json:"time"`
	Attributes map[string]any `json:"attributes,omitempty"`
}

type jsonLink struct {
	TraceID string `json:"trace_id"`
	SpanID  string `json:"span_id"`
}

func appendJSON(b []byte, s sdktrace.ReadOnlySpan) []byte {
	sc := s.SpanContext()
	js := jsonSpan{
		Name:          s.Name(),
		TraceID:       sc.TraceID().String(),
		SpanID:        sc.SpanID().String(),
		Kind:          s.SpanKind().String(),
		Start:         s.StartTime(),
		End:           s.EndTime(),
		DurationNanos: s.EndTime().Sub(s.StartTime()).Nanoseconds(),
		Status:        statusName(s.Status().Code),
		StatusMessage: s.Status().Description,
		Attributes:    attrMap(s.Attributes()),
		Scope:         s.InstrumentationScope().Name,
	}
	if p := s.Parent(); p.IsValid() {
		js.ParentSpanID = p.SpanID().String()
	}
	if r := s.Resource(); r != nil {
		js.Resource = attrMap(r.Attributes())
	}
	for _, ev := range s.Events() {
		js.Events = append(js.Events, jsonEvent{Name: ev.Name, Time: ev.Time, Attributes: attrMap(ev.Attributes)})
	}
	for _, l := range s.Links() {
		js.Links = append(js.Links, jsonLink{TraceID: l.SpanContext.TraceID().String(), SpanID: l.SpanContext.SpanID().String()})
	}
	line, err := json.Marshal(js)
	if err != nil { // only a NaN or Inf float attribute gets here
		line, _ = json.Marshal(jsonSpan{Name: js.Name, TraceID: js.TraceID, SpanID: js.SpanID,
			Status: "error", StatusMessage: "telemetry: span not encodable: " + err.Error()})
	}
	return append(b, line...)
}

func attrMap(kvs []attribute.KeyValue) map[string]any {
	if len(kvs) == 0 {
		return nil
	}
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.AsInterface()
	}
	return m
}
