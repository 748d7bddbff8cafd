package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cairnstore/cairn/internal/backend/s3/s3test"
)

// TestUploadOneRequestPerWrite: on the real binary against versitygw,
// 1,000 writes of distinct keys cost at most 1,100 backend requests by
// cairn's own count (cairn_backend_operations_total): each write is one
// conditional put, not a stat and a put.
func TestUploadOneRequestPerWrite(t *testing.T) {
	g := s3test.Start(t, "cairn-e2e-upload")
	t.Setenv("AWS_ACCESS_KEY_ID", s3test.AccessKey) // startNode passes the environment on
	t.Setenv("AWS_SECRET_ACCESS_KEY", s3test.SecretKey)
	p := startNode(t, t.TempDir(), "--backend", "remote=s3://cairn-e2e-upload/n?endpoint="+g.Endpoint+"&insecure=1",
		"--reconcile-interval", "0", "--scrub-rate", "0") // no periodic rounds or scrub: only the uploader calls the backend
	admin := "http://" + adminAddr(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	before := backendOps(t, admin)
	const writes = 1000
	keys := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range keys {
				resp, body, err := p.do(ctx, http.MethodPut, fmt.Sprintf("k%04d", i), fmt.Sprintf(`{"i":%d}`, i))
				if err != nil || resp.StatusCode != http.StatusCreated {
					t.Errorf("PUT k%04d: %v %v %s", i, err, resp, body)
				}
			}
		}()
	}
	for i := range writes {
		keys <- i
	}
	close(keys)
	wg.Wait()
	// Polled across processes: the uploader has drained once every key was
	// put, and nothing else calls the backend.
	var after map[string]float64
	for {
		after = backendOps(t, admin)
		if after["backend.put"]-before["backend.put"] >= writes {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("backend calls after the writes: %v (before %v)", after, before)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var total float64
	for op, n := range after {
		total += n - before[op]
	}
	if total > 1100 {
		t.Errorf("%v backend requests for %d writes (%v, before %v), want at most 1,100", total, writes, after, before)
	}
}

// backendOps scrapes cairn_backend_operations_total by operation.
func backendOps(t *testing.T, admin string) map[string]float64 {
	t.Helper()
	resp, err := httpClient.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, m := range fams["cairn_backend_operations_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "op" {
				out[l.GetValue()] += m.GetCounter().GetValue()
			}
		}
	}
	return out
}

// TestUploadCoalescesHotKey: on the real binary against versitygw, one key
// rewritten back to back for two seconds (hundreds of writes a second) is
// uploaded at most once per --coalesce-window (50ms: 20 a second), and the
// backend ends at the last version written.
func TestUploadCoalescesHotKey(t *testing.T) {
	g := s3test.Start(t, "cairn-e2e-hot")
	t.Setenv("AWS_ACCESS_KEY_ID", s3test.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s3test.SecretKey)
	p := startNode(t, t.TempDir(), "--backend", "remote=s3://cairn-e2e-hot/n?endpoint="+g.Endpoint+"&insecure=1",
		"--reconcile-interval", "0", "--scrub-rate", "0", "--coalesce-window", "50ms")
	admin := "http://" + adminAddr(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	before := backendOps(t, admin)
	start := time.Now()
	writes, last := 0, ""
	for ; time.Since(start) < 2*time.Second; writes++ {
		last = fmt.Sprintf(`{"n":%d}`, writes)
		if resp, body, err := p.do(ctx, http.MethodPut, "hot", last); err != nil || resp.StatusCode/100 != 2 {
			t.Fatalf("PUT hot: %v %v %s", err, resp, body)
		}
	}
	elapsed := time.Since(start)
	// The last write's upload comes at most a window later: wait for the
	// backend to hold it (polled across processes).
	mc := g.Client(t)
	for {
		if obj, err := mc.GetObject(ctx, "cairn-e2e-hot", "n/demo/hot", minio.GetObjectOptions{}); err == nil {
			raw, err := io.ReadAll(obj)
			obj.Close()
			if err == nil && strings.HasSuffix(string(raw), last) {
				break
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("the backend never held the last write %s", last)
		}
		time.Sleep(50 * time.Millisecond)
	}
	after := backendOps(t, admin)
	puts := after["backend.put"] - before["backend.put"]
	// One upload a window, one at the start, one for the last write.
	if limit := elapsed.Seconds()/0.05 + 2; puts > limit {
		t.Errorf("%v uploads for %d writes of one key in %v, want at most %.0f (one a window)", puts, writes, elapsed, limit)
	}
	t.Logf("%d writes, %v uploads in %v", writes, puts, elapsed)
}
