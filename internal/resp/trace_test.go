package resp_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/cairnstore/cairn/internal/node"
	"github.com/cairnstore/cairn/internal/telemetry"
)

// TestSpans: with tracing on, each data command is a server span named
// for its command, carrying the tenant, the operation and a request id;
// a command refused before AUTH is not a span of any tenant.
func TestSpans(t *testing.T) {
	exp := keep{tracetest.NewInMemoryExporter()}
	n := startNodeOnly(t, func(c *node.Config) { c.Trace = telemetry.Config{SpanExporter: exp} })
	ctx := context.Background()
	c := client(t, n, "acme", acmeToken, 3)
	must(t, c.Set(ctx, "k", `{"a":1}`, 0).Err())
	must(t, c.Get(ctx, "k").Err())
	must(t, n.Shutdown(ctx)) // flushes the spans
	want := map[string]bool{"RESP SET": false, "RESP GET": false}
	for _, s := range exp.GetSpans() {
		if _, ok := want[s.Name]; !ok {
			continue
		}
		attrs := map[string]string{}
		for _, a := range s.Attributes {
			attrs[string(a.Key)] = a.Value.String()
		}
		if attrs["cairn.tenant"] != "acme" || attrs["cairn.op"] == "" || attrs["cairn.request_id"] == "" {
			t.Errorf("span %s attributes %v", s.Name, attrs)
		}
		want[s.Name] = true
	}
	for name, seen := range want {
		if !seen {
			t.Errorf("no span %q among %d", name, len(exp.GetSpans()))
		}
	}
}

// keep is an in-memory exporter that keeps its spans past Shutdown (the
// node's shutdown flushes them, then shuts the exporter down).
type keep struct{ *tracetest.InMemoryExporter }

func (keep) Shutdown(context.Context) error { return nil }
