// Package backend is the interface to cairn's remote storage: where the
// uploader and the reconciler replicate documents. It defines [Backend],
// the stored object format, and the key naming that the implementations
// share. Implementations: mem (tests, with a fault hook), fs (a local
// directory), s3 (AWS S3 and S3-compatible servers); backendtest is the
// conformance suite every one of them runs.
//
// # Basics
//
// A backend holds one object per (tenant, key): Put (with a precondition),
// Get (verified body, version, ETag), Stat (ETag and size, no body),
// Delete (with a precondition) and List (a page of entries of one tenant,
// by key prefix, after a cursor). Writes take a [Precondition]: if-match
// an ETag, or if-none-match (create-only); the check and the write are one
// atomic step, also between processes. A document delete is a Put of a
// tombstone version; Delete is the physical removal that collects a
// tombstone once every backend has it. Backends are called through a
// resilience.Policy by their users; they do not retry themselves.
//
// # Ordering
//
// List returns keys in ascending byte order on every backend, and the
// cursor is the last key returned: the reconciler merge-joins a backend's
// listing with the local one and depends on it. Listing is per tenant, so
// tenants never interleave, and a tenant that is a prefix of another ("a",
// "a-b") does not see the other's keys.
//
// # Object format
//
// An object is a header, then the body (see format.go): magic "CRNO",
// format 1, tenant, key, the doc.Version encoding, body length, and a
// SHA-256 checksum of the header and the body. Reads verify the checksum,
// the version's content hash and the tenant and key; any failure is a
// fault.Corruption error with the backend, tenant and key in its context,
// and, when the object was read, a [Damaged] in its chain holding the
// stored bytes (at most [MaxDamagedRaw]) so the reconciler can quarantine
// them before a repair. They are never returned as an Object.
//
// # Naming
//
// Both fs and s3 name an object by its escaped key ([EscapeKey]): codes that
// increase with the byte, so the names sort like the keys, contain no '/'
// and are never "." or "..". With tenants validated as [a-z0-9][a-z0-9-]*
// no name can leave its tenant's directory or prefix. s3 cuts the escaped
// key into path components ([KeyPath]); fs keeps a tenant's objects in
// leaf directories of bounded size listed through an index (package fs).
// naming.go says why each step preserves order.
//
// # Sharp edges
//
//   - S3 names are at most 1024 bytes and a 1024-byte key escapes to as
//     much as 3072, so s3 hashes the rare keys whose escape exceeds about
//     800 bytes, and fs those past 240 bytes; listing such a group costs a
//     read of each object's header, and the group is sorted in memory.
//   - ETags are opaque and per backend (mem and fs derive theirs from the
//     object's checksum, s3's is the server's): compare them only with
//     ETags from the same backend.
//   - A precondition is about the stored object: a tombstone is an object,
//     so create-only fails on it; replacing a tombstone takes if-match.
//
// # Blobs
//
// [Blobs] is an optional capability every shipped backend has: named
// objects outside the tenants' documents ("_cairn/<name>" on fs and s3),
// where replication keeps its change feed, packs and digests. Their bytes
// are opaque to the backend; their formats carry their own checksums.
//
// # Concurrency
//
// Every Backend method is safe for concurrent use. A Get returns the
// object of one moment (never a mix of two writes); a List page is not a
// snapshot: objects written or deleted during a listing may or may not be
// in it.
package backend
