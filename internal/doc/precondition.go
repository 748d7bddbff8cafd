package doc

import (
	"slices"

	"github.com/cairnstore/cairn/internal/fault"
)

// Precondition is a conditional write's requirement on the current version,
// in HTTP terms (RFC 9110 §13.1). The zero value always holds.
type Precondition struct {
	// IfMatch lists strong ETags (quotes included); the write proceeds only if
	// the current live version has one of them. "*" means "any live version".
	IfMatch []string
	// IfNoneMatch lists ETags the current version must not have; "*" means
	// "no live version may exist" (create-only).
	IfNoneMatch []string
}

// IsZero reports whether p places no condition.
func (p Precondition) IsZero() bool { return len(p.IfMatch) == 0 && len(p.IfNoneMatch) == 0 }

// Check evaluates p against the current version: etag is its ETag and live
// is false when there is none or it is a tombstone. The error is of class
// fault.PreconditionFailed and says which condition failed.
func (p Precondition) Check(etag string, live bool) error {
	if len(p.IfMatch) > 0 {
		ok := live && (slices.Contains(p.IfMatch, "*") || slices.Contains(p.IfMatch, etag))
		if !ok {
			msg := "If-Match: the document does not exist"
			if live {
				msg = "If-Match: the current ETag is " + etag
			}
			return fault.New(fault.PreconditionFailed, fault.Context{}, msg)
		}
	}
	if len(p.IfNoneMatch) > 0 && live {
		if slices.Contains(p.IfNoneMatch, "*") {
			return fault.New(fault.PreconditionFailed, fault.Context{}, "If-None-Match: *: the document already exists")
		}
		if slices.Contains(p.IfNoneMatch, etag) {
			return fault.New(fault.PreconditionFailed, fault.Context{}, "If-None-Match: the current ETag is "+etag)
		}
	}
	return nil
}
