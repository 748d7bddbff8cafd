package console

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnstore/cairn/api"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/proctest"
	"github.com/cairnstore/cairn/internal/server"
	"github.com/cairnstore/cairn/internal/server/servertest"
)

// These tests send the requests app.js sends for the conflicts and
// replication pages' actions (its call(): Accept, X-CSRF-Token, a
// same-origin Origin, and Content-Type only with a body) and look at what
// reaches the seam behind the console: the store's write under the API's
// resolve path, the Reconciler's request, the page's data.

// pageHdr is the headers app.js's call() sends, plus extra.
func pageHdr(csrf string, withBody bool, extra map[string]string) map[string]string {
	h := map[string]string{"Accept": "application/json", "X-CSRF-Token": csrf, "Origin": "http://127.0.0.1:7071"}
	if withBody {
		h["Content-Type"] = "application/json"
	}
	for k, v := range extra {
		h[k] = v
	}
	return h
}

// write is a Put or Delete that reached the store.
type write struct {
	op          string
	tenant, key string
	body        []byte
	pre         doc.Precondition
}

// recordingDocs is a Mem that records each write with its body and
// precondition, which Mem's own call log leaves out.
type recordingDocs struct {
	*servertest.Mem
	mu     sync.Mutex // guards writes
	writes []write
}

func (d *recordingDocs) Put(ctx context.Context, tenant, key string, body []byte, pre doc.Precondition) (string, bool, error) {
	d.mu.Lock()
	d.writes = append(d.writes, write{"put", tenant, key, slices.Clone(body), pre})
	d.mu.Unlock()
	return d.Mem.Put(ctx, tenant, key, body, pre)
}

func (d *recordingDocs) Delete(ctx context.Context, tenant, key string, pre doc.Precondition) error {
	d.mu.Lock()
	d.writes = append(d.writes, write{"delete", tenant, key, nil, pre})
	d.mu.Unlock()
	return d.Mem.Delete(ctx, tenant, key, pre)
}

func (d *recordingDocs) written() []write {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.writes)
}

// conflictFixture is a console over a recordingDocs holding one conflict,
// acme/k with two live siblings, the set's ETag "set1".
func conflictFixture(t *testing.T) (*fixture, *recordingDocs) {
	t.Helper()
	rec := &recordingDocs{Mem: &servertest.Mem{}}
	apiSrv, err := server.New(server.Options{Docs: rec, Auth: server.Auth{Admin: [][32]byte{server.HashToken(admin)}}})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(o *Options) { o.API, o.Docs = apiSrv, rec })
	rec.SetConflict("acme", server.Conflict{Key: "k", ETag: `"set1"`, Siblings: []server.Sibling{
		{ETag: `"s1"`, Writer: 1, Time: time.Unix(1, 0), Size: 9, Body: []byte(`{"v":"a"}`)},
		{ETag: `"s2"`, Writer: 2, Time: time.Unix(2, 0), Size: 9, Body: []byte(`{"v":"b"}`)},
	}})
	return f, rec
}

// resolveAnswer is what app.js reads of the resolve's answer.
type resolveAnswer struct {
	Key     string `json:"key"`
	ETag    string `json:"etag"`
	Deleted bool   `json:"deleted"`
}

// TestResolveMergedBody: "Save merged document" sends {"body":<the edited
// document>} If-Match the set's ETag; the document reaches the store byte
// for byte as the page sent it, as a write conditional on the sibling set,
// and a set that changed since the page read it writes nothing.
func TestResolveMergedBody(t *testing.T) {
	f, rec := conflictFixture(t)
	ck, csrf := f.signIn(t, local, admin)
	// JSON.stringify's output: compact, keys in the edited order, and
	// characters (<, &, non-ASCII) that a re-encoding in Go would escape.
	const merged = `{"v":"a+b","n":[1,2.5],"note":"<b> & ü","z":{"y":null}}`
	const path = "/console/api/resolve?tenant=acme&key=k"

	resp, body := f.req("POST", path, local, ck, `{"body":`+merged+`}`, pageHdr(csrf, true, map[string]string{"If-Match": `"set0"`}))
	if resp.StatusCode != http.StatusPreconditionFailed {
		t.Fatalf("a set that changed since: %d %s", resp.StatusCode, body)
	}
	if w := rec.written(); len(w) != 0 {
		t.Fatalf("a refused resolution wrote %+v", w)
	}

	resp, body = f.req("POST", path, local, ck, `{"body":`+merged+`}`, pageHdr(csrf, true, map[string]string{"If-Match": `"set1"`}))
	var out resolveAnswer
	if err := json.Unmarshal([]byte(body), &out); resp.StatusCode != 200 || err != nil {
		t.Fatalf("resolve: %d %s", resp.StatusCode, body)
	}
	w := rec.written()
	if len(w) != 1 || w[0].op != "put" || w[0].tenant != "acme" || w[0].key != "k" {
		t.Fatalf("writes: %+v, want one put of acme/k", w)
	}
	if string(w[0].body) != merged {
		t.Fatalf("stored body %s, want the merged document as sent, %s", w[0].body, merged)
	}
	if !slices.Equal(w[0].pre.IfMatch, []string{`"set1"`}) || len(w[0].pre.IfNoneMatch) != 0 {
		t.Fatalf("write's precondition %+v, want If-Match the sibling set's ETag", w[0].pre)
	}
	d, err := rec.Get(context.Background(), "acme", "k")
	if err != nil || string(d.Body) != merged || out.Deleted || out.Key != "k" || out.ETag != d.ETag {
		t.Fatalf("answer %+v; stored %s %q, %v", out, d.ETag, d.Body, err)
	}
	if resp, _ := f.req("GET", "/console/api/conflict?tenant=acme&key=k", local, ck, "", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("the conflict after its resolution: %d", resp.StatusCode)
	}
}

// TestResolveByDelete: "Delete the document" sends {"delete":true}
// If-Match the set's ETag; it reaches the store as a delete conditional
// on the sibling set (no put), and the page is told it deleted.
func TestResolveByDelete(t *testing.T) {
	f, rec := conflictFixture(t)
	ck, csrf := f.signIn(t, local, admin)
	const path = "/console/api/resolve?tenant=acme&key=k"

	resp, body := f.req("POST", path, local, ck, `{"delete":true}`, pageHdr(csrf, true, map[string]string{"If-Match": `"set0"`}))
	if resp.StatusCode != http.StatusPreconditionFailed {
		t.Fatalf("a set that changed since: %d %s", resp.StatusCode, body)
	}
	if w := rec.written(); len(w) != 0 {
		t.Fatalf("a refused resolution wrote %+v", w)
	}

	resp, body = f.req("POST", path, local, ck, `{"delete":true}`, pageHdr(csrf, true, map[string]string{"If-Match": `"set1"`}))
	var out resolveAnswer
	if err := json.Unmarshal([]byte(body), &out); resp.StatusCode != 200 || err != nil {
		t.Fatalf("resolve: %d %s", resp.StatusCode, body)
	}
	if !out.Deleted || out.ETag != "" || out.Key != "k" {
		t.Fatalf("answer %s, want the key deleted", body)
	}
	w := rec.written()
	if len(w) != 1 || w[0].op != "delete" || w[0].tenant != "acme" || w[0].key != "k" {
		t.Fatalf("writes: %+v, want one delete of acme/k", w)
	}
	if !slices.Equal(w[0].pre.IfMatch, []string{`"set1"`}) || len(w[0].pre.IfNoneMatch) != 0 {
		t.Fatalf("delete's precondition %+v, want If-Match the sibling set's ETag", w[0].pre)
	}
	if _, err := rec.Get(context.Background(), "acme", "k"); fault.ClassOf(err) != fault.NotFound {
		t.Fatalf("the document after a resolution by delete: %v", err)
	}
}

// fakeReconciler records the requests that reach it; status is what it
// reports.
type fakeReconciler struct {
	status api.ReconcileStatus
	mu     sync.Mutex // guards reqs
	reqs   []server.ReconcileRequest
}

func (r *fakeReconciler) ReconcileStatus() api.ReconcileStatus { return r.status }

func (r *fakeReconciler) RunReconcile(_ context.Context, req server.ReconcileRequest) (api.ReconcileRun, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	return api.ReconcileRun{Triggered: true}, nil
}

func (r *fakeReconciler) requests() []server.ReconcileRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs)
}

// oneBackend is a status with backend b configured, as the node reports
// one before any round (tenants an empty list).
func oneBackend() api.ReconcileStatus {
	return api.ReconcileStatus{Backends: []api.BackendStatus{{Name: "b", Breaker: "closed", Tenants: []api.TenantProgress{}}}, CatchingUp: []string{}}
}

// TestReconcileConfirm: "Confirm deletions and start" (?confirm=1) reaches
// the Reconciler with Confirm set; the other buttons' requests ("Start a
// round on every backend": a bare "?", "Start a round here": ?backend=)
// with it unset, and only triggering (no wait, no scrub). A confirm
// without the CSRF token reaches nothing.
func TestReconcileConfirm(t *testing.T) {
	rc := &fakeReconciler{status: oneBackend()}
	var logs proctest.SyncBuffer
	f := newFixture(t, func(o *Options) { o.Reconciler = rc; o.Logger = slog.New(slog.NewJSONHandler(&logs, nil)) })
	ck, csrf := f.signIn(t, local, admin)

	if resp, body := f.req("POST", "/console/api/reconcile?confirm=1", local, ck, "", pageHdr("", false, map[string]string{"X-CSRF-Token": "nope"})); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a confirm with a wrong CSRF token: %d %s", resp.StatusCode, body)
	}
	if got := rc.requests(); len(got) != 0 {
		t.Fatalf("a refused confirm reached the reconciler: %+v", got)
	}
	// A misspelt parameter is refused before anything runs: taken as
	// absent, it would run every tenant's rounds, confirmed.
	resp, body := f.req("POST", "/console/api/reconcile?tenat=acme&confirm=1", local, ck, "", pageHdr(csrf, false, nil))
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `unknown query parameter \"tenat\"`) {
		t.Fatalf("a misspelt tenant: %d %s", resp.StatusCode, body)
	}
	resp, body = f.req("POST", "/console/api/reconcile?tenant=acme&tenant=other", local, ck, "", pageHdr(csrf, false, nil))
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `given more than once`) {
		t.Fatalf("two tenants: %d %s", resp.StatusCode, body)
	}
	if got := rc.requests(); len(got) != 0 {
		t.Fatalf("a misspelt or repeated tenant reached the reconciler: %+v", got)
	}

	for _, q := range []string{"", "confirm=1", "backend=b", ""} {
		resp, body := f.req("POST", "/console/api/reconcile?"+q, local, ck, "", pageHdr(csrf, false, nil))
		var run api.ReconcileRun
		if err := json.Unmarshal([]byte(body), &run); resp.StatusCode != http.StatusAccepted || err != nil || !run.Triggered {
			t.Fatalf("POST /console/api/reconcile?%s: %d %s", q, resp.StatusCode, body)
		}
	}
	want := []server.ReconcileRequest{{}, {Confirm: true}, {Backend: "b"}, {}}
	if got := rc.requests(); !slices.Equal(got, want) {
		t.Fatalf("requests that reached the reconciler:\n got %+v\nwant %+v", got, want)
	}
	// The sign-in and each run asked for are logged, the confirmed one saying so.
	out := logs.String()
	if strings.Count(out, `"msg":"console: signed in"`) != 1 || strings.Count(out, `"msg":"console: reconciliation run requested"`) != 4 ||
		strings.Count(out, `"confirm":true`) != 1 {
		t.Fatalf("log:\n%s\nwant one sign-in and four runs, one confirmed", out)
	}
}

// fakeQuarantine lists rows, with their damaged bytes only when one key
// is asked for, as the node's table does.
type fakeQuarantine struct {
	rows []api.QuarantineRow
	mu   sync.Mutex // guards asked
	// asked records each call's backend, tenant and key.
	asked [][3]string
}

func (q *fakeQuarantine) QuarantineRows(_ context.Context, backend, tenant, key string) iter.Seq2[api.QuarantineRow, error] {
	q.mu.Lock()
	q.asked = append(q.asked, [3]string{backend, tenant, key})
	q.mu.Unlock()
	all := backend == "" && tenant == "" && key == ""
	return func(yield func(api.QuarantineRow, error) bool) {
		for _, r := range q.rows {
			if all {
				r.Raw = nil
			} else if r.Backend != backend || r.Tenant != tenant || r.Key != key {
				continue
			}
			if !yield(r, nil) {
				return
			}
		}
	}
}

// TestReplicationQuarantined: the replication page's data lists every
// quarantined object with its backend, tenant, key and reason under the
// names app.js reads, without the damaged bytes, and with the status the
// page needs to show it (configured, each backend's tenants a list).
func TestReplicationQuarantined(t *testing.T) {
	qt := &fakeQuarantine{rows: []api.QuarantineRow{
		{Backend: "b", Tenant: "acme", Key: "docs/k1", ETag: `"e1"`, Time: time.Unix(10, 0).UTC(), Reason: "checksum mismatch", Size: 12, Raw: []byte("damaged-one")},
		{Backend: "c", Tenant: "beta", Key: "k2", ETag: `"e2"`, Time: time.Unix(11, 0).UTC(), Reason: "not a document", Size: 3, Raw: []byte("bad")},
	}}
	body := replicationPage(t, qt)
	// A map, not ReplicationBody: the names must be the ones app.js reads,
	// case and all.
	var page struct {
		Configured  bool             `json:"configured"`
		Status      map[string]any   `json:"status"`
		Quarantined []map[string]any `json:"quarantined"`
	}
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		t.Fatalf("replication: %v in %s", err, body)
	}
	var top map[string]json.RawMessage
	json.Unmarshal([]byte(body), &top)
	if _, ok := top["configured"]; !ok || !page.Configured {
		t.Fatalf("not configured, so the page hides the quarantine: %s", body)
	}
	if bs, ok := page.Status["backends"].([]any); !ok || len(bs) != 1 {
		t.Fatalf("status: %s", body)
	} else if _, ok := bs[0].(map[string]any)["tenants"].([]any); !ok {
		t.Fatalf("backend's tenants not a list (the page maps over it): %s", body)
	}
	if len(page.Quarantined) != len(qt.rows) {
		t.Fatalf("%d quarantined rows served, want %d: %s", len(page.Quarantined), len(qt.rows), body)
	}
	for i, want := range qt.rows {
		got := page.Quarantined[i]
		if got["backend"] != want.Backend || got["tenant"] != want.Tenant || got["key"] != want.Key || got["reason"] != want.Reason {
			t.Errorf("row %d: %v, want %s/%s/%s (%s)", i, got, want.Backend, want.Tenant, want.Key, want.Reason)
		}
		if _, ok := got["raw"]; ok {
			t.Errorf("row %d carries the damaged bytes: %v", i, got)
		}
	}
	qt.mu.Lock()
	defer qt.mu.Unlock()
	if !slices.Equal(qt.asked, [][3]string{{"", "", ""}}) {
		t.Fatalf("quarantine asked for %q, want every row", qt.asked)
	}
}

// TestReplicationQuarantinedCut: past maxQuarantineRows the page's data
// lists the first rows and says there are more, so the page can say the
// list is cut rather than show it as whole.
func TestReplicationQuarantinedCut(t *testing.T) {
	for _, n := range []int{maxQuarantineRows, maxQuarantineRows + 1} {
		qt := &fakeQuarantine{}
		for i := range n {
			qt.rows = append(qt.rows, api.QuarantineRow{Backend: "b", Tenant: "acme", Key: fmt.Sprintf("k%04d", i), Reason: "checksum mismatch"})
		}
		body := replicationPage(t, qt)
		var page struct {
			Quarantined []map[string]any `json:"quarantined"`
			More        bool             `json:"quarantined_more"`
		}
		if err := json.Unmarshal([]byte(body), &page); err != nil {
			t.Fatalf("replication: %v", err)
		}
		if len(page.Quarantined) != maxQuarantineRows || page.More != (n > maxQuarantineRows) {
			t.Fatalf("%d rows quarantined: page lists %d, more %v", n, len(page.Quarantined), page.More)
		}
	}
}

// replicationPage serves the replication page's data of a node with one
// backend and qt's quarantine, to a signed-in admin, and returns its body.
func replicationPage(t *testing.T, qt *fakeQuarantine) string {
	t.Helper()
	f := newFixture(t, func(o *Options) { o.Reconciler, o.Quarantine = &fakeReconciler{status: oneBackend()}, qt })
	ck, _ := f.signIn(t, local, admin)
	resp, body := f.req("GET", "/console/api/replication", local, ck, "", pageHdr("", false, nil))
	if resp.StatusCode != 200 {
		t.Fatalf("replication: %d %s", resp.StatusCode, body)
	}
	return body
}
