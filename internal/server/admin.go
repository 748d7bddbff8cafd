package server

import "net/http"

// AdminHandler returns next, the handler of the node's admin listener
// (health, metrics, profiles, admin routes), under the API's rules: each
// request gets its id as the API's do (the client's X-Request-ID if sane,
// else a new one; echoed in X-Request-Id and carried in a [reqctx.Info]),
// errors written with [Server.WriteError] carry it, and such an error is
// logged as the API logs one. With requireAdmin, only requests bearing an
// admin token reach next, checked as on the API ([Server.RequireAdmin]).
func (s *Server) AdminHandler(next http.Handler, requireAdmin bool) http.Handler {
	if requireAdmin {
		next = s.RequireAdmin(next)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x, r := s.begin(r.Context(), w, r)
		next.ServeHTTP(x, r)
		// Only errors are logged: the admin listener's successes (metrics
		// scrapes, probes) are not an access log anyone reads.
		if x.failure != nil {
			s.logExchange(x, r)
		}
	})
}

// RequireAdmin serves next only to requests bearing an admin token, parsed
// and checked as the API checks one (the scheme in any case, spaces around
// the token, constant-time comparison with every configured hash). Others
// get the API's JSON 401 or 403, and count against [Options.AuthFailed].
// Serve it under [Server.AdminHandler] or the API, so the answer has a
// request id.
func (s *Server) RequireAdmin(next http.Handler) http.Handler {
	return s.authenticate(AccessAdmin, next)
}
