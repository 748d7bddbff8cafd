package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/api"
	"github.com/cairnstore/cairn/api/chaosapi"
	"github.com/cairnstore/cairn/internal/server"
	"github.com/cairnstore/cairn/internal/store"
)

// TestEveryRouteErrorsAlike walks every route of both listeners (the API's
// and the admin's, each as Server.Routes lists it) and sends each one
// request with no token, one with a wrong token, one with a method it does
// not serve (routes that name one) and two with paths no route serves. Every error, whichever
// listener and whichever layer answers it (authentication, routing, the
// handler), must be the one JSON body whose request_id is the answer's
// X-Request-Id, and that id must follow the one rule: the client's sane
// X-Request-ID kept, anything else replaced by a new id.
func TestEveryRouteErrorsAlike(t *testing.T) {
	e := newEnv(t, func(o *server.Options) { o.Ingest = &server.IngestOptions{Writer: failingWriter{}} })
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	listeners := map[string]*server.Server{"api": e.srv}
	for _, require := range []bool{true, false} {
		s, err := server.NewAdmin(server.AdminOptions{
			Auth: e.auth, RequireToken: require, Logger: slog.New(slog.DiscardHandler),
			Metrics: ok, Pprof: ok, TenantStats: ok,
			Reconciler: fakeReconciler{}, Quarantine: fakeQuarantine{}, Chaos: fakeChaos{},
		})
		if err != nil {
			t.Fatal(err)
		}
		listeners[fmt.Sprintf("admin (token required: %v)", require)] = s
	}

	// The walk covers the routes that moved in from the node.
	for name, want := range map[string]string{"api": "POST " + server.IngestPath, "admin (token required: true)": "PUT /v1/admin/chaos/{backend}"} {
		if !slices.ContainsFunc(listeners[name].Routes(), func(r server.RouteInfo) bool { return r.Pattern == want }) {
			t.Errorf("%s: no route %q in %v", name, want, listeners[name].Routes())
		}
	}
	n := 0
	for name, s := range listeners {
		routes := s.Routes()
		if len(routes) < 5 {
			t.Fatalf("%s: only %d routes listed", name, len(routes))
		}
		for _, rt := range routes {
			method, path := routeRequest(rt.Pattern)
			cases := []struct {
				what, method, path, auth string
			}{
				{"no token", method, path, ""},
				{"wrong token", method, path, "Bearer cairn_wrong"},
				{"bad method", "PATCH", path, "Bearer " + e.tokAdmin},
				{"bad path", method, "/no/such/route" + path, "Bearer " + e.tokAdmin},
				{"non-canonical path", method, path + "/../x", "Bearer " + e.tokAdmin},
			}
			for _, c := range cases {
				n++
				id := fmt.Sprintf("walk-%d", n)
				if n%2 == 0 {
					id = "not a sane id\x7f" // must be replaced
				}
				r := httptest.NewRequest(c.method, c.path, strings.NewReader("{}"))
				r.Header.Set("X-Request-Id", id)
				if c.auth != "" {
					r.Header.Set("Authorization", c.auth)
				}
				w := httptest.NewRecorder()
				s.ServeHTTP(w, r)
				where := fmt.Sprintf("%s: %s (%s): %s %s", name, rt.Pattern, c.what, c.method, c.path)
				got := w.Header().Get("X-Request-Id")
				switch {
				case got == "":
					t.Errorf("%s: no X-Request-Id", where)
				case n%2 == 1 && got != id:
					t.Errorf("%s: X-Request-Id %q, want the client's %q", where, got, id)
				case n%2 == 0 && got == id:
					t.Errorf("%s: an insane X-Request-Id was kept", where)
				}
				if c.what == "no token" && rt.Access != server.AccessPublic && w.Code != http.StatusUnauthorized {
					t.Errorf("%s: %d without a token, want 401", where, w.Code)
				}
				if c.what == "bad method" && strings.Contains(rt.Pattern, " ") && w.Code < 400 {
					t.Errorf("%s: %d, want an error", where, w.Code)
				}
				if w.Code < 400 || c.method == http.MethodHead { // a HEAD answer has no body
					continue
				}
				var body api.ErrorBody
				if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error == nil {
					t.Errorf("%s: %d, not the JSON error body: %q", where, w.Code, w.Body)
					continue
				}
				if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
					t.Errorf("%s: Content-Type %q", where, ct)
				}
				if b := body.Error; b.Code == "" || b.Message == "" || b.RequestID != got {
					t.Errorf("%s: error %+v, X-Request-Id %q", where, b, got)
				}
			}
		}
	}
}

// routeRequest turns a ServeMux pattern into a method and a path it
// matches.
func routeRequest(pattern string) (method, path string) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		method, path = http.MethodGet, pattern
	}
	path = strings.NewReplacer("{tenant}", tenantA, "{key...}", "k", "{backend}", "b").Replace(path)
	return method, path
}

// failingWriter refuses every batch: the walk never sends a stream that
// reaches it.
type failingWriter struct{}

func (failingWriter) StartPutBatch(context.Context, string, []store.Item) (*store.PendingBatch, error) {
	return nil, errors.New("failingWriter: no store")
}

type fakeReconciler struct{}

func (fakeReconciler) ReconcileStatus() api.ReconcileStatus { return api.ReconcileStatus{} }
func (fakeReconciler) RunReconcile(context.Context, server.ReconcileRequest) (api.ReconcileRun, error) {
	return api.ReconcileRun{Triggered: true}, nil
}

type fakeQuarantine struct{}

func (fakeQuarantine) QuarantineRows(context.Context, string, string, string) iter.Seq2[api.QuarantineRow, error] {
	return func(func(api.QuarantineRow, error) bool) {}
}

type fakeChaos struct{}

func (fakeChaos) ChaosStatus() chaosapi.Status { return chaosapi.Status{} }
func (fakeChaos) ChaosBackend(string) (server.ChaosBackend, []string) {
	return nil, []string{"a"}
}
