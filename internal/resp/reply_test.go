package resp

import (
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
