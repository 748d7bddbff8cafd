// Package pack is the format of catch-up packs: a tenant's documents as
// the backend held them, in key order, in a few large blobs, so that an
// empty node restores a tenant with a few sequential reads instead of one
// read per document. The design (who writes packs, when, how a node
// restores from one, retention) is in docs/design/replication.md,
// "Catch-up packs".
//
// # Use
//
// A pack is a generation of parts and a manifest. A [PartWriter] gathers
// entries (key, version, the backend's ETag of the object, body) in
// ascending key order until the part is full; [PartWriter.Finish] returns
// its bytes, checksummed. [DecodePart] verifies a part and yields its
// entries; [Manifest] names the parts and is encoded with
// [Manifest.Encode] and read back with [DecodeManifest]. Names of the blobs
// come from [Prefix], [PartName] and [ManifestName].
//
// Both formats begin with a magic and a format version and end with a
// CRC-32C (Castagnoli) of everything before it; a reader that finds a
// wrong magic, an unknown version, a checksum mismatch, a truncation or a
// malformed entry returns fault.Corruption, and never a partial result.
//
// # Concurrency
//
// A PartWriter belongs to one goroutine. The functions are pure.
//
// # Sharp edges
//
//   - The entries DecodePart yields share the part's bytes: a caller that
//     keeps a key or body past the part must not modify the part.
//   - A part is held in memory whole (its size is the writer's limit,
//     MaxPart at most), both when written and when read.
package pack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// Entry is one document of a pack: its version, the ETag of the backend
// object that held it when the pack was written, and its body (none for a
// tombstone).
type Entry struct {
	Key     string
	Version doc.Version
	ETag    string
	Body    []byte
}

const (
	partMagic     = "CAIRNPKP"
	manifestMagic = "CAIRNPKM"
	// Format is the format version of parts and manifests written.
	Format = 1
	// MaxPart bounds a part's size, so that a reader can refuse a part it
	// would have to hold in memory before verifying it.
	MaxPart = 64 << 20
	// maxETag bounds an entry's ETag (S3's are 32–70 bytes).
	maxETag = 1024
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// PartWriter builds one part. The zero value is not usable: see NewPartWriter.
type PartWriter struct {
	buf     []byte
	n       int
	limit   int
	lastKey string
}

// NewPartWriter returns a writer of a part of about limit bytes: Add
// reports the part full once it holds limit bytes or more (at most
// MaxPart, so one entry may take it past limit).
func NewPartWriter(limit int) *PartWriter {
	limit = min(max(limit, 1), MaxPart)
	w := &PartWriter{limit: limit, buf: make([]byte, 0, min(limit+limit/8, MaxPart))}
	w.Reset()
	return w
}

// Reset empties w for the next part, keeping its buffer.
func (w *PartWriter) Reset() {
	w.buf = append(append(w.buf[:0], partMagic...), Format)
	w.n, w.lastKey = 0, ""
}

// Add appends e, which must sort after the previous entry; it reports
// whether the part is full. It refuses (fault.Invalid) an entry out of
// order, one whose body does not fit MaxPart, or a tombstone with a body.
func (w *PartWriter) Add(e *Entry) (full bool, err error) {
	switch {
	case w.n > 0 && e.Key <= w.lastKey:
		return false, fault.New(fault.Invalid, fault.Context{Key: e.Key}, "pack: entry out of key order")
	case e.Version.Tombstone && len(e.Body) > 0:
		return false, fault.New(fault.Invalid, fault.Context{Key: e.Key}, "pack: a tombstone has a body")
	case len(e.ETag) > maxETag:
		return false, fault.New(fault.Invalid, fault.Context{Key: e.Key}, "pack: ETag too long")
	case len(w.buf)+len(e.Key)+len(e.ETag)+len(e.Body)+512 > MaxPart:
		return false, fault.New(fault.Invalid, fault.Context{Key: e.Key}, "pack: entry does not fit a part")
	}
	w.buf = binary.AppendUvarint(w.buf, uint64(len(e.Key)))
	w.buf = append(w.buf, e.Key...)
	w.buf = e.Version.AppendBinary(w.buf)
	w.buf = binary.AppendUvarint(w.buf, uint64(len(e.ETag)))
	w.buf = append(w.buf, e.ETag...)
	w.buf = binary.AppendUvarint(w.buf, uint64(len(e.Body)))
	w.buf = append(w.buf, e.Body...)
	w.n++
	w.lastKey = e.Key
	return len(w.buf) >= w.limit, nil
}

// Len is the number of entries added since the last Reset.
func (w *PartWriter) Len() int { return w.n }

// LastKey is the key of the last entry added ("" if none).
func (w *PartWriter) LastKey() string { return w.lastKey }

// Finish returns the part's bytes with the end marker and checksum. They
// share w's buffer: use them before the next Reset.
func (w *PartWriter) Finish() []byte {
	w.buf = binary.AppendUvarint(w.buf, 0) // an empty key ends the entries
	return binary.LittleEndian.AppendUint32(w.buf, crc32.Checksum(w.buf, castagnoli))
}

// errCorrupt wraps a format error as fault.Corruption.
func errCorrupt(what string, err error) error {
	return fault.E(fault.Corruption, fault.Context{Op: "pack.decode"}, fmt.Errorf("pack: %s: %w", what, err))
}

// verify checks magic, format and checksum, and returns the payload
// between the header and the checksum.
func verify(what, magic string, b []byte) ([]byte, error) {
	if len(b) < len(magic)+1+4 {
		return nil, errCorrupt(what, errors.New("truncated"))
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if string(b[:len(magic)]) != magic {
		return nil, errCorrupt(what, errors.New("bad magic"))
	}
	if b[len(magic)] != Format {
		return nil, errCorrupt(what, fmt.Errorf("unknown format %d", b[len(magic)]))
	}
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, errCorrupt(what, errors.New("checksum mismatch"))
	}
	return body[len(magic)+1:], nil
}

// DecodePart verifies part and calls f with each entry in order, stopping
// at f's first error (returned as is). The entries share part's bytes.
// Outcomes: nil; fault.Corruption for anything malformed (no entry is
// yielded then: the whole part is verified before the first).
func DecodePart(part []byte, f func(*Entry) error) error {
	if len(part) > MaxPart {
		return errCorrupt("part", fmt.Errorf("%d bytes, more than %d", len(part), MaxPart))
	}
	payload, err := verify("part", partMagic, part)
	if err != nil {
		return err
	}
	// Two passes: the first checks every entry, so that a malformed part
	// yields nothing rather than a prefix.
	for _, yield := range []bool{false, true} {
		if err := decodeEntries(payload, yield, f); err != nil {
			return err
		}
	}
	return nil
}

func decodeEntries(b []byte, yield bool, f func(*Entry) error) error {
	var e Entry
	last := ""
	for i := 0; ; i++ {
		key, rest, err := field(b)
		if err != nil {
			return errCorrupt(fmt.Sprintf("entry %d key", i), err)
		}
		if len(key) == 0 {
			if len(rest) != 0 {
				return errCorrupt("part", errors.New("bytes after the last entry"))
			}
			return nil
		}
		e.Key = string(key)
		if err := doc.ValidateKey(e.Key); err != nil {
			return errCorrupt(fmt.Sprintf("entry %d", i), err)
		}
		if i > 0 && e.Key <= last {
			return errCorrupt(fmt.Sprintf("entry %d", i), errors.New("keys out of order"))
		}
		last = e.Key
		v, n, err := doc.DecodeVersion(rest)
		if err != nil {
			return errCorrupt(fmt.Sprintf("entry %d version", i), err)
		}
		e.Version = v
		etag, rest, err := field(rest[n:])
		if err != nil || len(etag) > maxETag {
			return errCorrupt(fmt.Sprintf("entry %d etag", i), errors.Join(err, errors.New("bad etag")))
		}
		e.ETag = string(etag)
		body, rest2, err := field(rest)
		if err != nil {
			return errCorrupt(fmt.Sprintf("entry %d body", i), err)
		}
		if e.Version.Tombstone && len(body) > 0 {
			return errCorrupt(fmt.Sprintf("entry %d", i), errors.New("a tombstone with a body"))
		}
		e.Body, b = body, rest2
		if yield {
			if err := f(&e); err != nil {
				return err
			}
		}
	}
}

// field reads a uvarint length and that many bytes.
func field(b []byte) (v, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, nil, errors.New("bad length")
	}
	b = b[k:]
	if n > uint64(len(b)) {
		return nil, nil, errors.New("truncated")
	}
	return b[:n], b[n:], nil
}
