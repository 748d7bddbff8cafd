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
