package backend

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// Object format, version 1:
//
//	4 bytes  magic "CRNO"
//	byte     format (1)
//	uvarint  tenant length, tenant
//	uvarint  key length, key
//	uvarint  version length, version (doc.Version.AppendBinary)
//	uvarint  body length
//	32 bytes checksum: SHA-256 of every header byte before it, then the body
//	body
//
// The checksum covers the header too, so a flipped bit in the version (which
// would still decode) is caught; the body length makes truncation an exact
// diagnosis rather than a checksum mismatch. The version's own content hash
// covers the body alone, and is checked as well: a writer bug that paired a
// version with the wrong body is corruption, not a valid object.
const (
	magic        = "CRNO"
	formatV1     = 1
	ChecksumSize = sha256.Size // bytes of checksum, the last field of the header
	// MaxObjectSize bounds what a backend reads back for one object: far
	// above the document size limit, low enough that a garbage length
	// cannot make a reader allocate without bound.
	MaxObjectSize = 64 << 20
)

// Header is an object's header, decoded.
type Header struct {
	Tenant   string
	Key      string
	Version  doc.Version
	BodyLen  int
	Checksum [ChecksumSize]byte
	Len      int // bytes of header before the body
}

// ETag is the ETag that the mem and fs backends give an object: the first
// 16 bytes of its checksum, in hex. It is a function of the object's bytes,
// so two writes of the same version produce the same ETag.
func (h *Header) ETag() string { return hex.EncodeToString(h.Checksum[:16]) }

// ETagOf returns the mem/fs ETag of a whole stored object: from its header
// or, when the header is damaged, from all its bytes (prefixed "x", which
// no header ETag has), so a damaged object still has an ETag and it changes
// when the object is replaced.
func ETagOf(raw []byte) string {
	if h, err := ParseHeader(raw); err == nil {
		return h.ETag()
	}
	sum := sha256.Sum256(raw)
	return "x" + hex.EncodeToString(sum[:16])
}

// EncodeObject returns the stored form of a version and its body.
func EncodeObject(tenant, key string, v *doc.Version, body []byte) []byte {
	var vb [128]byte
	ver := v.AppendBinary(vb[:0])
	b := make([]byte, 0, len(magic)+1+3*binary.MaxVarintLen64+len(tenant)+len(key)+len(ver)+ChecksumSize+len(body))
	b = append(b, magic...)
	b = append(b, formatV1)
	b = appendString(b, tenant)
	b = appendString(b, key)
	b = appendString(b, string(ver))
	b = binary.AppendUvarint(b, uint64(len(body)))
	h := sha256.New()
	h.Write(b)
	h.Write(body)
	b = h.Sum(b)
	return append(b, body...)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// errShort is returned by ParseHeader when b ends inside the header.
type errShort struct{ what string }

func (e *errShort) Error() string { return "truncated " + e.what }

// IsShortHeader reports whether err (from ParseHeader) means that b ended
// inside the header, so a reader that read a prefix should read more.
func IsShortHeader(err error) bool {
	var es *errShort
	return errors.As(err, &es)
}

func corrupt(msg string, cause error) error {
	return &fault.Error{Class: fault.Corruption, Msg: msg, Err: cause}
}

// ParseHeader decodes the header at the start of b, which may be a prefix
// of the object. The error is fault.Corruption; when b ends inside the
// header, it also satisfies IsShortHeader.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	r := b
	if len(r) < len(magic)+1 {
		return h, corrupt("object header", &errShort{"magic"})
	}
	if string(r[:len(magic)]) != magic {
		return h, corrupt(fmt.Sprintf("not a cairn object (magic %q)", r[:len(magic)]), nil)
	}
	if r[len(magic)] != formatV1 {
		return h, corrupt(fmt.Sprintf("unknown object format %d", r[len(magic)]), nil)
	}
	r = r[len(magic)+1:]
	field := func(what string, max uint64) ([]byte, error) {
		n, w := binary.Uvarint(r)
		if w == 0 {
			return nil, corrupt("object header", &errShort{what + " length"})
		}
		if w < 0 || n > max {
			return nil, corrupt(fmt.Sprintf("object header: bad %s length", what), nil)
		}
		r = r[w:]
		if uint64(len(r)) < n {
			return nil, corrupt("object header", &errShort{what})
		}
		s := r[:n]
		r = r[n:]
		return s, nil
	}
	t, err := field("tenant", doc.MaxTenantLen)
	if err != nil {
		return h, err
	}
	k, err := field("key", doc.MaxKeyLen)
	if err != nil {
		return h, err
	}
	vb, err := field("version", MaxObjectSize)
	if err != nil {
		return h, err
	}
	if err := h.Version.UnmarshalBinary(vb); err != nil {
		return h, corrupt("object header: version", err)
	}
	n, w := binary.Uvarint(r)
	if w == 0 {
		return h, corrupt("object header", &errShort{"body length"})
	}
	if w < 0 || n > MaxObjectSize {
		return h, corrupt("object header: bad body length", nil)
	}
	r = r[w:]
	if len(r) < ChecksumSize {
		return h, corrupt("object header", &errShort{"checksum"})
	}
	copy(h.Checksum[:], r)
	r = r[ChecksumSize:]
	h.Tenant, h.Key, h.BodyLen = string(t), string(k), int(n)
	h.Len = len(b) - len(r)
	return h, nil
}

// DecodeObject verifies raw, the whole stored object, and returns its
// header and body (a subslice of raw). Every failure is fault.Corruption:
// bad or truncated header, body shorter or longer than the header says,
// checksum mismatch, a version hash that does not match the body, or a
// tombstone with a body.
func DecodeObject(raw []byte) (Header, []byte, error) {
	h, err := ParseHeader(raw)
	if err != nil {
		return h, nil, err
	}
	body := raw[h.Len:]
	switch {
	case len(body) < h.BodyLen:
		return h, nil, corrupt(fmt.Sprintf("truncated object: body has %d of %d bytes", len(body), h.BodyLen), nil)
	case len(body) > h.BodyLen:
		return h, nil, corrupt(fmt.Sprintf("object has %d bytes after its %d-byte body", len(body)-h.BodyLen, h.BodyLen), nil)
	}
	sum := sha256.New()
	sum.Write(raw[:h.Len-ChecksumSize])
	sum.Write(body)
	if !bytes.Equal(sum.Sum(nil), h.Checksum[:]) {
		return h, nil, corrupt("object checksum mismatch", nil)
	}
	if h.Version.Hash != doc.HashBody(body) {
		return h, nil, corrupt("the version's content hash does not match the body", nil)
	}
	if h.Version.Tombstone && len(body) > 0 {
		return h, nil, corrupt("tombstone with a body", nil)
	}
	return h, body, nil
}

// VerifyObject decodes raw as the object stored for (tenant, key) and
// returns it with etag. An object that verifies but names another tenant
// or key (misplaced, or a name collision) is corruption too. A failure
// has a [Damaged] holding raw in its chain.
func VerifyObject(raw []byte, tenant, key, etag string) (*Object, error) {
	h, body, err := DecodeObject(raw)
	if err == nil && (h.Tenant != tenant || h.Key != key) {
		err = corrupt(fmt.Sprintf("object holds %s/%q, not the key it is stored under", h.Tenant, h.Key), nil)
	}
	if err != nil {
		return nil, &Damaged{Raw: raw[:min(len(raw), MaxDamagedRaw)], Size: int64(len(raw)), Err: err}
	}
	if etag == "" {
		etag = h.ETag()
	}
	return &Object{
		Entry:   Entry{Key: key, ETag: etag, Size: int64(len(raw))},
		Version: h.Version,
		Body:    body,
	}, nil
}

// MaxDamagedRaw bounds the bytes of a damaged object that a [Damaged]
// error keeps: enough to inspect any document-sized object, small enough
// that a garbage object cannot make quarantine hold megabytes per key.
const MaxDamagedRaw = 1 << 20

// Damaged is in the chain of a Get error for an object that was read but
// failed verification: it carries the stored bytes (at most MaxDamagedRaw
// of them; Size is the full length), so a caller can quarantine what it
// found before repairing it. Get never returns the bytes as an Object.
type Damaged struct {
	Raw  []byte
	Size int64
	Err  error // the verification failure (fault.Corruption)
}

func (d *Damaged) Error() string { return d.Err.Error() }
func (d *Damaged) Unwrap() error { return d.Err }

// DamagedOf returns the Damaged in err's chain, or nil.
func DamagedOf(err error) *Damaged {
	var d *Damaged
	if errors.As(err, &d) {
		return d
	}
	return nil
}
