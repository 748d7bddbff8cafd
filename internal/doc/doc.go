// Package doc is cairn's data model: tenant ids, document keys, versions and
// the hybrid logical clock that timestamps them.
//
// # Names
//
// A tenant id matches [a-z0-9][a-z0-9-]{0,62}. A key is 1–1024 bytes of
// valid UTF-8 with no NUL and no control characters (C0, DEL, C1). Both are
// checked by [ValidateTenant] and [ValidateKey], whose errors are of class
// fault.Invalid and name the offending byte.
//
// # Versions
//
// Every stored document (and tombstone) has a [Version]: a version vector
// keyed by node incarnation, a hybrid logical clock timestamp and the writer
// (for last-writer-wins tie breaks), the SHA-256 of the body, the tombstone
// flag, and the [ID] of the version it was derived from, so the reconciler
// can find a common ancestor for a three-way merge. Versions encode to a
// compact, self-delimiting binary form ([Version.AppendBinary]) that is stored
// locally and in every remote object header.
//
// A version may be a sibling set ([MakeSiblings]): concurrent versions kept
// for a person to resolve, whose body holds them all; its vector is their
// pointwise maximum, and it is a pure function of them. A document with
// open siblings is answered with a [ConflictError] naming them.
//
// Causality comes from the vector alone ([Compare]): one version dominates,
// is dominated by, equals, or is concurrent with another. The HLC only breaks
// ties between concurrent versions.
//
// # Sharp edges
//
// Vectors are values: the methods that change one return a new slice and never
// modify the receiver, so a Version may be shared between goroutines. The
// incarnation that keys a vector entry is random and never reused: a node that
// lost its disk starts a new one, so its old counters cannot be replayed.
package doc
