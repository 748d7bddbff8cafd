package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/internal/server"
	"github.com/cairnstore/cairn/internal/server/servertest"

	"github.com/cairnstore/cairn/internal/procout"
)

const (
	tenantA = "acme"
	tenantB = "beta"
)

// env is a server over a Mem with one token per tenant and an admin token.
type env struct {
	srv                  *server.Server
	mem                  *servertest.Mem
	tokA, tokB, tokAdmin string
	auth                 server.Auth // the tokens' hashes, for NewAdmin
	logs                 *logSink
}

func newEnv(t testing.TB, tweak ...func(*server.Options)) *env {
	t.Helper()
	e := &env{mem: &servertest.Mem{}, logs: &logSink{}}
	var ha, hb, hadm [32]byte
	var err error
	mk := func(tok *string, h *[32]byte) {
		if *tok, *h, err = server.NewToken(); err != nil {
			t.Fatal(err)
		}
	}
	mk(&e.tokA, &ha)
	mk(&e.tokB, &hb)
	mk(&e.tokAdmin, &hadm)
	o := server.Options{
		Docs: e.mem,
		Auth: server.Auth{
			Tenants: map[string][][32]byte{tenantA: {ha}, tenantB: {hb}},
			Admin:   [][32]byte{hadm},
		},
		Logger: slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, f := range tweak {
		f(&o)
	}
	e.auth = o.Auth
	if e.srv, err = server.New(o); err != nil {
		t.Fatal(err)
	}
	return e
}

// req is one request to send.
type req struct {
	method, path, token, body string
	hdr                       []string // name, value, name, value…
}

func (e *env) do(t testing.TB, q req) *httptest.ResponseRecorder {
	t.Helper()
	var body io.Reader
	if q.body != "" {
		body = strings.NewReader(q.body)
	}
	r := httptest.NewRequest(q.method, q.path, body)
	if q.token != "" {
		r.Header.Set("Authorization", "Bearer "+q.token)
	}
	for i := 0; i+1 < len(q.hdr); i += 2 {
		r.Header.Add(q.hdr[i], q.hdr[i+1])
	}
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, r)
	return w
}

// put stores a document through the API and returns its ETag.
func (e *env) put(t testing.TB, tenant, key, body string) string {
	t.Helper()
	w := e.do(t, req{method: "PUT", path: docURL(tenant, key), token: e.tokAdmin, body: body})
	if w.Code != 201 && w.Code != 200 {
		t.Fatalf("put %s/%s: %d %s", tenant, key, w.Code, w.Body)
	}
	return w.Header().Get("ETag")
}

func docURL(tenant, key string) string { return "/v1/tenants/" + tenant + "/docs/" + key }

// apiError is the JSON error body.
type apiError struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

func decodeError(t testing.TB, w *httptest.ResponseRecorder) apiError {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("error body %q: %v", w.Body, err)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type = %q, want application/json", ct)
	}
	if got, want := e.Error.RequestID, w.Header().Get("X-Request-ID"); got == "" || got != want {
		t.Errorf("error request_id = %q, header %q", got, want)
	}
	return e
}

// logSink collects JSON log lines.
type logSink struct{ procout.Buffer }

// records returns the log records, each as a map.
func (l *logSink) records(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace([]byte(l.String())), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

var _ http.Handler = (*server.Server)(nil)

// serve serves e's server on a loopback listener, through Serve (and so
// the listener wrapper), until the test ends; it returns the address.
func (e *env) serve(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go e.srv.Serve(ln)
	t.Cleanup(func() { e.srv.Close() })
	return ln.Addr().String()
}
