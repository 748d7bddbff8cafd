package reconcile

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"sort"

	"github.com/cespare/xxhash/v2"
)

// Anti-entropy digests: a tenant's keys are cut into key ranges (segments)
// by a layout every node reads from the backend; each segment's digest is
// the XOR of entryHash(key, ETag) over the objects in it. XOR makes the
// digest mergeable: a writer XORs out the entry it replaced and XORs in the
// one it wrote, into its own node's delta, and the backend's digest is the
// XOR of every node's delta. docs/design/replication.md, "Anti-entropy
// digests", has the design and its failure cases.

// segmentKeys is the number of keys a layout puts in a segment: one listing
// page, so that a segment that differs costs about one List call.
const segmentKeys = 1000

// relayoutFactor: a segment listed with more than relayoutFactor ×
// segmentKeys objects makes the round that listed it lay the tenant out
// again (the tenant grew), as a hash table doubles.
const relayoutFactor = 8

// entryHash is a segment digest's term for one object. A listing gives only
// the key and the ETag, and the ETag names the object's bytes (its header,
// with the version, included), so the pair stands for the object.
func entryHash(key, etag string) uint64 {
	d := xxhash.New()
	_, _ = d.WriteString(key)
	_, _ = d.Write([]byte{0})
	_, _ = d.WriteString(etag)
	return d.Sum64()
}

// layout is a tenant's segmentation. Segment i holds the keys k with
// bounds[i-1] < k ≤ bounds[i]; segment 0 has no lower bound and segment
// len(bounds) no upper one. Upper bounds are inclusive so that a segment's
// listing is one List with StartAfter its lower bound.
type layout struct {
	gen    uint64
	bounds []string
}

func (l *layout) segments() int { return len(l.bounds) + 1 }

// segment returns the index of key's segment.
func (l *layout) segment(key string) int { return sort.SearchStrings(l.bounds, key) }

// span returns segment i's listing start (StartAfter) and inclusive last
// key; last is "" with open true for the last segment.
func (l *layout) span(i int) (after, last string, open bool) {
	if i > 0 {
		after = l.bounds[i-1]
	}
	if i == len(l.bounds) {
		return after, "", true
	}
	return after, l.bounds[i], false
}

// Blob formats. Each is magic, a format byte, the payload and a CRC-32C
// (Castagnoli) of everything before it, big-endian.
const (
	layoutMagic   = "CDGL"
	deltaMagic    = "CDGD"
	digestFormat  = 1
	maxLayoutKeys = 1 << 22 // bounds a decoder's allocation
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errDigestFormat = errors.New("reconcile: malformed digest blob")

func seal(b []byte) []byte { return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli)) }

// unseal checks b's magic, format and checksum and returns the payload.
func unseal(b []byte, magic string) ([]byte, error) {
	if len(b) < len(magic)+1+4 || string(b[:len(magic)]) != magic {
		return nil, fmt.Errorf("%w: bad magic", errDigestFormat)
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch", errDigestFormat)
	}
	if body[len(magic)] != digestFormat {
		return nil, fmt.Errorf("%w: unknown format %d", errDigestFormat, body[len(magic)])
	}
	return body[len(magic)+1:], nil
}

// encodeLayout: gen, count, then each bound as uvarint length and bytes.
func encodeLayout(l *layout) []byte {
	b := append([]byte(layoutMagic), digestFormat)
	b = binary.AppendUvarint(b, l.gen)
	b = binary.AppendUvarint(b, uint64(len(l.bounds)))
	for _, k := range l.bounds {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
	}
	return seal(b)
}

func decodeLayout(raw []byte) (*layout, error) {
	p, err := unseal(raw, layoutMagic)
	if err != nil {
		return nil, err
	}
	gen, n := binary.Uvarint(p)
	if n <= 0 {
		return nil, fmt.Errorf("%w: generation", errDigestFormat)
	}
	p = p[n:]
	cnt, n := binary.Uvarint(p)
	if n <= 0 || cnt > maxLayoutKeys || cnt > uint64(len(p)) {
		return nil, fmt.Errorf("%w: bound count", errDigestFormat)
	}
	p = p[n:]
	l := &layout{gen: gen, bounds: make([]string, 0, cnt)}
	for range cnt {
		kl, n := binary.Uvarint(p)
		if n <= 0 || kl == 0 || kl > uint64(len(p)-n) {
			return nil, fmt.Errorf("%w: bound length", errDigestFormat)
		}
		k := string(p[n : n+int(kl)])
		if len(l.bounds) > 0 && k <= l.bounds[len(l.bounds)-1] {
			return nil, fmt.Errorf("%w: bounds out of order", errDigestFormat)
		}
		l.bounds = append(l.bounds, k)
		p = p[n+int(kl):]
	}
	if len(p) != 0 {
		return nil, fmt.Errorf("%w: trailing bytes", errDigestFormat)
	}
	return l, nil
}

// encodeDelta: the layout generation, the segment count, then one
// little-endian uint64 per segment.
func encodeDelta(gen uint64, segs []uint64) []byte {
	b := append([]byte(deltaMagic), digestFormat)
	b = binary.AppendUvarint(b, gen)
	b = binary.AppendUvarint(b, uint64(len(segs)))
	for _, x := range segs {
		b = binary.LittleEndian.AppendUint64(b, x)
	}
	return seal(b)
}

func decodeDelta(raw []byte) (gen uint64, segs []uint64, err error) {
	p, err := unseal(raw, deltaMagic)
	if err != nil {
		return 0, nil, err
	}
	gen, n := binary.Uvarint(p)
	if n <= 0 {
		return 0, nil, fmt.Errorf("%w: generation", errDigestFormat)
	}
	p = p[n:]
	cnt, n := binary.Uvarint(p)
	if n <= 0 || cnt > uint64(len(p)-n)/8 || uint64(len(p)-n) != cnt*8 {
		return 0, nil, fmt.Errorf("%w: segment count", errDigestFormat)
	}
	p = p[n:]
	segs = make([]uint64, cnt)
	for i := range segs {
		segs[i] = binary.LittleEndian.Uint64(p[8*i:])
	}
	return gen, segs, nil
}

// Blob names (docs/design/replication.md): the layout, and one delta per
// node and layout generation. Node ids are hex-encoded: they may hold bytes
// a blob name may not.
func layoutBlob(tenant string) string { return "digest/" + tenant + "/layout" }

func deltaPrefix(tenant string, gen uint64) string {
	return fmt.Sprintf("digest/%s/g%d/", tenant, gen)
}

func deltaBlob(tenant string, gen uint64, node string) string {
	return deltaPrefix(tenant, gen) + hex.EncodeToString([]byte(node))
}
