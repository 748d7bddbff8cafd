package doc

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
)

// Hash is the SHA-256 of a document body.
type Hash [sha256.Size]byte

// HashBody returns the content hash of body.
func HashBody(body []byte) Hash { return sha256.Sum256(body) }

// ID identifies a version: the first 16 bytes of the SHA-256 of its binary
// encoding. Two nodes holding the same version compute the same ID, so it
// serves as the ETag everywhere.
type ID [16]byte

// IsZero reports whether id is the zero ID (no parent).
func (id ID) IsZero() bool { return id == ID{} }

// String is the hex form.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Version is the metadata of one version of a document.
type Version struct {
	Vector    Vector
	HLC       Timestamp // when it was written, for last-writer-wins ties
	Writer    uint64    // the incarnation that wrote it, the second tie breaker
	Hash      Hash      // of the body; the empty body's hash for tombstones
	Parent    ID        // the version it was derived from; zero for a first write
	Tombstone bool
	// Siblings marks a sibling set: the body is not a document but the
	// concurrent versions kept for a person to resolve ([MakeSiblings],
	// [DecodeSiblings]). Never set together with Tombstone.
	Siblings bool
}

// ID returns the version's identifier.
func (v *Version) ID() ID {
	var buf [128]byte
	sum := sha256.Sum256(v.AppendBinary(buf[:0]))
	return ID(sum[:16])
}

// ETag returns the strong HTTP entity tag for the version, quotes included.
func (v *Version) ETag() string { return v.ID().ETag() }

// ETag is the strong HTTP entity tag of the version with this ID, quotes
// included: callers that already hold the ID need not hash the version again.
func (id ID) ETag() string { return `"` + id.String() + `"` }

// Compare returns the causal relation of v to o by their vectors.
func (v *Version) Compare(o *Version) Ordering { return Compare(v.Vector, o.Vector) }

// Wins reports whether v beats o under last-writer-wins: the higher HLC, then
// the higher writer, then the higher content hash, so that every node picks
// the same winner for any pair.
func (v *Version) Wins(o *Version) bool {
	if v.HLC != o.HLC {
		return v.HLC > o.HLC
	}
	if v.Writer != o.Writer {
		return v.Writer > o.Writer
	}
	return string(v.Hash[:]) > string(o.Hash[:])
}

// Encoding, version 1:
//
//	byte     format (1)
//	byte     flags: bit 0 tombstone, bit 1 has parent, bit 2 sibling set
//	uvarint  HLC
//	uvarint  writer
//	32 bytes content hash
//	16 bytes parent ID, only if flag bit 1
//	uvarint  number of vector entries, then for each:
//	  8 bytes replica (big endian), uvarint counter
//
// Incarnations are random 64-bit numbers, so they are stored fixed-width;
// counters and timestamps are small or slowly growing, so they are varints.
const (
	formatV1      = 1
	flagTombstone = 1 << 0
	flagParent    = 1 << 1
	flagSiblings  = 1 << 2
	maxDots       = 1 << 16 // more nodes than any cluster has; bounds decoding
)

// ErrBadVersion is wrapped by every decoding error.
var ErrBadVersion = errors.New("doc: malformed version encoding")

// AppendBinary appends the encoding of v to b.
func (v *Version) AppendBinary(b []byte) []byte {
	var flags byte
	if v.Tombstone {
		flags |= flagTombstone
	}
	if !v.Parent.IsZero() {
		flags |= flagParent
	}
	if v.Siblings {
		flags |= flagSiblings
	}
	b = append(b, formatV1, flags)
	b = binary.AppendUvarint(b, uint64(v.HLC))
	b = binary.AppendUvarint(b, v.Writer)
	b = append(b, v.Hash[:]...)
	if flags&flagParent != 0 {
		b = append(b, v.Parent[:]...)
	}
	b = binary.AppendUvarint(b, uint64(len(v.Vector)))
	for _, d := range v.Vector {
		b = binary.BigEndian.AppendUint64(b, d.Replica)
		b = binary.AppendUvarint(b, d.Counter)
	}
	return b
}

// MarshalBinary implements encoding.BinaryMarshaler.
func (v *Version) MarshalBinary() ([]byte, error) { return v.AppendBinary(nil), nil }

// UnmarshalBinary implements encoding.BinaryUnmarshaler. It rejects trailing
// bytes; use [DecodeVersion] to read a version that is followed by more data.
func (v *Version) UnmarshalBinary(b []byte) error {
	n, err := v.decode(b)
	if err == nil && n != len(b) {
		err = fmt.Errorf("%w: %d trailing bytes", ErrBadVersion, len(b)-n)
	}
	return err
}

// DecodeVersion decodes a version at the start of b and returns it with the
// number of bytes it used.
func DecodeVersion(b []byte) (Version, int, error) {
	var v Version
	n, err := v.decode(b)
	return v, n, err
}

func (v *Version) decode(b []byte) (int, error) {
	d := decoder{b: b}
	if f := d.byte(); f != formatV1 && d.err == nil {
		return 0, fmt.Errorf("%w: unknown format %d", ErrBadVersion, f)
	}
	flags := d.byte()
	if flags&^(flagTombstone|flagParent|flagSiblings) != 0 && d.err == nil {
		return 0, fmt.Errorf("%w: unknown flags %#x", ErrBadVersion, flags)
	}
	if flags&flagTombstone != 0 && flags&flagSiblings != 0 && d.err == nil {
		return 0, fmt.Errorf("%w: a tombstone cannot be a sibling set", ErrBadVersion)
	}
	*v = Version{Tombstone: flags&flagTombstone != 0, Siblings: flags&flagSiblings != 0}
	v.HLC = Timestamp(d.uvarint())
	v.Writer = d.uvarint()
	copy(v.Hash[:], d.bytes(len(v.Hash)))
	if flags&flagParent != 0 {
		copy(v.Parent[:], d.bytes(len(v.Parent)))
		if v.Parent.IsZero() && d.err == nil {
			return 0, fmt.Errorf("%w: zero parent with parent flag", ErrBadVersion)
		}
	}
	n := d.uvarint()
	if n > maxDots || (d.err == nil && n > uint64(len(d.b))/9) {
		return 0, fmt.Errorf("%w: %d vector entries in %d bytes", ErrBadVersion, n, len(d.b))
	}
	if n > 0 {
		v.Vector = make(Vector, n)
	}
	for i := range v.Vector {
		v.Vector[i].Replica = binary.BigEndian.Uint64(d.bytes(8))
		v.Vector[i].Counter = d.uvarint()
	}
	if d.err != nil {
		return 0, d.err
	}
	if !v.Vector.valid() {
		return 0, fmt.Errorf("%w: vector not sorted, duplicated or with a zero counter", ErrBadVersion)
	}
	return len(b) - len(d.b), nil
}

// decoder reads from b, remembering the first error; reads after an error
// return zero values, so decode checks once at the end.
type decoder struct {
	b   []byte
	err error
}

var zero8 [8]byte

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated %s", ErrBadVersion, what)
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail("header")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	x, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	if n > 1 && d.b[n-1] == 0 {
		// An overlong varint decodes to the same number; refusing it keeps
		// every version to exactly one encoding.
		if d.err == nil {
			d.err = fmt.Errorf("%w: non-minimal varint", ErrBadVersion)
		}
		d.b = nil
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *decoder) bytes(n int) []byte {
	if len(d.b) < n {
		d.fail("field")
		return zero8[:min(n, 8)]
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

// Derive returns the version written by replica at ts on top of parent (nil
// for a first write): parent's vector with replica's counter incremented, and
// parent's ID as its Parent.
func Derive(parent *Version, replica uint64, ts Timestamp, body []byte, tombstone bool) Version {
	v := Version{HLC: ts, Writer: replica, Tombstone: tombstone}
	if tombstone {
		body = nil
	}
	v.Hash = HashBody(body)
	if parent != nil {
		v.Vector = parent.Vector.Increment(replica)
		v.Parent = parent.ID()
	} else {
		v.Vector = Vector{{Replica: replica, Counter: 1}}
	}
	return v
}
