package resp

import (
	"errors"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// TestConflictReply: a write or read of a document with open siblings is
// answered -CONFLICT naming the siblings' and the set's ETags as GETETAG
// gives them, and how to resolve them in RESP's terms.
func TestConflictReply(t *testing.T) {
	err := fault.E(fault.Conflict, fault.Context{Op: "doc.put"}, &doc.SiblingsError{ETag: `"s1"`, Siblings: []string{`"a1"`, `"b2"`}})
	msg, class := errorReply(err)
	if class != fault.Conflict || !strings.HasPrefix(msg, "CONFLICT the document has 2 conflicting versions: siblings a1, b2, the set s1;") ||
		!strings.Contains(msg, "SET key value IFMATCH") || strings.Contains(msg, "If-Match") {
		t.Errorf("errorReply = %q, %v", msg, class)
	}
}

// TestNodeFailureReply: the node's own failures are worded as HTTP words
// its 5xx answers: the message written for clients, never a cause's text.
func TestNodeFailureReply(t *testing.T) {
	cause := errors.New("commit: pebble: fatal commit error: input/output error")
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fault.E(fault.Unknown, fault.Context{Op: "store.put"}, cause), "ERR internal error; the node's log has the details"},
		{&fault.Error{Class: fault.Unknown, Msg: "the node's store failed after a write error", Err: cause}, "ERR internal error: the node's store failed after a write error"},
		{fault.E(fault.Transient, fault.Context{Op: "store.put"}, cause), "TRYAGAIN Service Unavailable"},
		{&fault.Error{Class: fault.Exhausted, Msg: "disk nearly full", Err: cause}, "TRYAGAIN disk nearly full"},
	} {
		if msg, _ := errorReply(tc.err); msg != tc.want {
			t.Errorf("errorReply(%v) = %q, want %q", tc.err, msg, tc.want)
		}
	}
}
