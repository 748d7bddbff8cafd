package backend

import (
	"context"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// Backend stores self-describing objects named by (tenant, key). All methods
// are safe for concurrent use. Every error is a fault error with Op, Backend,
// Tenant and Key set (Key is empty for List).
type Backend interface {
	// Name is the backend's configured name, as it appears in errors,
	// metrics and logs.
	Name() string

	// List returns up to opts.Limit entries of tenant whose keys start with
	// opts.Prefix and are greater than opts.StartAfter, in ascending byte
	// order of the key. Page.More is true when there may be more entries;
	// the next page starts after the last entry's key. Tombstones are listed.
	List(ctx context.Context, tenant string, opts ListOptions) (Page, error)

	// Get returns the object with its version and ETag, after verifying its
	// checksum. Outcomes: the object; fault.NotFound when there is none;
	// fault.Corruption when it fails verification (hash mismatch,
	// truncation, bad header, or it names another tenant/key).
	Get(ctx context.Context, tenant, key string) (*Object, error)

	// Stat returns the entry for one key without reading or verifying the
	// body: fault.NotFound when there is none.
	Stat(ctx context.Context, tenant, key string) (Entry, error)

	// Put stores body under (tenant, key) with version v, replacing what is
	// there, if pre holds; it returns the new object's ETag. Outcomes: the
	// ETag; fault.PreconditionFailed when pre does not hold (nothing was
	// written); fault.Invalid for a bad tenant or key, or a version whose
	// hash does not match body (or a tombstone with a body). A tombstone is
	// written with Put, not Delete.
	Put(ctx context.Context, tenant, key string, v doc.Version, body []byte, pre Precondition) (etag string, err error)

	// Delete removes the object, if pre holds: the physical removal that
	// collects a tombstone, not a document delete. Outcomes: nil when the
	// object is gone (deleting a missing object without a precondition is
	// not an error); fault.PreconditionFailed when pre.IfMatch names an
	// ETag the object does not have, or the object is missing;
	// fault.Invalid for pre.IfNoneMatch, which means nothing for a delete.
	Delete(ctx context.Context, tenant, key string, pre Precondition) error
}

// ListOptions selects a page of a listing. The zero value lists from the
// first key with DefaultLimit.
type ListOptions struct {
	Prefix     string // only keys starting with it
	StartAfter string // only keys greater than it (the cursor)
	Limit      int    // at most this many entries; ≤ 0 means DefaultLimit
}

// DefaultLimit is the page size when ListOptions.Limit is not set; it is
// S3's maximum page size.
const DefaultLimit = 1000

// Page is one page of a listing.
type Page struct {
	Entries []Entry
	More    bool // there may be entries after the last one
}

// Entry describes a stored object without its body.
type Entry struct {
	Key  string
	ETag string // opaque, unquoted; compare with ==
	Size int64  // of the stored object, header included
}

// Object is a stored object read back and verified.
type Object struct {
	Entry
	Version doc.Version
	Body    []byte // empty for a tombstone
}

// Precondition is a write's condition on the object currently stored. The
// zero value places none. It is about the stored object, not the document:
// a tombstone is an object, so IfNoneMatch fails when a tombstone is there.
type Precondition struct {
	// IfMatch, when not empty, is the ETag the current object must have.
	IfMatch string
	// IfNoneMatch means create-only: no object may exist.
	IfNoneMatch bool
}

// IsZero reports whether p places no condition.
func (p Precondition) IsZero() bool { return p.IfMatch == "" && !p.IfNoneMatch }

// Check evaluates p against the current object's ETag (exists is false when
// there is none). The error is fault.PreconditionFailed with a message
// saying which condition failed, or fault.Invalid when both are set.
func (p Precondition) Check(etag string, exists bool) error {
	switch {
	case p.IfMatch != "" && p.IfNoneMatch:
		return fault.New(fault.Invalid, fault.Context{}, "precondition: both if-match and if-none-match")
	case p.IfMatch != "" && !exists:
		return fault.New(fault.PreconditionFailed, fault.Context{}, "if-match "+p.IfMatch+": no object")
	case p.IfMatch != "" && etag != p.IfMatch:
		return fault.New(fault.PreconditionFailed, fault.Context{}, "if-match "+p.IfMatch+": the object's ETag is "+etag)
	case p.IfNoneMatch && exists:
		return fault.New(fault.PreconditionFailed, fault.Context{}, "if-none-match: the object exists (ETag "+etag+")")
	}
	return nil
}

// Corrupter is an optional capability for tests and fault injection:
// Corrupt replaces the stored bytes of an existing object with f(bytes),
// bypassing every check, so that the conformance suite can prove that
// damage is detected. It returns fault.NotFound when there is no object.
type Corrupter interface {
	Corrupt(ctx context.Context, tenant, key string, f func(raw []byte) []byte) error
}

// TenantLister is an optional capability: Tenants lists the tenants that
// have objects in the backend, sorted, so that a node with an empty store
// learns which tenants to restore. A tenant whose objects were all
// removed may still be listed. Errors are fault errors with Op OpTenants.
type TenantLister interface {
	Tenants(ctx context.Context) ([]string, error)
}

// ListTenants lists b's tenants, looking through wrappers that have an
// Unwrap() Backend method (the chaos simulator) for a [TenantLister].
// ok is false when no backend in the chain can list its tenants.
func ListTenants(ctx context.Context, b Backend) (tenants []string, ok bool, err error) {
	for b != nil {
		if tl, is := b.(TenantLister); is {
			ts, err := tl.Tenants(ctx)
			return ts, true, err
		}
		u, is := b.(interface{ Unwrap() Backend })
		if !is {
			break
		}
		b = u.Unwrap()
	}
	return nil, false, nil
}

// CheckNames validates a tenant and key as every backend does before it
// touches storage; the errors are fault.Invalid.
func CheckNames(tenant, key string) error {
	if err := doc.ValidateTenant(tenant); err != nil {
		return err
	}
	return doc.ValidateKey(key)
}

// CheckTenant validates a tenant for List.
func CheckTenant(tenant string) error { return doc.ValidateTenant(tenant) }

// CheckPut validates Put's arguments: names, and that v describes body.
func CheckPut(tenant, key string, v *doc.Version, body []byte) error {
	if err := CheckNames(tenant, key); err != nil {
		return err
	}
	if v.Tombstone && len(body) > 0 {
		return fault.New(fault.Invalid, fault.Context{}, "a tombstone has no body")
	}
	if v.Hash != doc.HashBody(body) {
		return fault.New(fault.Invalid, fault.Context{}, "the version's content hash does not match the body")
	}
	return nil
}

// Ctx is the error context of one operation on one backend.
func Ctx(op, backend, tenant, key string) fault.Context {
	return fault.Context{Op: op, Backend: backend, Tenant: tenant, Key: key}
}

// Operation names, as they appear in fault.Context.Op.
const (
	OpList    = "backend.list"
	OpGet     = "backend.get"
	OpStat    = "backend.stat"
	OpPut     = "backend.put"
	OpDelete  = "backend.delete"
	OpTenants = "backend.tenants"
)
