package node

import (
	"errors"

	"github.com/cairnstore/cairn/internal/ingest"
	"github.com/cairnstore/cairn/internal/server"
)

// validateBody is the server's body check: strict RFC 8259 (ingest's
// validator, which also refuses invalid UTF-8) nested at most
// server.DefaultMaxDepth deep.
func validateBody(b []byte) error {
	err := ingest.ValidateDepth(b, server.DefaultMaxDepth)
	var se *ingest.SyntaxError
	if errors.As(err, &se) {
		return &bodyError{se}
	}
	return err
}

// bodyError words a syntax error for the server, which adds "invalid JSON at
// byte N" itself.
type bodyError struct{ se *ingest.SyntaxError }

func (e *bodyError) Error() string     { return e.se.Msg }
func (e *bodyError) ByteOffset() int64 { return e.se.Offset }
func (e *bodyError) Unwrap() error     { return e.se }
