package server

import "time"

// SetClock replaces the server's clock (listing flush timing, durations).
func SetClock(s *Server, now func() time.Time) { s.now = now }
