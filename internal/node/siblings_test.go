package node

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/internal/reconcile"
)

// doH is do with request headers, returning the response headers too.
func (n replNode) doH(t *testing.T, method, path, body string, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+n.Addr()+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+n.token)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return send(t, http.DefaultClient, req)
}

// send does req with hc and returns the status, headers and body.
func send(t *testing.T, hc *http.Client, req *http.Request) (int, http.Header, string) {
	t.Helper()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// settle runs rounds on the nodes in turn until a whole turn applies
// nothing. The uploaders' fast-path actions are not counted in the rounds,
// so the first turn never counts as quiet: a node's waited round takes the
// key after its uploader let go of it (or before the uploader takes it,
// which then finds nothing to do), so after one full turn no uploader has
// anything left.
func settle(t *testing.T, ns ...replNode) {
	t.Helper()
	for turn := range 8 {
		applied := 0
		for _, n := range ns {
			for _, r := range n.run(t, "").Rounds {
				if r.Error != "" {
					t.Fatalf("round: %s", r.Error)
				}
				applied += r.Applied
			}
		}
		if applied == 0 && turn > 0 {
			return
		}
	}
	t.Fatal("the nodes did not settle")
}

func startManualPair(t *testing.T) (a, b replNode) {
	t.Helper()
	spec, err := ParseBackendSpec("shared=fs:" + t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	manual := func(cfg *Config) {
		cfg.Replication.Policies = map[string]reconcile.Policy{"acme": {Strategy: reconcile.Manual}}
	}
	return startReplNodeWith(t, manual, spec), startReplNodeWith(t, manual, spec)
}

// TestSiblingsOverHTTP: two nodes under the manual policy write one key
// concurrently; after reconciliation both answer 409 for it, from the store
// and from the cache alike, a blind write is refused, and a write naming a
// sibling resolves the conflict on both.
func TestSiblingsOverHTTP(t *testing.T) {
	a, b := startManualPair(t)
	// Each write's ETag names its sibling. b's upload may already meet a's
	// object and record the conflict (the uploader settles a 412 as a round
	// would), so the ETags come from the writes, not from reads after them.
	_, ha, _ := a.doH(t, "PUT", "/v1/tenants/acme/docs/k", `{"from":"a"}`, nil)
	_, hb, _ := b.doH(t, "PUT", "/v1/tenants/acme/docs/k", `{"from":"b"}`, nil)
	if ha.Get("Etag") == "" || hb.Get("Etag") == "" {
		t.Fatalf("the writes of k answered without an ETag: %v, %v", ha, hb)
	}
	a.do(t, "PUT", "j/1", `{"from":"a"}`)
	b.do(t, "PUT", "j/1", `{"from":"b"}`)
	// Read the key before settling, so that the cache holds a version from
	// before the conflict (unless the conflict is known already): the 409
	// must come through the cache too.
	a.do(t, "GET", "k", "")
	b.do(t, "GET", "k", "")
	settle(t, a, b)

	// Both nodes list both conflicts.
	for name, n := range map[string]replNode{"a": a, "b": b} {
		code, _, body := n.doH(t, "GET", "/v1/tenants/acme/conflicts", "", nil)
		var page struct {
			Items []struct {
				Key      string
				Siblings []struct{ ETag string }
			}
		}
		if err := json.Unmarshal([]byte(body), &page); err != nil || code != 200 || len(page.Items) != 2 ||
			page.Items[0].Key != "j/1" || page.Items[1].Key != "k" || len(page.Items[1].Siblings) != 2 {
			t.Fatalf("conflicts on %s: %d %s", name, code, body)
		}
	}
	// One is resolved through the API on a by choosing b's version.
	code, _, body := a.doH(t, "GET", "/v1/tenants/acme/conflicts/j%2F1", "", nil)
	var cf struct {
		Siblings []struct {
			ETag string
			Body json.RawMessage
		}
	}
	if err := json.Unmarshal([]byte(body), &cf); err != nil || code != 200 || len(cf.Siblings) != 2 {
		t.Fatalf("conflict j/1: %d %s", code, body)
	}
	var fromB string
	for _, s := range cf.Siblings {
		if string(s.Body) == `{"from":"b"}` {
			fromB = s.ETag
		}
	}
	choose, _ := json.Marshal(map[string]string{"choose": fromB})
	if code, _, body := a.doH(t, "POST", "/v1/tenants/acme/conflicts/j%2F1/resolve", string(choose), nil); code != 200 {
		t.Fatalf("resolve j/1: %d %s", code, body)
	}
	settle(t, a, b)
	for name, n := range map[string]replNode{"a": a, "b": b} {
		if code, body := n.do(t, "GET", "j%2F1", ""); code != 200 || body != `{"from":"b"}` {
			t.Fatalf("GET j/1 on %s after the resolution: %d %s", name, code, body)
		}
	}
	// What the resolution did not keep (a's version) is in the history of
	// both nodes, with its body.
	for name, n := range map[string]replNode{"a": a, "b": b} {
		code, _, body := n.doH(t, "GET", "/v1/tenants/acme/conflicts/j%2F1?history", "", nil)
		var h struct {
			Items []struct {
				Body   json.RawMessage
				Winner string
			}
		}
		if err := json.Unmarshal([]byte(body), &h); err != nil || code != 200 || len(h.Items) != 1 ||
			string(h.Items[0].Body) != `{"from":"a"}` || h.Items[0].Winner == "" {
			t.Fatalf("history of j/1 on %s: %d %s", name, code, body)
		}
	}

	for name, n := range map[string]replNode{"a": a, "b": b} {
		for range 2 { // a miss, then a hit
			code, h, body := n.doH(t, "GET", "/v1/tenants/acme/docs/k", "", nil)
			if sibs := h.Get("X-Cairn-Siblings"); !strings.Contains(sibs, ha.Get("Etag")) || !strings.Contains(sibs, hb.Get("Etag")) {
				t.Fatalf("GET on %s: X-Cairn-Siblings %q", name, sibs)
			}
			if code != http.StatusConflict || !strings.Contains(body, strings.Trim(ha.Get("Etag"), `"`)) || !strings.Contains(body, strings.Trim(hb.Get("Etag"), `"`)) {
				t.Fatalf("GET on %s: %d %s; want 409 naming both siblings", name, code, body)
			}
		}
	}
	if code, _, body := a.doH(t, "PUT", "/v1/tenants/acme/docs/k", `{"blind":1}`, nil); code != http.StatusConflict {
		t.Fatalf("blind PUT: %d %s; want 409", code, body)
	}
	code, _, body = b.doH(t, "PUT", "/v1/tenants/acme/docs/k", `{"merged":1}`, map[string]string{"If-Match": ha.Get("Etag")})
	if code != http.StatusOK {
		t.Fatalf("resolving PUT: %d %s", code, body)
	}
	settle(t, b, a)
	for name, n := range map[string]replNode{"a": a, "b": b} {
		if code, body := n.do(t, "GET", "k", ""); code != 200 || body != `{"merged":1}` {
			t.Fatalf("GET on %s after the resolution: %d %s", name, code, body)
		}
	}
}
