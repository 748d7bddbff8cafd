package node

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/resilience"
	"github.com/cairnstore/cairn/internal/server"
)

// startBodiesNode runs a node on loopback with tenant acme, both listeners.
func startBodiesNode(t *testing.T) (n *Node, token string) {
	t.Helper()
	tok, hash, err := server.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Auth = server.Auth{Tenants: map[string][][32]byte{"acme": {hash}}}
	if n, err = Start(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		http.DefaultClient.CloseIdleConnections()
	})
	return n, tok
}

func doReq(t *testing.T, method, url, token, body string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

type errorBody struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

// TestRawErrorsJSONOnBothListeners: a path with a malformed percent-escape,
// which net/http refuses before any handler, gets the JSON error body with
// a request id on the API and the admin listener alike.
func TestRawErrorsJSONOnBothListeners(t *testing.T) {
	n, _ := startBodiesNode(t)
	for _, addr := range []string{n.Addr(), n.AdminAddr()} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET /v1/tenants/demo/docs/%zz HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		c.Close()
		var e errorBody
		if err := json.Unmarshal(b, &e); err != nil || resp.StatusCode != 400 || e.Error.Code != "invalid" ||
			e.Error.RequestID == "" || e.Error.RequestID != resp.Header.Get("X-Request-Id") {
			t.Errorf("%s: %s %q (%v)", addr, resp.Status, b, err)
		}
	}
}

// TestAdminErrorsJSON: the admin listener's own errors are the JSON error
// body with a request id.
func TestAdminErrorsJSON(t *testing.T) {
	n, _ := startBodiesNode(t)
	resp, b := doReq(t, "GET", "http://"+n.AdminAddr()+"/no/such/route", "", "")
	var e errorBody
	if err := json.Unmarshal(b, &e); err != nil || resp.StatusCode != 404 || e.Error.Code != "not_found" ||
		e.Error.RequestID == "" || e.Error.RequestID != resp.Header.Get("X-Request-Id") {
		t.Errorf("%s %q (%v)", resp.Status, b, err)
	}
	if resp, b := doReq(t, "GET", "http://"+n.AdminAddr()+"/livez", "", ""); resp.StatusCode != 200 || string(b) != "ok\n" {
		t.Errorf("livez: %s %q", resp.Status, b)
	}
}

// TestClientDeadlineOnNode: X-Request-Timeout: 1ns on a PUT to a real node
// is the client's deadline: 408, nothing written, counted as a 4xx.
func TestClientDeadlineOnNode(t *testing.T) {
	n, tok := startBodiesNode(t)
	url := "http://" + n.Addr() + "/v1/tenants/acme/docs/k"
	resp, b := doReq(t, "PUT", url, tok, `{"a":1}`, resilience.TimeoutHeader, "1ns")
	var e errorBody
	json.Unmarshal(b, &e)
	if resp.StatusCode != 408 || e.Error.Code != "timeout" || !strings.Contains(e.Error.Message, "nothing was written") {
		t.Fatalf("PUT with a 1ns deadline: %s %s", resp.Status, b)
	}
	if resp, _ := doReq(t, "GET", url, tok, ""); resp.StatusCode != 404 {
		t.Errorf("GET after the timed-out PUT: %s, want 404", resp.Status)
	}
	_, metrics := doReq(t, "GET", "http://"+n.AdminAddr()+"/metrics", "", "")
	for line := range strings.Lines(string(metrics)) {
		if strings.HasPrefix(line, "cairn_http_requests_total{") && strings.Contains(line, `method="PUT"`) &&
			!strings.Contains(line, `code="408"`) {
			t.Errorf("a PUT counted with another code: %s", line)
		}
	}
	if !strings.Contains(string(metrics), `code="408"`) {
		t.Errorf("no 408 in the request metrics")
	}
}

// TestIngestGzip: the ingest route decodes a gzip body and refuses other
// codings with 415, storing nothing.
func TestIngestGzip(t *testing.T) {
	n, tok := startBodiesNode(t)
	url := "http://" + n.Addr() + "/v1/tenants/acme/ingest?key_field=id"
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	io.WriteString(zw, `{"id":"g1","x":1}`+"\n"+`{"id":"g2","x":2}`+"\n")
	zw.Close()
	resp, b := doReq(t, "POST", url, tok, zb.String(), "Content-Encoding", "gzip", "Content-Type", "application/x-ndjson")
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"accepted":2`) {
		t.Fatalf("gzip ingest: %s %s", resp.Status, b)
	}
	resp, b = doReq(t, "POST", url, tok, `{"id":"b1"}`+"\n", "Content-Encoding", "br", "Content-Type", "application/x-ndjson")
	if resp.StatusCode != 415 || !strings.Contains(string(b), `\"br\"`) {
		t.Errorf("br ingest: %s %s", resp.Status, b)
	}
	docURL := "http://" + n.Addr() + "/v1/tenants/acme/docs/"
	for key, want := range map[string]int{"g1": 200, "g2": 200, "b1": 404} {
		if resp, _ := doReq(t, "GET", docURL+key, tok, ""); resp.StatusCode != want {
			t.Errorf("GET %s: %s, want %d", key, resp.Status, want)
		}
	}
}
