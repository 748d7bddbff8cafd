package server_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/server"
)

// Options.Deadline bounds writes, not reads, and the request's context
// still carries what the server put in it (the tenant, the request id).
func TestDeadlineBoundsWrites(t *testing.T) {
	type seen struct {
		deadline bool
		tenant   string
		ctx      context.Context
	}
	var got seen
	var cancelled int
	e := newEnv(t, func(o *server.Options) {
		o.Deadline = func(r *http.Request) (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithTimeout(r.Context(), time.Hour)
			return ctx, func() { cancelled++; cancel() }
		}
		o.Middleware = append(o.Middleware, func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, ok := r.Context().Deadline()
				got = seen{ok, server.TenantOf(r), r.Context()}
				h.ServeHTTP(w, r)
			})
		})
	})
	u := docURL(tenantA, "k")
	for _, tc := range []struct {
		method, body string
		status       int
		deadline     bool
	}{
		{"PUT", `{"a":1}`, 201, true},
		{"GET", "", 200, false},
		{"HEAD", "", 200, false},
		{"DELETE", "", 204, true},
	} {
		before := cancelled
		w := e.do(t, req{method: tc.method, path: u, token: e.tokA, body: tc.body})
		if w.Code != tc.status {
			t.Fatalf("%s: %d %s", tc.method, w.Code, w.Body)
		}
		if got.deadline != tc.deadline || got.tenant != tenantA {
			t.Errorf("%s: handler saw deadline %v, tenant %q; want %v, %q", tc.method, got.deadline, got.tenant, tc.deadline, tenantA)
		}
		if tc.deadline && (cancelled != before+1 || got.ctx.Err() == nil) {
			t.Errorf("%s: the deadline's cancel ran %d times, context error %v", tc.method, cancelled-before, got.ctx.Err())
		}
	}
}
