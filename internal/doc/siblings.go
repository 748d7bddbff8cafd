package doc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cairnstore/cairn/internal/fault"
)

// Sibling is one version of a document kept in a sibling set, with its body
// (nil for a tombstone).
type Sibling struct {
	Version Version
	Body    []byte
}

// ErrBadSiblings is wrapped by every sibling-set decoding error.
var ErrBadSiblings = errors.New("doc: malformed sibling set")

// Sibling-set body, format 1:
//
//	byte     format (1)
//	uvarint  number of siblings (at least 2), then for each, last writer first:
//	  version (AppendBinary, self-delimiting)
//	  uvarint body length, body
const siblingsFormat = 1

// MakeSiblings returns the sibling set of members: a [Version] with Siblings
// set, and its body. It is a pure function of the set of members (their
// order and duplicates do not matter), so every node that keeps the same
// concurrent versions makes the same set, with the same ID:
//
//   - members dominated by another member are dropped (a newer version of
//     the same line replaces its ancestor), duplicates (by ID) are dropped;
//   - the rest are sorted by last-writer-wins, made total by ID, winner
//     first: a reader that must show one shows the same one everywhere;
//   - the vector is the pointwise maximum of the members' (it dominates
//     every member and nothing more); the HLC the largest; the writer and
//     the parent are the winner's. No node adds anything of its own.
//
// Errors (class fault.Invalid): a member that is itself a sibling set, a
// tombstone with a body, or fewer than two members left: one version alone
// is not a conflict.
func MakeSiblings(members []Sibling) (Version, []byte, error) {
	ms := make([]Sibling, 0, len(members))
	for _, m := range members {
		switch {
		case m.Version.Siblings:
			return Version{}, nil, fault.New(fault.Invalid, fault.Context{Op: "doc.siblings"}, "a sibling set cannot be a sibling")
		case m.Version.Tombstone && len(m.Body) > 0:
			return Version{}, nil, fault.New(fault.Invalid, fault.Context{Op: "doc.siblings"}, "a tombstone sibling has a body")
		}
		ms = append(ms, m)
	}
	ids := make([]ID, len(ms))
	for i := range ms {
		ids[i] = ms[i].Version.ID()
	}
	keep := ms[:0]
	kids := ids[:0]
	for i := range ms {
		if siblingRedundant(ms, ids, i) {
			continue
		}
		keep = append(keep, ms[i])
		kids = append(kids, ids[i])
	}
	if len(keep) < 2 {
		return Version{}, nil, fault.New(fault.Invalid, fault.Context{Op: "doc.siblings"},
			fmt.Sprintf("%d concurrent versions: a sibling set needs at least two", len(keep)))
	}
	order := make([]int, len(keep))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(i, j int) int {
		switch {
		case winsTotal(&keep[i].Version, kids[i], &keep[j].Version, kids[j]):
			return -1
		case winsTotal(&keep[j].Version, kids[j], &keep[i].Version, kids[i]):
			return 1
		}
		return 0
	})
	w := &keep[order[0]]
	v := Version{HLC: w.Version.HLC, Writer: w.Version.Writer, Parent: kids[order[0]], Siblings: true}
	size := 16
	for _, i := range order {
		m := &keep[i]
		v.Vector = v.Vector.Merge(m.Version.Vector)
		v.HLC = max(v.HLC, m.Version.HLC)
		size += 128 + len(m.Body)
	}
	body := make([]byte, 0, size)
	body = append(body, siblingsFormat)
	body = binary.AppendUvarint(body, uint64(len(keep)))
	for _, i := range order {
		m := &keep[i]
		b := m.Body
		if m.Version.Tombstone {
			b = nil
		}
		body = m.Version.AppendBinary(body)
		body = binary.AppendUvarint(body, uint64(len(b)))
		body = append(body, b...)
	}
	v.Hash = HashBody(body)
	return v, body, nil
}

// siblingRedundant reports whether member i is dominated by another member,
// or equals an earlier one.
func siblingRedundant(ms []Sibling, ids []ID, i int) bool {
	for j := range ms {
		if j == i {
			continue
		}
		if ids[j] == ids[i] {
			if j < i {
				return true
			}
			continue
		}
		if Compare(ms[i].Version.Vector, ms[j].Version.Vector) == Before {
			return true
		}
	}
	return false
}

// winsTotal is Wins made total by comparing IDs last.
func winsTotal(a *Version, aid ID, b *Version, bid ID) bool {
	if a.Wins(b) {
		return true
	}
	if b.Wins(a) {
		return false
	}
	return bytes.Compare(aid[:], bid[:]) > 0
}

// DecodeSiblings decodes a sibling-set body, last writer first. The bodies
// alias body. It checks the structure only: whether each sibling's body
// matches its hash is the caller's to check where it matters (the
// reconciler does; the set's own hash covers the whole body).
func DecodeSiblings(body []byte) ([]Sibling, error) {
	bad := func(format string, a ...any) ([]Sibling, error) {
		return nil, fmt.Errorf("%w: "+format, append([]any{ErrBadSiblings}, a...)...)
	}
	if len(body) < 1 || body[0] != siblingsFormat {
		return bad("unknown format")
	}
	n, w := binary.Uvarint(body[1:])
	rest := body[1+max(w, 0):]
	// Each sibling takes at least 40 bytes (a version holds a 32-byte hash).
	if w <= 0 || n < 2 || n > uint64(len(rest)/40) {
		return bad("count")
	}
	out := make([]Sibling, n)
	for i := range out {
		v, m, err := DecodeVersion(rest)
		if err != nil {
			return nil, fmt.Errorf("%w: sibling %d: %w", ErrBadSiblings, i, err)
		}
		if v.Siblings {
			return bad("sibling %d is a sibling set", i)
		}
		rest = rest[m:]
		l, k := binary.Uvarint(rest)
		if k <= 0 || l > uint64(len(rest)-k) {
			return bad("sibling %d body length", i)
		}
		rest = rest[k:]
		if v.Tombstone && l > 0 {
			return bad("tombstone sibling %d has a body", i)
		}
		out[i] = Sibling{Version: v}
		if !v.Tombstone {
			out[i].Body = rest[:l:l]
		}
		rest = rest[l:]
	}
	if len(rest) != 0 {
		return bad("%d trailing bytes", len(rest))
	}
	return out, nil
}

// SiblingsError is the cause of the fault.Conflict answered for a document
// with open siblings: reading it, or writing it without naming one of them
// (see [ConflictError]). errors.As finds it through the wrapping, so the
// HTTP layer can list the siblings.
type SiblingsError struct {
	ETag     string   // the sibling set's ETag
	Siblings []string // the siblings' ETags, last writer first
}

func (e *SiblingsError) Error() string {
	return fmt.Sprintf("%d siblings: %s", len(e.Siblings), strings.Join(e.Siblings, ", "))
}

// ConflictError returns the fault.Conflict error for the sibling set with
// ETag etag and body of tenant/key, for operation op. A body that does not
// decode gives a fault.Corruption error instead.
func ConflictError(op, tenant, key, etag string, body []byte) error {
	ctx := fault.Context{Op: op, Tenant: tenant, Key: key}
	sibs, err := DecodeSiblings(body)
	if err != nil {
		return fault.E(fault.Corruption, ctx, err)
	}
	se := &SiblingsError{ETag: etag, Siblings: make([]string, len(sibs))}
	for i := range sibs {
		se.Siblings[i] = sibs[i].Version.ETag()
	}
	return &fault.Error{Class: fault.Conflict, Context: ctx, Err: se, Msg: fmt.Sprintf(
		"the document has %d conflicting versions (siblings %s): resolve them through /conflicts, or write with If-Match naming one",
		len(sibs), strings.Join(se.Siblings, ", "))}
}
