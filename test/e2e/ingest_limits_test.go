package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestIngestSlowStreamEnded runs the real binary with two ingest streams
// (one per tenant) and a minimum rate of 1 KiB/s over 1 s: while a slow
// stream holds the tenant's only slot, the tenant's next stream gets 429;
// when the slow stream's next line comes seconds later, the stream is ended
// with 408 too_slow and a reply naming its first line as durable, and the
// slow line is not stored.
func TestIngestSlowStreamEnded(t *testing.T) {
	p := startNode(t, filepath.Join(t.TempDir(), "data"),
		"--ingest-streams", "2", "--ingest-min-rate", "1KiB", "--ingest-rate-window", "1s")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ingest := func(body io.Reader) (*http.Response, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, "POST", p.URL+"/v1/tenants/demo/ingest?key_field=id", body)
		if err != nil {
			return nil, nil, err
		}
		req.Header.Set("Authorization", "Bearer "+p.Token)
		req.Header.Set("Content-Type", "application/x-ndjson")
		resp, err := httpClient.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, b, err
	}

	pr, pw := io.Pipe()
	defer pw.Close()
	type result struct {
		resp *http.Response
		body []byte
		err  error
	}
	slow := make(chan result, 1)
	go func() {
		resp, b, err := ingest(pr)
		slow <- result{resp, b, err}
	}()
	if _, err := pw.Write([]byte(`{"id":"s1"}` + "\n")); err != nil {
		t.Fatal(err)
	}

	// Across processes, so poll: once the first line is stored, the slow
	// stream holds the tenant's share, and the next stream is refused.
	for {
		resp, _, err := p.do(ctx, "GET", "s1", "")
		if err != nil {
			t.Fatalf("waiting for the first line to be stored: %v", err)
		}
		if resp.StatusCode == http.StatusOK {
			break
		}
	}
	resp, b, err := ingest(strings.NewReader(`{"id":"other"}` + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), "its share") {
		t.Fatalf("second stream while the slow one holds the tenant's share: %d %v %s; want 429 with Retry-After", resp.StatusCode, resp.Header, b)
	}

	// The client being slow is what is tested: three times the window.
	select {
	case r := <-slow:
		t.Fatalf("slow stream answered before it was slow: %+v %s", r.err, r.body)
	case <-time.After(3 * time.Second):
	}
	if _, err := pw.Write([]byte(`{"id":"s2"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	r := <-slow
	if r.err != nil {
		t.Fatal(r.err)
	}
	var reply struct {
		Complete        bool  `json:"complete"`
		LastDurableLine int64 `json:"last_durable_line"`
		Error           struct {
			Code, Message string
		} `json:"error"`
	}
	if err := json.Unmarshal(r.body, &reply); err != nil {
		t.Fatalf("reply %s: %v", r.body, err)
	}
	if r.resp.StatusCode != http.StatusRequestTimeout || reply.Complete || reply.Error.Code != "too_slow" || reply.LastDurableLine != 1 {
		t.Fatalf("slow stream: %d %s; want 408 too_slow with line 1 durable", r.resp.StatusCode, r.body)
	}
	pw.CloseWithError(errors.New("test done"))
	if resp, _, err := p.do(ctx, "GET", "s2", ""); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET s2 (after the stream was ended): %v %v", resp, err)
	}
}
