package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/backend/s3/s3test"
)

// The bounds the feed test holds the real binary to. A node that joins
// (or is rebuilt) on an empty data directory serves every acknowledged
// document within catchUpBound of its start, for the few hundred
// documents written here; a write on one running node is readable on the
// other within feedBound, though --reconcile-interval is an hour: the
// change feed carries it (default --feed-poll 500ms).
const (
	catchUpBound = 60 * time.Second
	feedBound    = 5 * time.Second
)

// TestFeedJoinAndRebuild, on the real binary and versitygw: node A takes
// writes; node B starts on an empty data directory with the same backend
// and serves every acknowledged document with its ETag; writes on either
// node then reach the other through the feed; A is killed, its data
// directory wiped, and rebuilt the same way, serves every document, and
// its feed continues where it stopped (B tails it without a fallback).
func TestFeedJoinAndRebuild(t *testing.T) {
	g := s3test.Start(t, "cairn-feed")
	t.Setenv("AWS_ACCESS_KEY_ID", s3test.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s3test.SecretKey)
	const token = "cairn_e2e-feed-token"
	sum := sha256.Sum256([]byte(token))
	flags := []string{"--tenant", "demo:" + hex.EncodeToString(sum[:]),
		"--backend", "shared=s3://cairn-feed/c?endpoint=" + g.Endpoint + "&insecure=1",
		"--reconcile-interval", "1h", "--durability", "buffered"}
	ctx := context.Background()
	acked := map[string]string{} // key → ETag ("" for a deleted key)
	write := func(p *proc, key, body string) {
		t.Helper()
		resp, b, err := p.do(ctx, "PUT", key, body)
		if err != nil || resp.StatusCode/100 != 2 {
			t.Fatalf("PUT %s: %v %s %s", key, err, brief(resp), b)
		}
		acked[key] = resp.Header.Get("ETag")
	}
	remove := func(p *proc, key string) {
		t.Helper()
		resp, b, err := p.do(ctx, "DELETE", key, "")
		if err != nil || resp.StatusCode != 204 {
			t.Fatalf("DELETE %s: %v %s %s", key, err, brief(resp), b)
		}
		acked[key] = ""
	}
	// serves waits until p answers every acknowledged document with its
	// ETag (404 for a deleted one), polling another process with a
	// deadline.
	serves := func(p *proc, name string, bound time.Duration, keys ...string) time.Duration {
		t.Helper()
		if len(keys) == 0 {
			for k := range acked {
				keys = append(keys, k)
			}
		}
		start := time.Now()
		for _, k := range keys {
			for {
				resp, _, err := p.do(ctx, "GET", k, "")
				if err == nil && ((acked[k] == "" && resp.StatusCode == 404) ||
					(resp.StatusCode == 200 && resp.Header.Get("ETag") == acked[k])) {
					break
				}
				if time.Since(start) > bound {
					t.Fatalf("%s does not serve %s with ETag %q within %v: %v %s", name, k, acked[k], bound, err, brief(resp))
				}
				time.Sleep(20 * time.Millisecond) // polling another process
			}
		}
		return time.Since(start)
	}

	dirA := t.TempDir()
	a := startConfigured(t, dirA, token, append(flags, "--node-id", "a")...)
	for i := range 300 {
		write(a, fmt.Sprintf("doc%03d", i), fmt.Sprintf(`{"n":%d,"pad":"%0200d"}`, i, i))
	}
	for i := range 20 {
		remove(a, fmt.Sprintf("doc%03d", i*7))
	}

	b := startConfigured(t, t.TempDir(), token, append(flags, "--node-id", "b")...)
	took := serves(b, "B (joined on an empty directory)", catchUpBound)
	t.Logf("B served all %d acknowledged documents %v after its start", len(acked), took)

	// News in both directions through the feed.
	write(a, "fresh-a", `{"from":"a"}`)
	remove(a, "doc001")
	write(b, "fresh-b", `{"from":"b"}`)
	write(b, "doc002", `{"n":"rewritten on b"}`)
	serves(b, "B", feedBound, "fresh-a", "doc001")
	serves(a, "A", feedBound, "fresh-b", "doc002")

	// A is lost with its disk and rebuilt on an empty directory.
	a.kill()
	if err := os.RemoveAll(dirA); err != nil {
		t.Fatal(err)
	}
	before := peerCursor(t, b, "a")
	a = startConfigured(t, t.TempDir(), token, append(flags, "--node-id", "a")...)
	took = serves(a, "A (rebuilt on an empty directory)", catchUpBound)
	t.Logf("rebuilt A served all %d acknowledged documents %v after its start", len(acked), took)
	write(b, "after-rebuild-b", `{"from":"b"}`)
	serves(a, "rebuilt A", feedBound, "after-rebuild-b")
	write(a, "after-rebuild-a", `{"from":"a"}`)
	serves(b, "B", feedBound, "after-rebuild-a")
	// B applies a feed object's entries before it moves its cursor past
	// it, so the document can be served a moment before the cursor shows.
	for deadline := time.Now().Add(feedBound); ; time.Sleep(20 * time.Millisecond) { // polling another process
		after := peerCursor(t, b, "a")
		if after > before {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("B's cursor of A's feed went from %d to %d: the rebuilt A's feed did not continue the sequence", before, after)
			break
		}
	}
	for _, p := range []*proc{a, b} {
		if err := p.stop(); err != nil {
			t.Errorf("stopping: %v\n%s", err, p.stderr)
		}
	}
}

// peerCursor is the last seq of peer's feed of the demo tenant that p
// read, from its admin reconcile status.
func peerCursor(t *testing.T, p *proc, peer string) uint64 {
	t.Helper()
	code, body := httpGet(t, "http://"+adminAddr(t, p)+"/v1/admin/reconcile")
	if code != 200 {
		t.Fatalf("GET /v1/admin/reconcile: %d %s", code, body)
	}
	var st struct {
		Backends []struct {
			Tenants []struct {
				Tenant string
				Feed   *struct {
					Peers    map[string]struct{ Cursor uint64 }
					Fallback string
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	for _, be := range st.Backends {
		for _, tp := range be.Tenants {
			if tp.Tenant == "demo" && tp.Feed != nil {
				return tp.Feed.Peers[peer].Cursor
			}
		}
	}
	t.Fatalf("no feed status of demo in %s", body)
	return 0
}
