package e2e

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// apiErr is the JSON error body.
type apiErr struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

// TestHostileRequests drives the real binary with the requests of issue
// 13's items 6–10 and checks each answer is the JSON error a client can
// act on (or, for gzip, that the body was decoded).
func TestHostileRequests(t *testing.T) {
	p := startNode(t, t.TempDir())
	admin := adminAddr(t, p)
	ctx := t.Context()

	// A malformed percent-escape, refused by net/http before routing.
	for _, addr := range []string{strings.TrimPrefix(p.URL, "http://"), admin} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET /v1/tenants/demo/docs/%zz HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		var e apiErr
		err = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		c.Close()
		if err != nil || resp.StatusCode != 400 || e.Error.RequestID == "" || e.Error.RequestID != resp.Header.Get("X-Request-Id") {
			t.Errorf("%s %%zz: %s %+v (%v)", addr, resp.Status, e, err)
		}
	}

	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	io.WriteString(zw, `{"zipped":true}`)
	zw.Close()
	for _, tc := range []struct {
		name, method, key, body string
		hdr                     []string
		status                  int
		code, msg               string
	}{
		{"client deadline", "PUT", "d1", `{}`, []string{"X-Request-Timeout", "1ns"}, 408, "timeout", "nothing was written"},
		{"gzip", "PUT", "z1", zb.String(), []string{"Content-Encoding", "gzip"}, 201, "", ""},
		{"br", "PUT", "b1", `{}`, []string{"Content-Encoding", "br"}, 415, "unsupported_encoding", `"br"`},
		{"limit with a sign", "GET", "?limit=%2B5", "", nil, 400, "invalid", "from 1 to 1000"},
		{"limit too large", "GET", "?limit=99999999999999999999", "", nil, 400, "invalid", "from 1 to 1000"},
		{"odd request id replaced", "GET", "z1", "", []string{"X-Request-ID", `"><script>`}, 200, "", ""},
	} {
		key := tc.key
		if strings.HasPrefix(key, "?") { // a listing
			key = ""
		}
		var resp *http.Response
		var b []byte
		var err error
		if key == "" {
			req, _ := http.NewRequestWithContext(ctx, "GET", p.URL+"/v1/tenants/demo/docs"+tc.key, nil)
			req.Header.Set("Authorization", "Bearer "+p.Token)
			if resp, err = httpClient.Do(req); err == nil {
				b, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
		} else {
			resp, b, err = p.do(ctx, tc.method, key, tc.body, tc.hdr...)
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %s %s, want %d", tc.name, resp.Status, b, tc.status)
			continue
		}
		if id := resp.Header.Get("X-Request-Id"); id == "" || strings.ContainsAny(id, `"<>`) {
			t.Errorf("%s: X-Request-Id %q", tc.name, id)
		}
		if tc.code == "" {
			continue
		}
		var e apiErr
		if err := json.Unmarshal(b, &e); err != nil || e.Error.Code != tc.code || !strings.Contains(e.Error.Message, tc.msg) {
			t.Errorf("%s: %s, want code %q with %q", tc.name, b, tc.code, tc.msg)
		}
	}
	if resp, b, err := p.do(ctx, "GET", "z1", ""); err != nil || resp.StatusCode != 200 || string(b) != `{"zipped":true}` {
		t.Errorf("the gzip PUT stored %q (%v)", b, err)
	}
	if resp, _, err := p.do(ctx, "GET", "d1", ""); err != nil || resp.StatusCode != 404 {
		t.Errorf("the timed-out PUT: GET answered %v (%v), want 404", resp.Status, err)
	}
}
