package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// spec is the node's own description, fetched from /v1/openapi.json, with
// the servers taken out: the test's nodes listen on ports of their own.
type spec struct {
	doc    *openapi3.T
	router routers.Router
}

func loadSpec(t *testing.T, url string) spec {
	t.Helper()
	resp, err := httpClient.Get(url + "/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /v1/openapi.json without a token: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		t.Fatalf("the served description does not load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the served description is not valid: %v", err)
	}
	doc.Servers = nil
	for _, item := range doc.Paths.Map() {
		item.Servers = nil
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return spec{doc, router}
}

// noRedirects is httpClient answering a redirect itself: the walk checks
// the 303 the description lists, not the page it leads to.
var noRedirects = &http.Client{
	Transport:     httpClient.Transport,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// exchange is one request of the walk and the status it must get.
type exchange struct {
	listener string // "api" or "admin", as x-cairn-listener names them
	base     string // the listener's URL
	method   string
	path     string // with the query
	body     string
	header   []string // name, value, …
	status   int
	// invalid marks a request made wrong on purpose: it is not checked
	// against the description (which it breaks), only its answer is.
	invalid bool
}

// conformance sends exchanges to the nodes and checks each request and
// answer against the description: the route, its parameters and body, the
// status (which must be listed, not fall to a default), the headers it
// names as required, and the body against its schema. Answers of no route
// (404 of an unknown path, 405 of an unserved method) are the error body.
type conformance struct {
	t         *testing.T
	s         spec
	opts      *openapi3filter.Options
	exercised map[string][]int // operationId → statuses seen
}

func (c *conformance) do(ctx context.Context, x exchange) []byte {
	t := c.t
	t.Helper()
	var body io.Reader
	if x.body != "" {
		body = strings.NewReader(x.body)
	}
	req, err := http.NewRequestWithContext(ctx, x.method, x.base+x.path, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(x.header); i += 2 {
		req.Header.Set(x.header[i], x.header[i+1])
	}
	where := fmt.Sprintf("%s %s %s", x.listener, x.method, x.path)
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != x.status {
		t.Fatalf("%s: %d %s, want %d", where, resp.StatusCode, raw, x.status)
	}
	if resp.Header.Get("X-Request-ID") == "" {
		t.Errorf("%s: no X-Request-ID", where)
	}

	// Validation reads the request again: build a twin with the same body.
	twin, _ := http.NewRequest(x.method, "http://node"+x.path, strings.NewReader(x.body))
	twin.Header = req.Header.Clone()
	route, params, err := c.s.router.FindRoute(twin)
	if err != nil {
		// No described operation: a path's 405 guard or the 404 fallback.
		if resp.StatusCode != 404 && resp.StatusCode != 405 {
			t.Errorf("%s: %d from a route the description lacks: %v", where, resp.StatusCode, err)
		}
		c.errorBody(where, raw)
		c.exercised["(no route)"] = append(c.exercised["(no route)"], resp.StatusCode)
		return raw
	}
	op := route.Operation
	if l, _ := op.Extensions["x-cairn-listener"].(string); l != x.listener {
		if also, _ := op.Extensions["x-cairn-also"].(string); also != x.listener {
			t.Errorf("%s: the description puts %s on the %s listener", where, op.OperationID, l)
		}
	}
	in := &openapi3filter.RequestValidationInput{Request: twin, PathParams: params, Route: route, Options: c.opts}
	if !x.invalid {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			t.Errorf("%s: the request does not match the description: %v", where, err)
		}
	}
	if op.Responses.Status(resp.StatusCode) == nil {
		t.Errorf("%s: status %d is not listed for %s", where, resp.StatusCode, op.OperationID)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode,
		Header: resp.Header, Body: io.NopCloser(bytes.NewReader(raw)), Options: c.opts}
	if x.method == http.MethodHead {
		out.Options = &openapi3filter.Options{IncludeResponseStatus: true, ExcludeResponseBody: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
	}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Errorf("%s: %d does not match the description: %v\n%.300s", where, resp.StatusCode, err, raw)
	}
	c.exercised[op.OperationID] = append(c.exercised[op.OperationID], resp.StatusCode)
	return raw
}

// errorBody checks an answer no operation describes against ErrorBody.
func (c *conformance) errorBody(where string, raw []byte) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		c.t.Errorf("%s: not JSON: %q", where, raw)
		return
	}
	schema := c.s.doc.Components.Schemas["ErrorBody"].Value
	if err := schema.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
		c.t.Errorf("%s: not the error body: %v", where, err)
	}
}

// TestOpenAPIConformance drives every operation of api/openapi.json on
// real nodes, successes and errors, and checks each request and answer
// against the description the node serves. Two nodes share a backend under
// the manual policy, so that the conflict routes have a conflict to show
// and resolve; the second runs the fault simulator with an admin token.
func TestOpenAPIConformance(t *testing.T) {
	for _, ct := range []string{"text/html", "application/x-ndjson"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.FileBodyDecoder)
	}
	be := "local=fs:" + t.TempDir()
	const adminToken = "cairn_openapi_admin"
	sum := sha256.Sum256([]byte(adminToken))
	common := []string{"--backend", be, "--reconcile-interval", "0", "--conflict-policy", "demo=manual"}
	a := startNode(t, t.TempDir(), common...)
	b := startNode(t, t.TempDir(), append(common, "--enable-chaos", "--admin-token-sha256", hex.EncodeToString(sum[:]))...)
	adminA, adminB := "http://"+adminAddr(t, a), "http://"+adminAddr(t, b)
	c := &conformance{t: t, s: loadSpec(t, a.URL), exercised: map[string][]int{},
		opts: &openapi3filter.Options{IncludeResponseStatus: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	authA := []string{"Authorization", "Bearer " + a.Token}
	authB := []string{"Authorization", "Bearer " + b.Token}
	adm := []string{"Authorization", "Bearer " + adminToken}
	with := func(h []string, more ...string) []string { return append(slices.Clone(h), more...) }
	api := func(p *proc, auth []string, method, path, body string, status int, hdr ...string) exchange {
		return exchange{listener: "api", base: p.URL, method: method, path: path, body: body, header: with(auth, hdr...), status: status}
	}
	doc := "/v1/tenants/demo/docs/"
	for _, x := range []exchange{
		api(a, nil, "GET", "/livez", "", 200),
		api(a, nil, "GET", "/readyz", "", 200),
		api(a, nil, "GET", "/v1/openapi.json", "", 200),
		{listener: "admin", base: adminA, method: "GET", path: "/livez", status: 200},
		{listener: "admin", base: adminA, method: "GET", path: "/readyz", status: 200},
		{listener: "admin", base: adminA, method: "GET", path: "/v1/openapi.json", status: 200},
		api(a, authA, "PUT", doc+"k1", `{"n":1}`, 201, "Content-Type", "application/json"),
		api(a, authA, "PUT", doc+"k1", `{"n":2}`, 200, "Content-Type", "application/json"),
		api(a, authA, "PUT", doc+"k1", `{"n":3}`, 412, "Content-Type", "application/json", "If-None-Match", "*"),
		api(a, authA, "PUT", doc+"k1", `{"n":3}`, 412, "Content-Type", "application/json", "If-Match", `"nope"`),
		{listener: "api", base: a.URL, method: "PUT", path: doc + "k2", body: `{"n":`, header: with(authA, "Content-Type", "application/json"), status: 400, invalid: true},
		{listener: "api", base: a.URL, method: "PUT", path: doc + "k2", body: `{}`, header: with(authA, "Content-Encoding", "br"), status: 415, invalid: true},
		{listener: "api", base: a.URL, method: "PUT", path: doc + "k2", body: `{"big":"` + strings.Repeat("x", 2<<20) + `"}`, header: with(authA, "Content-Type", "application/json"), status: 413},
		api(a, nil, "GET", doc+"k1", "", 401),
		api(a, []string{"Authorization", "Bearer cairn_wrong"}, "GET", doc+"k1", "", 401),
		api(a, authA, "GET", doc+"k1", "", 200),
		api(a, authA, "HEAD", doc+"k1", "", 200),
		api(a, authA, "GET", doc+"k1", "", 412, "If-Match", `"nope"`),
		api(a, authA, "HEAD", doc+"k1", "", 412, "If-Match", `"nope"`),
		{listener: "api", base: a.URL, method: "GET", path: "/livez", header: []string{"X-Request-Timeout", "soon"}, status: 400, invalid: true},
		{listener: "admin", base: adminA, method: "GET", path: "/metrics", header: []string{"X-Request-Timeout", "soon"}, status: 400, invalid: true},
		// The admin token acts on the tenants a node serves: another
		// name is a 404.
		api(b, adm, "GET", "/v1/tenants/zzz/docs", "", 404),
		api(b, adm, "GET", "/v1/tenants/zzz/conflicts", "", 404),
		api(b, adm, "POST", "/v1/tenants/zzz/ingest?key_field=id", "{\"id\":\"z\"}\n", 404, "Content-Type", "application/x-ndjson"),
		api(a, authA, "HEAD", doc+"absent", "", 404),
		api(a, authA, "GET", doc+"absent", "", 404),
		api(a, authA, "GET", "/v1/tenants/demo/docs?limit=1&prefix=k", "", 200),
		{listener: "api", base: a.URL, method: "GET", path: "/v1/tenants/demo/docs?limit=abc", header: authA, status: 400, invalid: true},
		{listener: "api", base: a.URL, method: "GET", path: "/v1/tenants/Bad_Tenant/docs", header: authA, status: 400, invalid: true},
		api(a, authA, "DELETE", doc+"absent", "", 404),
		api(a, authA, "DELETE", doc+"k1", "", 412, "If-Match", `"nope"`),
		api(a, authA, "DELETE", doc+"k1", "", 204),
		api(a, authA, "PATCH", doc+"k1", "", 405),
		api(a, authA, "GET", "/v1/nothing", "", 404),
		api(a, authA, "POST", "/v1/tenants/demo/ingest?key_field=id", "{\"id\":\"i1\",\"v\":1}\n{bad\n", 200, "Content-Type", "application/x-ndjson"),
		{listener: "api", base: a.URL, method: "POST", path: "/v1/tenants/demo/ingest", body: "{}\n", header: with(authA, "Content-Type", "application/x-ndjson"), status: 400, invalid: true},
		api(a, authA, "GET", "/v1/tenants/demo/conflicts", "", 200),
		{listener: "api", base: a.URL, method: "GET", path: "/v1/tenants/demo/conflicts?limit=0", header: authA, status: 400, invalid: true},
		api(a, authA, "GET", "/v1/tenants/demo/conflicts/absent", "", 404),
		api(a, authA, "POST", "/v1/tenants/demo/conflicts/absent/resolve", `{"delete":true}`, 404, "Content-Type", "application/json"),
		{listener: "api", base: a.URL, method: "POST", path: "/v1/tenants/demo/conflicts/absent/resolve", body: `{"choose":"a","delete":true}`, header: with(authA, "Content-Type", "application/json"), status: 400, invalid: true},
	} {
		c.do(ctx, x)
	}

	// A conflict: both nodes write "both", then each reconciles with the
	// shared backend; under manual the second keeps both as siblings.
	for _, p := range []*proc{a, b} {
		auth := authA
		if p == b {
			auth = authB
		}
		c.do(ctx, api(p, auth, "PUT", doc+"both", `{"by":"`+p.URL+`"}`, 201, "Content-Type", "application/json"))
	}
	admA := func(method, path string, status int) exchange {
		return exchange{listener: "admin", base: adminA, method: method, path: path, status: status}
	}
	admB := func(method, path, body string, status int, auth []string) exchange {
		return exchange{listener: "admin", base: adminB, method: method, path: path, body: body, header: auth, status: status}
	}
	// Which node finds the conflict depends on which uploader reached the
	// backend first; the siblings then reach the other through a round.
	for pass := 0; ; pass++ {
		if pass == 3 {
			t.Fatal("the second node holds no siblings after three passes of rounds on both nodes")
		}
		c.do(ctx, admA("POST", "/v1/admin/reconcile/run?wait=1", 200))
		c.do(ctx, admB("POST", "/v1/admin/reconcile/run?wait=1", "", 200, nil))
		if resp, _, err := b.do(ctx, "GET", "both", ""); err != nil {
			t.Fatal(err)
		} else if resp.StatusCode == http.StatusConflict {
			break
		}
	}
	c.do(ctx, api(b, authB, "GET", doc+"both", "", 409))
	c.do(ctx, api(b, authB, "PUT", doc+"both", `{}`, 409, "Content-Type", "application/json"))
	raw := c.do(ctx, api(b, authB, "GET", "/v1/tenants/demo/conflicts/both", "", 200))
	var cf struct {
		Siblings []struct{ ETag string } `json:"siblings"`
	}
	if err := json.Unmarshal(raw, &cf); err != nil || len(cf.Siblings) < 2 {
		t.Fatalf("conflict on the second node: %v %s", err, raw)
	}
	c.do(ctx, api(b, authB, "GET", "/v1/tenants/demo/conflicts?limit=10", "", 200))
	c.do(ctx, api(b, authB, "POST", "/v1/tenants/demo/conflicts/both/resolve", `{"choose":"nope"}`, 400, "Content-Type", "application/json"))
	c.do(ctx, api(b, authB, "POST", "/v1/tenants/demo/conflicts/both/resolve", `{"choose":`+fmt.Sprintf("%q", cf.Siblings[0].ETag)+`}`, 200, "Content-Type", "application/json"))
	c.do(ctx, api(b, authB, "GET", "/v1/tenants/demo/conflicts/both?history", "", 200))

	for _, x := range []exchange{
		admA("GET", "/metrics", 200),
		admA("GET", "/debug/pprof/cmdline", 200),
		admA("GET", "/debug/pprof/nosuch", 404),
		admA("GET", "/v1/admin/tenants", 200),
		admA("GET", "/v1/admin/reconcile", 200),
		admA("POST", "/v1/admin/reconcile/run", 202),
		admA("POST", "/v1/admin/reconcile/run?backend=nosuch&wait=1", 404),
		admA("GET", "/v1/admin/quarantine", 200),
		admA("DELETE", "/v1/admin/reconcile", 405),
		admA("GET", "/v1/admin/nothing", 404),
		admA("GET", "/v1/admin/chaos", 404), // no fault simulator on this node
		admB("GET", "/v1/admin/chaos", "", 401, nil),
		admB("GET", "/v1/admin/chaos", "", 200, adm),
		admB("PUT", "/v1/admin/chaos/local", `{"latency":{"p":0.5,"mean_ms":1}}`, 200, with(adm, "Content-Type", "application/json")),
		{listener: "admin", base: adminB, method: "PUT", path: "/v1/admin/chaos/local", body: `{"partition":"sometimes"}`, header: with(adm, "Content-Type", "application/json"), status: 400, invalid: true},
		admB("PUT", "/v1/admin/chaos/nosuch", `{}`, 404, with(adm, "Content-Type", "application/json")),
		admB("GET", "/v1/admin/chaos/local/schedule", "", 200, adm),
		admB("GET", "/v1/admin/chaos/nosuch/schedule", "", 404, adm),
		admB("DELETE", "/v1/admin/chaos/local", "", 200, adm),
		admB("DELETE", "/v1/admin/chaos/local", "", 401, nil),
		admA("GET", "/", 303),
		admA("GET", "/console/", 303),
		admA("POST", "/console/", 404),
	} {
		c.do(ctx, x)
	}

	// Every described operation was exercised, and those that can fail on
	// a loopback node were seen failing.
	for path, item := range c.s.doc.Paths.Map() {
		for method, op := range item.Operations() {
			seen := c.exercised[op.OperationID]
			if len(seen) == 0 {
				t.Errorf("%s %s (%s) was not exercised", method, path, op.OperationID)
			}
			// The two redirects to the console answer 303 to everyone.
			canFail := !slices.Contains([]string{"livez", "readyz", "openapi", "metrics", "adminTenants", "reconcileStatus", "quarantine", "adminRoot", "console"}, op.OperationID)
			if canFail && !slices.ContainsFunc(seen, func(s int) bool { return s >= 400 }) {
				t.Errorf("%s %s (%s): no error exercised (saw %v)", method, path, op.OperationID, seen)
			}
		}
	}
}
