package server

import (
	"encoding/json"
	"errors"
	"strconv"

	"github.com/cairnstore/cairn/internal/ingest"
)

// strictJSON returns the default body validator: ingest's strict RFC 8259
// validator (it also refuses invalid UTF-8, which encoding/json lets
// through) with a nesting limit of maxDepth. It is the validator ingestion
// uses too, so a document accepted by PUT and one accepted by ingest obey
// the same rules.
func strictJSON(maxDepth int) func([]byte) error {
	return func(b []byte) error { return ingest.ValidateDepth(b, maxDepth) }
}

// describeInvalid words a validation error for the client: the byte offset
// when the error carries one, and the reason without the validator's own
// prefix.
func describeInvalid(err error) string {
	var se *ingest.SyntaxError
	if errors.As(err, &se) {
		return "invalid JSON at byte " + strconv.FormatInt(se.Offset, 10) + ": " + se.Msg
	}
	var je *json.SyntaxError
	if errors.As(err, &je) {
		return "invalid JSON at byte " + strconv.FormatInt(je.Offset, 10) + ": " + je.Error()
	}
	var bo interface{ ByteOffset() int64 }
	if errors.As(err, &bo) {
		return "invalid JSON at byte " + strconv.FormatInt(bo.ByteOffset(), 10) + ": " + err.Error()
	}
	return "invalid JSON: " + err.Error()
}
