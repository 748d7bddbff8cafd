// Package telemetry is cairn's observability: OpenTelemetry traces,
// Prometheus metrics and slog logs that carry the trace and request ids.
//
// # Basics
//
// [Setup] builds a [Telemetry] from a [Config]: a tracer provider chosen by
// exporter name (none, console, json, otlp), parent-based ratio sampling,
// the W3C trace-context propagator, and [Metrics] on an own Prometheus
// registry. [Telemetry.Middleware] instruments HTTP routes (server span +
// RED metrics + tenant table); [InjectTransport] propagates the trace on
// outgoing requests; [NewLogger] makes the slog logger whose records carry
// trace_id, span_id, request_id and tenant. The admin listener mounts
// [Telemetry.MetricsHandler], [Telemetry.TenantStatsHandler] and
// [PprofHandler].
//
// The request's identity ([RequestInfo]: request id, tenant, operation) is
// the server's reqctx.Info, read from the context; the parent span and the
// start time are the OTel span's. Nothing passes either by hand.
//
// # Performance
//
// With the none exporter no SDK is built: the provider is the OTel no-op one
// and the middleware does not even parse traceparent, so per request it
// costs one clock read of its own (it times from the server's), two atomic
// adds to the route's in-flight count, a histogram observation, a counter
// increment and the status-code and tenant-table lookups, and allocates
// nothing (docs/performance.md). Metric children are resolved once per
// (route, method) and status code, on first use, into copy-on-write maps
// read without locks.
//
// # Cardinality
//
// No metric label holds a tenant id or a key. Routes are ServeMux patterns,
// methods outside the standard nine are _OTHER, and both the route table
// (256 route/method pairs) and the tenant table ([Config.MaxTenants]) are
// bounded, with an overflow row. Only requests that authenticated for their
// tenant (RequestInfo.Authenticated) get a tenant row; the others share one,
// so names made up by strangers cannot fill the table.
//
// # Caveats
//
//   - The middleware must run after routing (r.Pattern set): mount it per
//     route, as the server's Options.Middleware does.
//   - With the none exporter an incoming traceparent is not continued and
//     logs carry no trace_id: that is the price of zero cost.
//   - Setup installs the otel global tracer provider and propagator unless
//     Config.NoGlobal; otel.Tracer handles taken earlier follow the switch.
//   - Importing this package registers pprof on http.DefaultServeMux (a side
//     effect of net/http/pprof): never serve DefaultServeMux.
package telemetry
