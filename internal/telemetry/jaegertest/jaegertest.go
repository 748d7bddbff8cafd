// Package jaegertest runs a real Jaeger (all-in-one, in-memory storage) on
// loopback for end-to-end tracing tests, and reads traces back through its
// query API.
//
// The binary is $CAIRN_JAEGER_BIN, or .tools/jaeger-<Version>/jaeger under
// the module root, as built by scripts/jaeger.sh. When it is missing, [Start]
// fails the test under CI=true and skips it otherwise, saying how to build
// it.
//
// Each [Jaeger] gets its own free ports and a config file in t.TempDir; it is
// stopped (SIGINT, then SIGKILL after 10s) and waited for in t.Cleanup. Ports
// are found by listening on 127.0.0.1:0 and closing, so another process could
// take one before Jaeger binds it: Start then fails with Jaeger's log.
package jaegertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/proctest"
)

// Version is the Jaeger release scripts/jaeger.sh builds.
const Version = "v1.76.0"

// Jaeger is a running Jaeger process.
type Jaeger struct {
	// OTLPGRPC and OTLPHTTP are the receiver addresses (host:port).
	OTLPGRPC, OTLPHTTP string
	// QueryURL is the base URL of the query service, e.g. http://127.0.0.1:PORT.
	QueryURL string

	cmd    *exec.Cmd
	logs   *proctest.SyncBuffer
	client *http.Client // own transport: its idle connections are closed at stop
}

// Binary returns the jaeger binary's path, or "" if there is none.
func Binary() string {
	if p := os.Getenv("CAIRN_JAEGER_BIN"); p != "" {
		return p
	}
	root, err := moduleRoot()
	if err != nil {
		return ""
	}
	p := filepath.Join(root, ".tools", "jaeger-"+Version, "jaeger")
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
		return p
	}
	return ""
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("jaegertest: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Start runs Jaeger and waits until its query API answers and its OTLP
// ports accept connections (at most 60s).
func Start(t testing.TB) *Jaeger {
	t.Helper()
	bin := Binary()
	if bin == "" {
		msg := "jaegertest: no jaeger binary; build it with `bash scripts/jaeger.sh` (or set CAIRN_JAEGER_BIN)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	ports := proctest.FreePorts(t, 4)
	j := &Jaeger{
		OTLPGRPC: "127.0.0.1:" + strconv.Itoa(ports[0]),
		OTLPHTTP: "127.0.0.1:" + strconv.Itoa(ports[1]),
		QueryURL: "http://127.0.0.1:" + strconv.Itoa(ports[2]),
		logs:     &proctest.SyncBuffer{},
		client:   &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second},
	}
	cfg := filepath.Join(t.TempDir(), "jaeger.yaml")
	if err := os.WriteFile(cfg, []byte(config(j, ports[3])), 0o600); err != nil {
		t.Fatal(err)
	}
	j.cmd = exec.Command(bin, "--config", cfg)
	j.cmd.Stdout = j.logs
	j.cmd.Stderr = j.logs
	if err := j.cmd.Start(); err != nil {
		t.Fatalf("jaegertest: start %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- j.cmd.Wait() }()
	t.Cleanup(func() { j.stop(t, exited) })

	if err := j.waitReady(exited, 60*time.Second); err != nil {
		t.Fatalf("jaegertest: %v\njaeger output:\n%s", err, j.logs.String())
	}
	return j
}

// config is a minimal all-in-one configuration: OTLP in, memory storage,
// query API; Jaeger's own metrics off so that nothing binds a fixed port, and
// its own tracing off: otherwise it exports to 127.0.0.1:4317 and its
// shutdown waits 10s for that export to time out.
func config(j *Jaeger, queryGRPC int) string {
	return fmt.Sprintf(`service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_query:
    enable_tracing: false
    storage:
      traces: mem
    http:
      endpoint: %q
    grpc:
      endpoint: "127.0.0.1:%d"
  jaeger_storage:
    backends:
      mem:
        memory:
          max_traces: 10000
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %q
      http:
        endpoint: %q
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: mem
`, j.QueryURL[len("http://"):], queryGRPC, j.OTLPGRPC, j.OTLPHTTP)
}

// waitReady polls across the process boundary (no other way to know) until
// the query API answers and both OTLP ports accept connections.
func (j *Jaeger) waitReady(exited <-chan error, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if j.ready() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v", limit)
		}
		select {
		case err := <-exited:
			return fmt.Errorf("jaeger exited before it was ready: %v", err)
		case <-tick.C:
		}
	}
}

func (j *Jaeger) ready() bool {
	for _, addr := range []string{j.OTLPGRPC, j.OTLPHTTP} {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
	}
	resp, err := j.client.Get(j.QueryURL + "/api/services")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (j *Jaeger) stop(t testing.TB, exited <-chan error) {
	j.client.CloseIdleConnections()
	_ = j.cmd.Process.Signal(os.Interrupt)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = j.cmd.Process.Kill()
		<-exited
		t.Logf("jaegertest: jaeger did not stop on SIGINT within 10s; killed")
	}
	if t.Failed() {
		t.Logf("jaeger output:\n%s", j.logs.String())
	}
}

// Span is a span as Jaeger's query API returns it.
type Span struct {
	TraceID       string
	SpanID        string
	ParentSpanID  string // "" for a root span
	OperationName string
	Service       string
	Tags          map[string]any
}

// Trace fetches trace id (hex) from /api/traces/{id} and polls until it has
// at least want spans or ctx ends. Jaeger batches writes, so a trace just
// exported may be missing or partial for a moment.
func (j *Jaeger) Trace(ctx context.Context, id string, want int) ([]Span, error) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var (
		spans []Span
		err   error
	)
	for {
		spans, err = j.fetch(ctx, id)
		if err == nil && len(spans) >= want {
			return spans, nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("jaegertest: trace %s has %d spans, want %d", id, len(spans), want)
			}
			return spans, fmt.Errorf("%w (%v)", err, ctx.Err())
		case <-tick.C:
		}
	}
}

type apiTraces struct {
	Data []struct {
		Spans []struct {
			TraceID       string `json:"traceID"`
			SpanID        string `json:"spanID"`
			OperationName string `json:"operationName"`
			ProcessID     string `json:"processID"`
			References    []struct {
				RefType string `json:"refType"`
				SpanID  string `json:"spanID"`
			} `json:"references"`
			Tags []struct {
				Key   string `json:"key"`
				Value any    `json:"value"`
			} `json:"tags"`
		} `json:"spans"`
		Processes map[string]struct {
			ServiceName string `json:"serviceName"`
		} `json:"processes"`
	} `json:"data"`
}

func (j *Jaeger) fetch(ctx context.Context, id string) ([]Span, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.QueryURL+"/api/traces/"+id, nil)
	if err != nil {
		return nil, err
	}
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jaegertest: query: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("jaegertest: trace %s not found", id)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jaegertest: query: %s", resp.Status)
	}
	var body apiTraces
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("jaegertest: decode trace: %w", err)
	}
	var out []Span
	for _, tr := range body.Data {
		for _, s := range tr.Spans {
			sp := Span{TraceID: s.TraceID, SpanID: s.SpanID, OperationName: s.OperationName,
				Service: tr.Processes[s.ProcessID].ServiceName, Tags: map[string]any{}}
			for _, r := range s.References {
				if r.RefType == "CHILD_OF" {
					sp.ParentSpanID = r.SpanID
				}
			}
			for _, tag := range s.Tags {
				sp.Tags[tag.Key] = tag.Value
			}
			out = append(out, sp)
		}
	}
	return out, nil
}
