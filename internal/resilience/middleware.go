package resilience

import (
	"encoding/json"
	"net/http"

	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/server/reqctx"
)

// Middleware sheds load in front of next: each request is admitted or
// answered at once with 503 or 429, a Retry-After header and the JSON error
// body {"error":{"code","message","request_id"}} (code is the fault class
// name, "exhausted"; request_id is the server's request id from reqctx, or the X-Request-ID header outside a cairn server). tenantOf names
// the request's tenant; an empty tenant shares one bucket (""). Put the
// middleware after authentication (server.Admission.Limiter), so that only
// a tenant's own requests (or an admin's acting on it) spend its budget.
//
// The server's access log should wrap this middleware so that shed requests
// are logged once like every other failed request.
func (l *Limiter) Middleware(tenantOf func(*http.Request) string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenant := tenantOf(r)
		d := l.Acquire(tenant)
		if !d.Admit {
			writeShed(w, r, d)
			return
		}
		defer l.Release(tenant)
		next.ServeHTTP(w, r)
	})
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id,omitempty"`
}

func writeShed(w http.ResponseWriter, r *http.Request, d Decision) {
	if info := reqctx.From(r.Context()); info != nil {
		info.Shed = true
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Retry-After", fault.FormatRetryAfter(d.RetryAfter))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(d.Status)
	id := reqctx.RequestID(r.Context()) // the server's id: it may have made one
	if id == "" {
		id = r.Header.Get("X-Request-ID") // the middleware used outside a cairn server
	}
	_ = json.NewEncoder(w).Encode(errorBody{Error: errorDetail{
		Code:      fault.Exhausted.String(),
		Message:   d.Reason,
		RequestID: id,
	}})
}
