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
// Both fs and s3 name an object by its escaped key ([EscapeKey]): prefix-free
// codes that increase with the byte ('.' and '/' become ".2E" and ".2F";
// '~' and every byte from 0x7F become "~XX"; other bytes stay), so byte
// order of the names is byte order of the keys, and an escaped key never
// contains '/' and is never "." or "..". With tenants validated as
// [a-z0-9][a-z0-9-]* no name can leave its tenant's directory or prefix.
// The result is ASCII, valid as an S3 name and on any file system that is
// case-sensitive.
//
// s3 names an object by [KeyPath]: the escaped key cut into 200-byte path
// components, all but the last marked as directories with a trailing '+'
// (servers that store objects as files need components under 255 bytes);
// cutting every key at the same offsets compares the same bytes (a file
// name is at most 200 bytes, a directory name 201, so a key that is a
// prefix of longer ones sorts first). fs keeps a tenant's objects in leaf
// directories of bounded size, each file named by its escaped key (or a
// hash of a key too long for a file name), and lists through an index of
// the leaves (see package fs).
//
// # Sharp edges
//
// S3 object names are at most 1024 bytes, and a 1024-byte key escapes to as
// much as 3072: no order-preserving injective naming fits. The s3 backend
// hashes the rare keys whose escape exceeds about 800 bytes (see KeyPath);
// they sit in one directory per shared 800-byte escaped prefix, in the
// right place relative to every other key, and List sorts each such group
// by the keys in the objects' headers (a ranged read of each header),
// holding the group in memory. The fs backend hashes the names of keys
// whose escape exceeds 240 bytes inside their leaf, and sorts each leaf
// as it lists it.
//
// ETags are opaque and per backend: the mem and fs ETag is derived from the
// object's checksum (equal bytes, equal ETag), the s3 ETag is the server's.
// Compare them only with ETags from the same backend.
//
// A precondition is about the stored object: a tombstone is an object, so
// create-only fails on it; replacing a tombstone takes if-match.
//
// # Concurrency
//
// Every Backend method is safe for concurrent use. A Get returns the
// object of one moment (never a mix of two writes); a List page is not a
// snapshot: objects written or deleted during a listing may or may not be
// in it.
package backend
