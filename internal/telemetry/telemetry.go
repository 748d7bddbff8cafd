package telemetry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/logevery"
)

// The exporter names accepted by [Config.Exporter] and OTEL_TRACES_EXPORTER.
const (
	ExporterNone    = "none"    // the no-op provider: no SDK, no spans, zero cost
	ExporterConsole = "console" // one human-readable line per span on Config.Console (stderr)
	ExporterJSON    = "json"    // one JSON object per span appended to Config.TraceFile
	ExporterOTLP    = "otlp"    // OTLP over gRPC or HTTP, set up by the OTEL_EXPORTER_OTLP_* variables

	exporterCustom = "custom" // Config.SpanExporter; not a name Setup accepts
)

// Config configures [Setup]. The zero value is valid: no tracing, metrics on
// an own registry.
type Config struct {
	// Exporter is one of none, console, json, otlp. Empty means the value of
	// OTEL_TRACES_EXPORTER, and "none" if that is empty too.
	Exporter string
	// TraceFile is the file the json exporter appends to; required for json.
	TraceFile string
	// SampleRatio is the share of new (root) traces sampled, in (0, 1]; 0
	// means 1. A request that arrives with a traceparent follows its
	// parent's sampled flag whatever the ratio (parent-based sampling).
	SampleRatio float64
	// Version is service.version and cairn_build_info's version; empty
	// means the main module's version from the build info.
	Version string
	// NodeID is the resource attribute cairn.node_id.
	NodeID string
	// Console receives the console exporter's lines; nil means os.Stderr.
	Console io.Writer
	// MaxTenants bounds the per-tenant stats table [1024]; tenants beyond it
	// are counted together under "_other".
	MaxTenants int
	// Logger receives the tracing SDK's own errors (an export that failed:
	// the collector is down, say), at most one line a minute; nil is
	// slog.Default(). It is installed as otel's global error handler, so
	// only when NoGlobal is false.
	Logger *slog.Logger
	// NoGlobal leaves the otel globals (tracer provider, propagator, error
	// handler) alone.
	// Setup installs them by default so that packages can call otel.Tracer;
	// tests that run several Telemetry values set it.
	NoGlobal bool
	// Getenv reads the OTEL_* variables; nil means os.Getenv. The OTLP
	// exporters themselves read the process environment.
	Getenv func(string) string

	// SpanExporter, when set, replaces the exporter that Exporter names:
	// spans go to it through the SDK's batcher (Exporter is then ignored and
	// [Telemetry.Exporter] reports "custom"). It is for tests (an in-memory
	// exporter, read after [Telemetry.ForceFlush]) and for programs that
	// embed a node; Shutdown shuts it down.
	SpanExporter sdktrace.SpanExporter

	// testSync exports each span as it ends (tests in this package).
	testSync bool
}

// Telemetry is one process's tracing and metrics: the tracer provider, the
// Prometheus registry with cairn's metrics, and the per-tenant table. It is
// safe for concurrent use.
type Telemetry struct {
	// Metrics are cairn's Prometheus metrics, on their own registry.
	Metrics *Metrics

	exporter string               // resolved exporter name
	provider trace.TracerProvider // noop.TracerProvider for "none"
	sdk      *sdktrace.TracerProvider
	tracer   trace.Tracer // the middleware's tracer
	tracing  bool         // exporter != none: spans are worth starting
	closers  []io.Closer  // the json exporter's file
	red      *red
}

// propagator is W3C Trace Context, used by the middleware and by
// InjectTransport regardless of the otel globals, so a Telemetry built with
// NoGlobal still continues and injects traces.
var propagator propagation.TextMapPropagator = propagation.TraceContext{}

// instrumentation names the tracer of this package's middleware.
const instrumentation = "github.com/cairnstore/cairn/internal/telemetry"

// Setup builds the tracer provider named by cfg and the metrics. Errors are
// of class fault.Config and name the setting. Call Shutdown to flush.
func Setup(ctx context.Context, cfg Config) (*Telemetry, error) {
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if cfg.Version == "" {
		cfg.Version = buildVersion()
	}
	name := ResolveExporter(cfg.Exporter, getenv)
	if cfg.SpanExporter != nil {
		name = exporterCustom
	} else if err := CheckExporter(name, cfg.TraceFile); err != nil {
		return nil, err
	}
	ratio := cfg.SampleRatio
	if ratio == 0 {
		ratio = 1
	}
	if !(ratio > 0 && ratio <= 1) { // also refuses NaN
		return nil, configErr("trace sample ratio %v: must be in (0, 1]", cfg.SampleRatio)
	}

	t := &Telemetry{exporter: name, Metrics: NewMetrics(cfg.Version, cfg.MaxTenants)}
	t.red = newRED(t.Metrics)
	if name == ExporterNone {
		t.provider = noop.NewTracerProvider()
	} else {
		exp := cfg.SpanExporter
		if exp == nil {
			var err error
			if exp, err = t.newExporter(ctx, name, cfg, getenv); err != nil {
				return nil, err
			}
		}
		// WithBatcher starts the batcher's goroutine when called, so call
		// only the one that is used.
		var process sdktrace.TracerProviderOption
		if cfg.testSync {
			process = sdktrace.WithSyncer(exp)
		} else {
			process = sdktrace.WithBatcher(exp, batchOptions(name)...)
		}
		res, err := resource.New(ctx,
			resource.WithTelemetrySDK(),
			resource.WithAttributes(
				semconv.ServiceName("cairn"),
				semconv.ServiceVersion(cfg.Version),
				attribute.String("cairn.node_id", cfg.NodeID),
			),
			resource.WithFromEnv(), // OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME override
		)
		if err != nil {
			for _, c := range t.closers {
				c.Close()
			}
			return nil, configErr("trace resource: %v", err)
		}
		t.sdk = sdktrace.NewTracerProvider(
			sdktrace.WithResource(res),
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
			process,
		)
		t.provider = t.sdk
		t.tracing = true
	}
	t.tracer = t.provider.Tracer(instrumentation)
	if !cfg.NoGlobal {
		otel.SetTracerProvider(t.provider)
		otel.SetTextMapPropagator(propagator)
		otel.SetErrorHandler(sdkErrors(cmp.Or(cfg.Logger, slog.Default())))
	}
	return t, nil
}

// sdkErrors logs the tracing SDK's errors, which otel would otherwise print
// with the standard library's logger: plain text in the middle of the
// node's JSON log, once per failed batch.
func sdkErrors(log *slog.Logger) otel.ErrorHandler {
	every := &logevery.Limiter{Period: time.Minute}
	return otel.ErrorHandlerFunc(func(err error) {
		if ok, suppressed := every.Allow("otel", time.Now()); ok {
			log.Warn("tracing: the SDK failed (spans may be lost)", "err", err, "suppressed", suppressed)
		}
	})
}

// batchOptions: the console and json exporters are read by people while the
// node runs, so they flush every second instead of the SDK's five.
func batchOptions(name string) []sdktrace.BatchSpanProcessorOption {
	if name == ExporterConsole || name == ExporterJSON {
		return []sdktrace.BatchSpanProcessorOption{sdktrace.WithBatchTimeout(time.Second)}
	}
	return nil
}

// ResolveExporter is the exporter New sets up for Config.Exporter:
// exporter, else $OTEL_TRACES_EXPORTER, else none, in lower case.
func ResolveExporter(exporter string, getenv func(string) string) string {
	name := strings.ToLower(strings.TrimSpace(exporter))
	if name == "" {
		name = strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")))
	}
	return cmp.Or(name, ExporterNone)
}

// CheckExporter reports whether the exporter name (as ResolveExporter
// gives it) can be set up with traceFile, without setting it up: New's
// check, and the settings' check before a node starts.
func CheckExporter(name, traceFile string) error {
	switch name {
	case ExporterNone, ExporterConsole, ExporterOTLP, ExporterJSON:
	default:
		return configErr("trace exporter %q: want none, console, json or otlp", name)
	}
	if name == ExporterJSON && traceFile == "" {
		return configErr("trace exporter json needs a trace file (--trace-file)")
	}
	if name != ExporterJSON && traceFile != "" {
		// The spans someone expects in that file would go elsewhere, or nowhere.
		return configErr("trace file %q: only the json exporter writes one, and the exporter is %s (--trace-exporter json)", traceFile, name)
	}
	return nil
}

// newExporter sets up the exporter name, which CheckExporter passed.
func (t *Telemetry) newExporter(ctx context.Context, name string, cfg Config, getenv func(string) string) (sdktrace.SpanExporter, error) {
	switch name {
	case ExporterConsole:
		w := cfg.Console
		if w == nil {
			w = os.Stderr
		}
		return newConsoleExporter(w), nil
	case ExporterJSON:
		f, err := os.OpenFile(cfg.TraceFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, configErr("trace file: %v", err)
		}
		t.closers = append(t.closers, f)
		return newJSONExporter(f), nil
	default: // ExporterOTLP: New sets none up for ExporterNone
		return newOTLPExporter(ctx, getenv)
	}
}

// newOTLPExporter picks the transport from OTEL_EXPORTER_OTLP_TRACES_PROTOCOL
// or OTEL_EXPORTER_OTLP_PROTOCOL: grpc, or http/protobuf (the specification's
// default). Endpoint, headers, TLS, compression and timeout come from the
// standard OTEL_EXPORTER_OTLP_* variables, read by the exporters themselves.
// Neither constructor dials: an unreachable collector shows up as export
// errors (logged by otel's error handler), not as a startup failure.
func newOTLPExporter(ctx context.Context, getenv func(string) string) (sdktrace.SpanExporter, error) {
	proto := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch proto {
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	case "", "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	default:
		return nil, configErr("OTEL_EXPORTER_OTLP_PROTOCOL %q: want grpc or http/protobuf", proto)
	}
	if err != nil {
		return nil, configErr("otlp exporter: %v", err)
	}
	return exp, nil
}

func configErr(format string, args ...any) error {
	return fault.New(fault.Config, fault.Context{Op: "telemetry.setup"}, fmt.Sprintf(format, args...))
}

func buildVersion() string {
	if v := ReadBuild().Version; v != "" {
		return v
	}
	return "dev"
}

// Exporter returns the resolved exporter name.
func (t *Telemetry) Exporter() string { return t.exporter }

// TracerProvider returns the provider: the SDK's, or a no-op one for none.
func (t *Telemetry) TracerProvider() trace.TracerProvider { return t.provider }

// Tracer returns a tracer of the provider for the named package.
func (t *Telemetry) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return t.provider.Tracer(name, opts...)
}

// Shutdown flushes the spans still queued, stops the exporter and closes the
// trace file. It waits until ctx ends at most. Calling it again is harmless.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	if t.sdk != nil {
		if err := t.sdk.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("telemetry: shutdown tracer provider: %w", err))
		}
	}
	for _, c := range t.closers {
		if err := c.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
			errs = append(errs, fmt.Errorf("telemetry: close trace file: %w", err))
		}
	}
	return errors.Join(errs...)
}

// ForceFlush exports every span ended so far. It is a no-op for none.
func (t *Telemetry) ForceFlush(ctx context.Context) error {
	if t.sdk == nil {
		return nil
	}
	return t.sdk.ForceFlush(ctx)
}
