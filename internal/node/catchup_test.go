package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnstore/cairn/api"
	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/backend/mem"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/resilience"
	"github.com/cairnstore/cairn/internal/store"
)

// holdList makes b's listings of tenant wait until the returned release
// is called, so that a node's round cannot complete while a test looks at
// it catching up. Reads (Get) and the listing of tenants go through, but
// for a Get of a key in broken, which fails as a server error would.
func holdList(b *mem.Mem, tenant string, broken ...string) (release func()) {
	gate := make(chan struct{})
	b.SetFault(func(op, tn, key string) error {
		switch {
		case op == backend.OpList && tn == tenant:
			<-gate
		case op == backend.OpGet && slices.Contains(broken, key):
			return fault.New(fault.Transient, fault.Context{}, "injected: the backend answered 500")
		}
		return nil
	})
	var once sync.Once
	return func() { once.Do(func() { close(gate) }) }
}

func get(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	return send(t, http.DefaultClient, req)
}

// TestEmptyNodeCatchesUp: a node started on an empty data directory with
// the tenant and backend of a node whose documents are in the backend is
// catching up until a round of the tenant completes: /readyz (both
// listeners) is 503, the admin listener's naming the tenant, a create-only or compare-and-set
// write answers 503 catching_up with Retry-After, a GET of a document it
// does not hold yet reads it through (X-Cairn-Read-Through) with the ETag
// it will have and stores it, an absent one is 404, and the admin status
// shows it. After
// the round: every document with the origin's ETag, /readyz 200, and
// If-None-Match: * of an existing key is 412.
func TestEmptyNodeCatchesUp(t *testing.T) {
	b := mem.New("shared")
	spec := BackendSpec{Name: "shared", Backend: b}
	noTimeout := func(c *Config) { c.Replication.Resilience = resilience.Config{AttemptTimeout: -1} }
	a := startReplNodeWith(t, noTimeout, spec)
	etags := map[string]string{}
	for i := range 3 {
		key := fmt.Sprintf("k%d", i)
		code, h, body := a.doH(t, "PUT", "/v1/tenants/acme/docs/"+key, fmt.Sprintf(`{"i":%d}`, i), nil)
		if code != 201 {
			t.Fatalf("PUT %s on A: %d %s", key, code, body)
		}
		etags[key] = h.Get("ETag")
	}
	a.run(t, "")
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	release := holdList(b, "acme", "k2")
	defer release()
	bn := startReplNodeWith(t, func(c *Config) {
		noTimeout(c)
		c.Replication.Resilience.MaxAttempts = 1
		c.Auth = a.cfg.Auth // the same --tenant
	}, spec)
	bn.token = a.token

	if code, _, body := get(t, "http://"+bn.AdminAddr()+"/readyz"); code != 503 || !strings.Contains(body, `"catching_up"`) || !strings.Contains(body, `"acme"`) {
		t.Errorf("admin /readyz while catching up: %d %s; want 503 naming acme", code, body)
	}
	if code, _, body := get(t, "http://"+bn.Addr()+"/readyz"); code != 503 || body != `{"status":"catching_up"}`+"\n" {
		t.Errorf("API /readyz while catching up: %d %q; want 503 catching_up naming no tenant", code, body)
	}
	for _, hdr := range []map[string]string{{"If-None-Match": "*"}, {"If-Match": etags["k0"]}} {
		code, h, body := bn.doH(t, "PUT", "/v1/tenants/acme/docs/k0", `{"new":1}`, hdr)
		if code != 503 || h.Get("Retry-After") == "" || !strings.Contains(body, `"catching_up"`) {
			t.Errorf("PUT %v while catching up: %d Retry-After %q %s; want 503 catching_up", hdr, code, h.Get("Retry-After"), body)
		}
	}
	if code, _, body := bn.doH(t, "DELETE", "/v1/tenants/acme/docs/k0", "", nil); code != 503 {
		t.Errorf("DELETE of a document not held yet: %d %s; want 503", code, body)
	}
	code, h, body := bn.doH(t, "GET", "/v1/tenants/acme/docs/k1", "", nil)
	if code != 200 || body != `{"i":1}` || h.Get("ETag") != etags["k1"] || h.Get("X-Cairn-Read-Through") != "shared" {
		t.Errorf("GET k1 while catching up: %d %s ETag %s X-Cairn-Read-Through %q; want 200 with A's ETag %s, read through shared",
			code, body, h.Get("ETag"), h.Get("X-Cairn-Read-Through"), etags["k1"])
	}
	// A backend that cannot be read: 503, not a 404 that may be wrong.
	if code, h, body := bn.doH(t, "GET", "/v1/tenants/acme/docs/k2", "", nil); code != 503 || h.Get("Retry-After") == "" ||
		!strings.Contains(body, `"catching_up"`) || strings.Contains(body, "injected") {
		t.Errorf("GET of a document the backend fails to read while catching up: %d Retry-After %q %s; want 503 catching_up",
			code, h.Get("Retry-After"), body)
	}
	if code, _, body := bn.doH(t, "GET", "/v1/tenants/acme/docs/absent", "", nil); code != 404 {
		t.Errorf("GET of a key absent everywhere while catching up: %d %s; want 404", code, body)
	}
	// A listing would miss what is not restored yet (k0, k2): refused, as
	// an answer no client could tell from a complete one.
	if code, h, body := bn.doH(t, "GET", "/v1/tenants/acme/docs", "", nil); code != 503 || h.Get("Retry-After") == "" ||
		!strings.Contains(body, `"catching_up"`) || !strings.Contains(body, "listing") {
		t.Errorf("listing while catching up: %d Retry-After %q %s; want 503 catching_up", code, h.Get("Retry-After"), body)
	}
	// What was served is stored (adopted), so that the round cannot leave
	// an older version behind it.
	if rec, err := bn.store.Get(context.Background(), "acme", "k1"); err != nil || rec.ETag != etags["k1"] {
		t.Errorf("the document read through is not stored: %v, %v", rec.ETag, err)
	}
	if st := rawStatus(t, bn); !strings.Contains(st, `"catching_up": [
    "acme"
  ]`) || !strings.Contains(st, `"catching_up": true`) {
		t.Errorf("status while catching up: %s", st)
	}

	release()
	b.SetFault(nil)
	run := bn.runAll(t)
	if len(run.Rounds) != 1 || run.Rounds[0].Tenant != "acme" || run.Rounds[0].Error != "" {
		t.Fatalf("run over every tenant: %+v; want acme's round", run)
	}
	for key, etag := range etags {
		code, h, _ := bn.doH(t, "GET", "/v1/tenants/acme/docs/"+key, "", nil)
		if code != 200 || h.Get("ETag") != etag || h.Get("X-Cairn-Read-Through") != "" {
			t.Errorf("GET %s after the round: %d ETag %s read through %q; want 200 %s from the node", key, code, h.Get("ETag"), h.Get("X-Cairn-Read-Through"), etag)
		}
	}
	for _, url := range []string{"http://" + bn.Addr() + "/readyz", "http://" + bn.AdminAddr() + "/readyz"} {
		if code, _, body := get(t, url); code != 200 {
			t.Errorf("%s after the round: %d %s", url, code, body)
		}
	}
	if code, _, body := bn.doH(t, "PUT", "/v1/tenants/acme/docs/k0", `{"new":1}`, map[string]string{"If-None-Match": "*"}); code != 412 {
		t.Errorf("create-only PUT of an existing key after the round: %d %s; want 412", code, body)
	}
	if code, _, body := bn.doH(t, "GET", "/v1/tenants/acme/docs", "", nil); code != 200 || strings.Count(body, `"key"`) != 3 {
		t.Errorf("listing after the round: %d %s; want the 3 documents", code, body)
	}
	if st := rawStatus(t, bn); !strings.Contains(st, `"catching_up": []`) || strings.Contains(st, `"catching_up": true`) {
		t.Errorf("status after the round: %s", st)
	}
}

// TestServeWhileCatchingUp: with the setting, the admin listener's /readyz
// answers 200 while still naming the tenants catching up.
func TestServeWhileCatchingUp(t *testing.T) {
	b := mem.New("shared")
	a := startReplNode(t, BackendSpec{Name: "shared", Backend: b})
	if code, body := a.do(t, "PUT", "k", `{}`); code != 201 {
		t.Fatalf("PUT: %d %s", code, body)
	}
	a.run(t, "")
	a.Shutdown(context.Background())
	release := holdList(b, "acme")
	defer release()
	bn := startReplNodeWith(t, func(c *Config) {
		c.Auth = a.cfg.Auth
		c.ServeWhileCatchingUp = true
	}, BackendSpec{Name: "shared", Backend: b})
	code, _, body := get(t, "http://"+bn.AdminAddr()+"/readyz")
	if code != 200 || !strings.Contains(body, `"acme"`) {
		t.Fatalf("admin /readyz with ServeWhileCatchingUp: %d %s; want 200 naming acme", code, body)
	}
	release()
}

// TestRunWithoutTenantCoversConfiguredTenants: a run over every tenant
// covers a configured tenant the store holds nothing of.
func TestRunWithoutTenantCoversConfiguredTenants(t *testing.T) {
	n := startReplNode(t, BackendSpec{Name: "m", Backend: mem.New("m")})
	run := n.runAll(t)
	if len(run.Rounds) != 1 || run.Rounds[0].Tenant != "acme" {
		t.Fatalf("run without a tenant on a node with an empty store: %+v; want acme's round", run)
	}
}

// runAll asks for a waited round of every tenant on every backend.
func (n replNode) runAll(t *testing.T) api.ReconcileRun {
	t.Helper()
	resp, err := http.Post("http://"+n.AdminAddr()+"/v1/admin/reconcile/run?wait=1", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out api.ReconcileRun
	if resp.StatusCode != 200 || json.Unmarshal(b, &out) != nil {
		t.Fatalf("run: %s %s", resp.Status, b)
	}
	return out
}

// rawStatus is the body of GET /v1/admin/reconcile as the node wrote it.
func rawStatus(t *testing.T, n replNode) string {
	t.Helper()
	_, _, body := get(t, "http://"+n.AdminAddr()+"/v1/admin/reconcile")
	return body
}

// TestCatchingUpServesTheNewerVersion: a node catching up that holds an
// older version of a document than the backend (a catch-up pack's, before
// the feed replay brings the writes made since) serves the backend's:
// the newer body and ETag, and 404 for a document deleted since. Serving
// its own would show a reader, after a read through, an older state.
func TestCatchingUpServesTheNewerVersion(t *testing.T) {
	b := mem.New("shared")
	spec := BackendSpec{Name: "shared", Backend: b}
	noTimeout := func(c *Config) { c.Replication.Resilience = resilience.Config{AttemptTimeout: -1} }
	a := startReplNodeWith(t, noTimeout, spec)
	ctx := context.Background()
	for _, key := range []string{"k0", "k1"} {
		if code, body := a.do(t, "PUT", key, `{"v":1}`); code != 201 {
			t.Fatalf("PUT %s on A: %d %s", key, code, body)
		}
	}
	var old []store.Record
	for _, key := range []string{"k0", "k1"} {
		rec, err := a.store.Get(ctx, "acme", key)
		if err != nil {
			t.Fatal(err)
		}
		old = append(old, rec)
	}
	code, h, body := a.doH(t, "PUT", "/v1/tenants/acme/docs/k0", `{"v":2}`, nil)
	if code != 200 {
		t.Fatalf("second PUT k0 on A: %d %s", code, body)
	}
	newer := h.Get("ETag")
	if code, body := a.do(t, "DELETE", "k1", ""); code != 204 {
		t.Fatalf("DELETE k1 on A: %d %s", code, body)
	}
	a.run(t, "")
	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	release := holdList(b, "acme")
	defer release()
	bn := startReplNodeWith(t, func(c *Config) {
		noTimeout(c)
		c.Auth = a.cfg.Auth
	}, spec)
	bn.token = a.token
	for _, rec := range old { // what a catch-up pack made before the second writes holds
		if _, err := bn.store.Apply(ctx, "acme", rec.Key, rec.Version, rec.Body, doc.ID{}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if code, h, body := bn.doH(t, "GET", "/v1/tenants/acme/docs/k0", "", nil); code != 200 || body != `{"v":2}` || h.Get("ETag") != newer {
		t.Errorf("GET k0 while catching up, holding its first version: %d %s ETag %s; want the backend's %s", code, body, h.Get("ETag"), newer)
	}
	if code, _, body := bn.doH(t, "GET", "/v1/tenants/acme/docs/k1", "", nil); code != 404 {
		t.Errorf("GET k1 while catching up, holding the version deleted since: %d %s; want 404", code, body)
	}
	// What was served is the node's own now, before any round ran: once the
	// round passes the keys, it cannot answer the older versions again.
	if rec, err := bn.store.Get(ctx, "acme", "k0"); err != nil || rec.ETag != newer {
		t.Errorf("k0 on the node after it was served: %v %v; want %s", rec.ETag, err, newer)
	}
	if rec, err := bn.store.Get(ctx, "acme", "k1"); err != nil || !rec.Version.Tombstone {
		t.Errorf("k1 on the node after its delete was served: %+v, %v; want its tombstone", rec.Version, err)
	}
}

// hangingGets is a backend whose reads of documents wait until their
// caller gives up: a backend that accepts connections and never answers.
type hangingGets struct{ *mem.Mem }

func (hangingGets) Get(ctx context.Context, _, _ string) (*backend.Object, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestReadThroughBounded: while catching up, a read through a backend that
// does not answer ends as a 503 catching_up with Retry-After, bounded by
// the read-through's own wait: with no attempt timeout and no limit on
// the attempts' time, nothing else would end it.
func TestReadThroughBounded(t *testing.T) {
	b := hangingGets{mem.New("shared")}
	a := startReplNodeWith(t, nil, BackendSpec{Name: "shared", Backend: b.Mem})
	if code, body := a.do(t, "PUT", "k0", `{}`); code != 201 {
		t.Fatalf("PUT on A: %d %s", code, body)
	}
	a.run(t, "")
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	release := holdList(b.Mem, "acme")
	defer release()
	n := startReplNodeWith(t, func(c *Config) {
		c.Replication.Resilience = resilience.Config{AttemptTimeout: -1, MaxElapsed: time.Hour}
		c.Auth = a.cfg.Auth
	}, BackendSpec{Name: "shared", Backend: b})
	n.token = a.token
	code, h, body := n.doH(t, "GET", "/v1/tenants/acme/docs/k", "", nil)
	if code != 503 || h.Get("Retry-After") == "" || !strings.Contains(body, `"catching_up"`) {
		t.Fatalf("GET through a backend that does not answer: %d Retry-After %q %s; want 503 catching_up", code, h.Get("Retry-After"), body)
	}
}
