package node

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cairnstore/cairn/internal/resilience"
	"github.com/cairnstore/cairn/internal/server"
)

// TestShedsPastItsLimits overloads a real node: PUTs held in flight by a
// body that has not finished arriving fill the tenant's share, then the
// node's. Past each limit the answer is immediate, 429 (the tenant) or 503
// (the node), with Retry-After; another tenant within its share is still
// served while the node has room; and the held requests complete.
func TestShedsPastItsLimits(t *testing.T) {
	tokA, sumA, _ := server.NewToken()
	tokB, sumB, _ := server.NewToken()
	cfg := testConfig(t)
	cfg.Auth.Tenants = map[string][][32]byte{"a": {sumA}, "b": {sumB}}
	cfg.Limits = resilience.DefaultLimiterConfig()
	cfg.Limits.MaxInFlight, cfg.Limits.TenantMaxInFlight = 3, 2
	n, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown(context.Background())

	hold := func(tenant, tok, key string) net.Conn { // a PUT whose body is still arriving
		c, err := net.Dial("tcp", n.Addr())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "PUT /v1/tenants/%s/docs/%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"+
			"Content-Length: 2\r\n\r\n{", tenant, key, tok)
		return c
	}
	status := func(tenant, tok string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+n.Addr()+"/v1/tenants/"+tenant+"/docs/k", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			// A shed answer names the request id the server gave it (none
			// was sent), like every other error.
			var body struct {
				Error struct {
					RequestID string `json:"request_id"`
				} `json:"error"`
			}
			json.NewDecoder(resp.Body).Decode(&body)
			if id := resp.Header.Get("X-Request-Id"); id == "" || body.Error.RequestID != id {
				t.Errorf("shed %d: body request_id %q, header %q; want the same, non-empty", resp.StatusCode, body.Error.RequestID, id)
			}
		}
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	// waitInFlight polls the limiter until the held requests were admitted:
	// they arrive over real sockets, so there is no event to wait on.
	waitInFlight := func(want int64) {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if got, _ := n.limiter.InFlight(); got == want {
				return
			}
			time.Sleep(time.Millisecond)
		}
		t.Fatalf("in flight never reached %d", want)
	}

	held := []net.Conn{hold("a", tokA, "h1"), hold("a", tokA, "h2")}
	waitInFlight(2)
	if code, ra := status("a", tokA); code != http.StatusTooManyRequests || ra == "" {
		t.Errorf("tenant a past its share: %d Retry-After %q, want 429 with Retry-After", code, ra)
	}
	if code, _ := status("b", tokB); code != http.StatusNotFound { // admitted: the key does not exist
		t.Errorf("tenant b within its share: %d, want it served (404)", code)
	}
	held = append(held, hold("b", tokB, "h3"))
	waitInFlight(3)
	if code, ra := status("b", tokB); code != http.StatusServiceUnavailable || ra == "" {
		t.Errorf("node past its limit: %d Retry-After %q, want 503 with Retry-After", code, ra)
	}
	for _, c := range held {
		c.Write([]byte("}"))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusCreated {
			t.Errorf("held PUT: %v %v", resp, err)
		}
		c.Close()
	}
	if code, _ := status("a", tokA); code != http.StatusNotFound {
		t.Errorf("after the load: %d, want served", code)
	}
	// cairn_shed_total tells the node's own limit (busy) from a tenant's.
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(scrape(t, "http://"+n.AdminAddr()+"/metrics")))
	if err != nil {
		t.Fatal(err)
	}
	for reason, want := range map[string]float64{"busy": 1, "tenant": 1, "conns": 0} {
		if got, ok := sample(fams["cairn_shed_total"], "reason", reason); !ok || got != want {
			t.Errorf("cairn_shed_total{reason=%q} = %v (found %v), want %v", reason, got, ok, want)
		}
	}
}
