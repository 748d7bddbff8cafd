package node

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/store/storetest"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/proctest"
	"github.com/cairnstore/cairn/internal/server"
	"github.com/cairnstore/cairn/internal/telemetry"
)

// The tests of the node's own failures (docs/runbook.md, "The node's own
// failures"): each reproduces one and checks the metric and the log line
// its runbook entry names.

// healthNode is a node whose JSON log goes to a buffer.
type healthNode struct {
	*Node
	logs *proctest.SyncBuffer
	tok  string
}

func healthConfig(t *testing.T, dir string, logs *proctest.SyncBuffer) (Config, string) {
	t.Helper()
	log, err := telemetry.NewLogger(logs, "json", slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	tok, hash := newToken(t)
	return Config{
		DataDir: dir, Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0", Logger: log,
		Auth:  server.Auth{Tenants: map[string][][32]byte{"acme": {hash}}},
		Trace: telemetry.Config{NoGlobal: true},
	}, tok
}

func startHealthNode(t *testing.T, mod func(*Config)) *healthNode {
	t.Helper()
	logs := &proctest.SyncBuffer{}
	cfg, tok := healthConfig(t, t.TempDir(), logs)
	if mod != nil {
		mod(&cfg)
	}
	n, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.Shutdown(ctx) // a failed store's Close may report its failure again
		http.DefaultClient.CloseIdleConnections()
	})
	return &healthNode{Node: n, logs: logs, tok: tok}
}

// put writes tenant acme's key and returns the status.
func (h *healthNode) put(t *testing.T, key string) int {
	t.Helper()
	code, _, _ := h.putAnswer(t, key)
	return code
}

// putAnswer is put with the answer's body and Retry-After.
func (h *healthNode) putAnswer(t *testing.T, key string) (code int, body, retryAfter string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, "http://"+h.Addr()+"/v1/tenants/acme/docs/"+key, strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+h.tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b), resp.Header.Get("Retry-After")
}

// metric reads one series from the admin listener's /metrics.
func (h *healthNode) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(scrape(t, "http://"+h.AdminAddr()+"/metrics")))
	if err != nil {
		t.Fatal(err)
	}
	v, ok := sample(fams[name], labels...)
	if !ok {
		t.Fatalf("no series %s%v on /metrics", name, labels)
	}
	return v
}

// logLines returns the JSON log records whose msg is msg.
func logLines(t *testing.T, logs string, msg string) []map[string]any {
	t.Helper()
	var found []map[string]any
	for line := range strings.Lines(logs) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line not JSON: %q", line)
		}
		if rec["msg"] == msg {
			found = append(found, rec)
		}
	}
	return found
}

// wantLog checks that exactly one record has msg, at level, with attrs.
func wantLog(t *testing.T, logs, msg, level string, attrs ...string) map[string]any {
	t.Helper()
	recs := logLines(t, logs, msg)
	if len(recs) != 1 {
		t.Fatalf("%d log records %q, want 1; log:\n%s", len(recs), msg, logs)
	}
	rec := recs[0]
	if rec["level"] != level {
		t.Errorf("%q at %v, want %s", msg, rec["level"], level)
	}
	for i := 0; i+1 < len(attrs); i += 2 {
		if got := rec[attrs[i]]; got != attrs[i+1] {
			t.Errorf("%q: %s = %v, want %q", msg, attrs[i], got, attrs[i+1])
		}
	}
	return rec
}

// TestStoreFailureDiagnosed: a write of the store's log that fails for
// want of space, or an fsync that fails, fails the store. The node counts
// it under its cause, sets cairn_store_failed, logs it once at ERROR with
// its runbook entry, and refuses writes from then on (also once the disk
// is healthy again: only a restart recovers).
func TestStoreFailureDiagnosed(t *testing.T) {
	for _, c := range []struct {
		name, cause, entry string
		err                error
		kinds              []errorfs.OpKind
		says               string // what the refusals tell the client
	}{
		{"disk full", "disk_full", runbookDiskFull, syscall.ENOSPC, []errorfs.OpKind{errorfs.OpFileWrite, errorfs.OpFileWriteAt}, "disk is full"},
		{"fsync failure", "io_error", runbookWriteFail, syscall.EIO, []errorfs.OpKind{errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo}, "store failed"},
		// Out of open files is not a full disk: the cure is the limit.
		{"out of open files", "io_error", runbookWriteFail, syscall.EMFILE, []errorfs.OpKind{errorfs.OpFileWrite, errorfs.OpFileWriteAt}, "ran out of open files"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tog := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
				for _, k := range c.kinds {
					if op.Kind == k && strings.HasSuffix(op.Path, ".log") {
						return c.err
					}
				}
				return nil
			})}
			h := startHealthNode(t, func(cfg *Config) { cfg.storeFS = errorfs.Wrap(vfs.Default, tog) })
			if got := h.put(t, "before"); got != http.StatusCreated {
				t.Fatalf("PUT before the fault: %d", got)
			}
			if v := h.metric(t, "cairn_store_failures_total", "cause", c.cause); v != 0 {
				t.Fatalf("cairn_store_failures_total{cause=%q} = %v before the fault", c.cause, v)
			}
			if v := h.metric(t, "cairn_store_failed"); v != 0 {
				t.Fatalf("cairn_store_failed = %v before the fault", v)
			}
			tog.On()
			if got := h.put(t, "during"); got < 500 {
				t.Fatalf("PUT while the log fails: %d, want 5xx", got)
			}
			tog.Off()
			got, body, ra := h.putAnswer(t, "after")
			if got < 500 {
				t.Fatalf("PUT after the fault, before a restart: %d, want 5xx (the store refuses)", got)
			}
			// The client learns why, and not to come back every second.
			if !strings.Contains(body, c.says) || !strings.Contains(body, "until the node restarts") || (got == 503 && ra != "60") {
				t.Errorf("PUT after the fault: %d %s, Retry-After %q; want it to say %q and until a restart (a 503 with Retry-After 60)", got, body, ra, c.says)
			}
			if v := h.metric(t, "cairn_store_failures_total", "cause", c.cause); v != 1 {
				t.Errorf("cairn_store_failures_total{cause=%q} = %v, want 1", c.cause, v)
			}
			if v := h.metric(t, "cairn_store_failed"); v != 1 {
				t.Errorf("cairn_store_failed = %v, want 1", v)
			}
			for _, addr := range []string{h.Addr(), h.AdminAddr()} {
				resp, err := http.Get("http://" + addr + "/readyz")
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "store_failed") {
					t.Errorf("GET %s/readyz after the failure: %d %s, want 503 store_failed", addr, resp.StatusCode, body)
				}
			}
			rec := wantLog(t, h.logs.String(), msgStoreFailed, "ERROR", "cause", c.cause, "runbook", c.entry)
			if err, _ := rec["err"].(string); !strings.Contains(err, c.err.Error()) {
				t.Errorf("log err %q does not name %q", err, c.err)
			}
		})
	}
}

// TestClockJumpDiagnosed: a step of the wall clock back, and one far
// forward, between two writes are each counted by direction and logged at
// WARN; after the step back the hybrid clock runs ahead of the wall by the
// step, which cairn_hlc_ahead_seconds shows. A long pause between writes
// is no jump.
func TestClockJumpDiagnosed(t *testing.T) {
	var wallMS, elapsedNS atomic.Int64
	wallMS.Store(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli())
	step := func(wall, elapsed time.Duration) {
		wallMS.Add(wall.Milliseconds())
		elapsedNS.Add(int64(elapsed))
	}
	h := startHealthNode(t, func(cfg *Config) {
		cfg.wall = func() time.Time { return time.UnixMilli(wallMS.Load()) }
		cfg.elapsed = func() time.Duration { return time.Duration(elapsedNS.Load()) }
	})
	put := func(key string) {
		t.Helper()
		if got := h.put(t, key); got != http.StatusCreated {
			t.Fatalf("PUT %s: %d", key, got)
		}
	}
	jumps := func(dir string) float64 { return h.metric(t, "cairn_clock_jumps_total", "direction", dir) }
	put("k1")
	step(time.Hour, time.Hour) // an idle hour: no jump
	put("k2")
	if b, f := jumps("backward"), jumps("forward"); b != 0 || f != 0 {
		t.Fatalf("jumps after a pause: backward %v, forward %v; want 0, 0", b, f)
	}

	step(-5*time.Minute, 0)
	put("k3")
	if v := jumps("backward"); v != 1 {
		t.Errorf("cairn_clock_jumps_total{direction=backward} = %v, want 1", v)
	}
	if v := h.metric(t, "cairn_hlc_ahead_seconds"); v < 299 || v > 300 {
		t.Errorf("cairn_hlc_ahead_seconds after a 5m step back = %v, want ~300", v)
	}
	wantLog(t, h.logs.String(), msgClockJumped, "WARN", "direction", "backward", "step", "-5m0s", "runbook", runbookClockJump)

	step(5*time.Minute+365*24*time.Hour, 0) // a year ahead
	put("k4")
	if v := jumps("forward"); v != 1 {
		t.Errorf("cairn_clock_jumps_total{direction=forward} = %v, want 1", v)
	}
	if n := len(logLines(t, h.logs.String(), msgClockJumped)); n != 2 {
		t.Errorf("%d %q records, want 2", n, msgClockJumped)
	}
}

// TestStartRefusedDiagnosed: a data directory locked by another node, and a
// store whose manifest is damaged, keep the node from starting with an
// error that names the problem and its runbook entry, and an ERROR log
// line.
func TestStartRefusedDiagnosed(t *testing.T) {
	t.Run("locked", func(t *testing.T) {
		first := startHealthNode(t, nil)
		logs := &proctest.SyncBuffer{}
		cfg, _ := healthConfig(t, first.cfg.DataDir, logs)
		_, err := Start(context.Background(), cfg)
		if !errors.Is(err, fault.ErrConfig) || !strings.Contains(err.Error(), runbookLocked) ||
			!strings.Contains(err.Error(), runbookPath) {
			t.Fatalf("Start on a locked directory: %v; want a config error naming %q in %s", err, runbookLocked, runbookPath)
		}
		wantLog(t, logs.String(), msgStoreLocked, "ERROR", "data_dir", first.cfg.DataDir, "runbook", runbookLocked)
	})
	t.Run("corrupt", func(t *testing.T) {
		logs := &proctest.SyncBuffer{}
		cfg, _ := healthConfig(t, t.TempDir(), logs)
		n, err := Start(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		storetest.CorruptManifest(t, cfg.DataDir)
		_, err = Start(context.Background(), cfg)
		if !errors.Is(err, fault.ErrCorruption) || !strings.Contains(err.Error(), runbookCorrupt) ||
			!strings.Contains(err.Error(), runbookPath) {
			t.Fatalf("Start on a damaged store: %v; want a corruption error naming %q in %s", err, runbookCorrupt, runbookPath)
		}
		wantLog(t, logs.String(), msgStoreCorrupt, "ERROR", "data_dir", cfg.DataDir, "runbook", runbookCorrupt)
	})
}
