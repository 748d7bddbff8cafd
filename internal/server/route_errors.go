package server

import "net/http"

// WriteError answers err as the server's JSON error, with the status, code
// and headers its class gives (see "Errors" in the package doc), and records
// it for the request's log line. Handlers of mounted routes ([Route]) call
// it so that their errors look like the built-in routes' errors. It writes
// nothing if the response has started.
func (s *Server) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	s.writeError(w, r, err)
}

// Timeouts returns the server's timeouts, defaults filled in: a mounted
// route that streams for longer extends its connection's deadlines by them
// as it makes progress, as a listing does.
func (s *Server) Timeouts() Timeouts { return s.timeouts }

// StatusOf returns the HTTP status and error code [Server.WriteError]
// answers err with, for a mounted route that writes its own error body.
func StatusOf(err error) (status int, code string) { return statusOf(err) }

// WithStatus makes [Server.WriteError] and [StatusOf] answer err with status
// and code, for an answer a fault class cannot express (a 429 for one
// tenant's share of a resource, a 408 for a body sent too slowly). err keeps
// its class for logs and errors.Is.
func WithStatus(status int, code string, err error) error {
	return &httpError{status: status, code: code, err: err}
}

// BodyReadError classifies a failure to read a request body as the built-in
// routes do, for a mounted route that streams its body: 408 timeout when the
// body stopped arriving (the connection's read deadline), 400 otherwise. Its
// status and code come from [StatusOf].
func BodyReadError(op string, err error) error { return bodyReadError(op, 0, err) }
