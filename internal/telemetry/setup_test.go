package telemetry

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/cairnstore/cairn/internal/fault"
)

func TestSetupExporterChoice(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	for _, tc := range []struct {
		name    string
		cfg     Config
		want    string // resolved exporter; "" = an error
		wantErr string
	}{
		{name: "default none", cfg: Config{Getenv: env(nil)}, want: "none"},
		{name: "env console", cfg: Config{Getenv: env(map[string]string{"OTEL_TRACES_EXPORTER": "console"})}, want: "console"},
		{name: "config beats env", cfg: Config{Exporter: "none", Getenv: env(map[string]string{"OTEL_TRACES_EXPORTER": "console"})}, want: "none"},
		{name: "case", cfg: Config{Exporter: "Console"}, want: "console"},
		{name: "unknown", cfg: Config{Exporter: "zipkin"}, wantErr: `trace exporter "zipkin"`},
		{name: "json without file", cfg: Config{Exporter: "json"}, wantErr: "trace file"},
		{name: "file without json", cfg: Config{Exporter: "none", TraceFile: "spans.ndjson"}, wantErr: "only the json exporter writes one"},
		{name: "bad ratio", cfg: Config{SampleRatio: 1.5}, wantErr: "sample ratio"},
		{name: "bad otlp protocol", cfg: Config{Exporter: "otlp", Getenv: env(map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})}, wantErr: "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{name: "otlp grpc", cfg: Config{Exporter: "otlp", Getenv: env(map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})}, want: "otlp"},
		{name: "otlp http", cfg: Config{Exporter: "otlp", Getenv: env(nil)}, want: "otlp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.NoGlobal = true
			tc.cfg.Console = &bytes.Buffer{}
			tel, err := Setup(context.Background(), tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || fault.ClassOf(err) != fault.Config {
					t.Fatalf("Setup error = %v, want class config mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer tel.Shutdown(context.Background())
			if got := tel.Exporter(); got != tc.want {
				t.Errorf("exporter = %q, want %q", got, tc.want)
			}
			_, isNoop := tel.TracerProvider().(noop.TracerProvider)
			if isNoop != (tc.want == "none") {
				t.Errorf("provider %T for exporter %q", tel.TracerProvider(), tc.want)
			}
		})
	}
}

func TestJSONExporter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spans.json")
	os.WriteFile(path, []byte(`{"name":"earlier"}`+"\n"), 0o644)
	tel := setup(t, Config{Exporter: "json", TraceFile: path, NoGlobal: true, NodeID: "n1"})
	ctx, parent := tel.Tracer("test").Start(context.Background(), "outer")
	_, child := tel.Tracer("test").Start(ctx, "inner", trace.WithAttributes(AttrTenant.String("acme")))
	child.End()
	parent.End()
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	var spans []jsonSpan
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var s jsonSpan
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		names = append(names, s.Name)
		spans = append(spans, s)
	}
	if strings.Join(names, ",") != "earlier,inner,outer" {
		t.Fatalf("span lines = %v, want earlier (appended to), inner, outer", names)
	}
	inner, outer := spans[1], spans[2]
	if inner.ParentSpanID != outer.SpanID || inner.TraceID != outer.TraceID || inner.Attributes["cairn.tenant"] != "acme" {
		t.Errorf("inner = %+v, want child of outer %s with cairn.tenant", inner, outer.SpanID)
	}
	if outer.Resource["service.name"] != "cairn" || outer.Resource["cairn.node_id"] != "n1" {
		t.Errorf("resource = %v", outer.Resource)
	}
}

func TestConsoleExporter(t *testing.T) {
	var buf bytes.Buffer
	tel := setup(t, Config{Exporter: "console", Console: &buf, NoGlobal: true})
	_, s := tel.Tracer("test").Start(context.Background(), "GET /v1/x",
		trace.WithAttributes(AttrTenant.String("acme"), AttrRequestID.String("a b")))
	s.End()
	if err := tel.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(buf.String())
	sc := s.SpanContext()
	for _, want := range []string{"span GET /v1/x ", "trace=" + sc.TraceID().String(), "span=" + sc.SpanID().String(),
		"cairn.tenant=acme", `cairn.request_id="a b"`, "status=unset"} {
		if !strings.Contains(line, want) {
			t.Errorf("console line %q lacks %q", line, want)
		}
	}
	if strings.Count(buf.String(), "\n") != 1 {
		t.Errorf("console output %q, want one line", buf.String())
	}
}

type captureRT struct{ got *http.Request }

func (c *captureRT) RoundTrip(r *http.Request) (*http.Response, error) {
	c.got = r
	return nil, errors.New("captured")
}

func TestInjectTransport(t *testing.T) {
	tel, _ := newTraced(t)
	ctx, span := tel.Tracer("test").Start(context.Background(), "client op")
	defer span.End()
	var c captureRT
	rt := InjectTransport(&c)

	req, _ := http.NewRequestWithContext(ctx, "GET", "http://127.0.0.1/x", nil)
	rt.RoundTrip(req)
	sc := span.SpanContext()
	want := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"
	if got := c.got.Header.Get("traceparent"); got != want {
		t.Errorf("traceparent = %q, want %q", got, want)
	}
	if req.Header.Get("traceparent") != "" {
		t.Error("the caller's request was modified")
	}

	plain, _ := http.NewRequest("GET", "http://127.0.0.1/x", nil)
	rt.RoundTrip(plain)
	if c.got != plain || plain.Header.Get("traceparent") != "" {
		t.Error("a request without a span was cloned or given a traceparent")
	}
}

func TestPprofHandler(t *testing.T) {
	rec := &responseBuffer{header: http.Header{}}
	req, _ := http.NewRequest("GET", "/debug/pprof/", nil)
	PprofHandler().ServeHTTP(rec, req)
	if rec.code != 0 && rec.code != 200 || !strings.Contains(rec.body.String(), "goroutine") {
		t.Errorf("pprof index: %d %q", rec.code, rec.body.String())
	}
}

type responseBuffer struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *responseBuffer) Header() http.Header         { return r.header }
func (r *responseBuffer) WriteHeader(c int)           { r.code = c }
func (r *responseBuffer) Write(p []byte) (int, error) { return r.body.Write(p) }
