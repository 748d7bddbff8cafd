package reconcile

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
	"time"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// A feed object is what one node uploaded to one backend for one tenant
// in one short interval: an entry per key, in upload order. Its bytes:
//
//	magic "cairnfeed" | format 1 | uvarint len + tenant | uvarint len + node
//	| uvarint seq | varint publish time (unix ns) | uvarint n | n entries
//	| CRC-32C (Castagnoli, big-endian) of everything before it
//
// and each entry:
//
//	uvarint len + key | version (doc.Version's binary encoding) |
//	uvarint len + ETag | flags (1: body inline) | [uvarint len + body]
//
// The header names the tenant, the node and the seq so that an object
// copied to another name is refused like a damaged one.
const (
	feedMagic  = "cairnfeed"
	feedFormat = 1
	flagBody   = 1

	// MaxInlineBody is the largest body a feed entry carries; a larger
	// document's entry carries none, and the reader gets the object.
	MaxInlineBody = 64 << 10
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// feedEntry is one key a node uploaded: the version the backend then held
// and the object's ETag; body is set when inline (nil for a tombstone).
type feedEntry struct {
	key     string
	version doc.Version
	etag    string
	inline  bool
	body    []byte
}

// feedObject is one decoded feed object.
type feedObject struct {
	tenant, node string
	seq          uint64
	published    time.Time
	entries      []feedEntry
}

func appendLenString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func (o *feedObject) encode() []byte {
	b := append([]byte(feedMagic), feedFormat)
	b = appendLenString(b, o.tenant)
	b = appendLenString(b, o.node)
	b = binary.AppendUvarint(b, o.seq)
	b = binary.AppendVarint(b, o.published.UnixNano())
	b = binary.AppendUvarint(b, uint64(len(o.entries)))
	for i := range o.entries {
		en := &o.entries[i]
		b = appendLenString(b, en.key)
		b = en.version.AppendBinary(b)
		b = appendLenString(b, en.etag)
		if en.inline {
			b = append(b, flagBody)
			b = binary.AppendUvarint(b, uint64(len(en.body)))
			b = append(b, en.body...)
		} else {
			b = append(b, 0)
		}
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
}

// errBadFeed is wrapped by every decoding error of a feed object.
var errBadFeed = errors.New("malformed feed object")

// feedReader reads the fields of an encoded feed object.
type feedReader struct {
	b   []byte
	err error
}

func (r *feedReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", errBadFeed, what)
	}
}

func (r *feedReader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *feedReader) bytes(what string) []byte {
	n := r.uvarint(what)
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail(what + " runs past the end")
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// decodeFeed decodes and verifies a feed object. Its errors wrap
// errBadFeed; the caller classes them as corruption.
func decodeFeed(data []byte) (*feedObject, error) {
	if len(data) < len(feedMagic)+1+4 || string(data[:len(feedMagic)]) != feedMagic {
		return nil, fmt.Errorf("%w: no feed magic", errBadFeed)
	}
	body, sum := data[:len(data)-4], binary.BigEndian.Uint32(data[len(data)-4:])
	if crc32.Checksum(body, crcTable) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch", errBadFeed)
	}
	if f := body[len(feedMagic)]; f != feedFormat {
		return nil, fmt.Errorf("%w: format %d, want %d", errBadFeed, f, feedFormat)
	}
	r := &feedReader{b: body[len(feedMagic)+1:]}
	o := &feedObject{tenant: string(r.bytes("tenant")), node: string(r.bytes("node")), seq: r.uvarint("seq")}
	if r.err == nil {
		ns, n := binary.Varint(r.b)
		if n <= 0 {
			r.fail("publish time")
		} else {
			o.published, r.b = time.Unix(0, ns), r.b[n:]
		}
	}
	count := r.uvarint("entry count")
	if r.err == nil && count > uint64(len(r.b)) { // every entry takes bytes: bounds the allocation
		r.fail("entry count larger than the object")
	}
	if r.err != nil {
		return nil, r.err
	}
	o.entries = make([]feedEntry, 0, count)
	for range count {
		en, err := r.entry()
		if err != nil {
			return nil, err
		}
		o.entries = append(o.entries, en)
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errBadFeed, len(r.b))
	}
	return o, nil
}

func (r *feedReader) entry() (feedEntry, error) {
	var en feedEntry
	key := r.bytes("key")
	if r.err != nil {
		return en, r.err
	}
	en.key = string(key)
	if err := doc.ValidateKey(en.key); err != nil {
		return en, fmt.Errorf("%w: entry key: %v", errBadFeed, err)
	}
	v, n, err := doc.DecodeVersion(r.b)
	if err != nil {
		return en, fmt.Errorf("%w: entry %q: %v", errBadFeed, en.key, err)
	}
	en.version, r.b = v, r.b[n:]
	en.etag = string(r.bytes("etag"))
	if r.err == nil && len(r.b) == 0 {
		r.fail("entry flags")
	}
	if r.err != nil {
		return en, r.err
	}
	flags := r.b[0]
	r.b = r.b[1:]
	switch flags {
	case 0:
	case flagBody:
		en.inline, en.body = true, r.bytes("body")
		if len(en.body) == 0 {
			en.body = nil
		}
	default:
		return en, fmt.Errorf("%w: entry %q: unknown flags %#x", errBadFeed, en.key, flags)
	}
	if r.err != nil {
		return en, r.err
	}
	if en.etag == "" {
		return en, fmt.Errorf("%w: entry %q has no ETag", errBadFeed, en.key)
	}
	if en.inline && en.version.Hash != doc.HashBody(en.body) {
		return en, fmt.Errorf("%w: entry %q: the body does not match the version's hash", errBadFeed, en.key)
	}
	return en, nil
}

// Feed object names: feed/<tenant>/<node>/<seq>, the node id in lower-case
// hex (a node id may hold any bytes; hex keeps it inside the blob name
// alphabet) and seq as 16 lower-case hex digits, so that byte order is seq
// order and a listing after the last name read finds only newer objects.

// feedTenantPrefix is the prefix of every feed object of tenant.
func feedTenantPrefix(tenant string) string { return "feed/" + tenant + "/" }

// feedPeerPrefix is the prefix of the feed objects node (hex) published
// for tenant.
func feedPeerPrefix(tenant, nodeHex string) string { return feedTenantPrefix(tenant) + nodeHex + "/" }

func feedName(tenant, nodeHex string, seq uint64) string {
	return feedPeerPrefix(tenant, nodeHex) + fmt.Sprintf("%016x", seq)
}

func nodeHex(nodeID string) string { return hex.EncodeToString([]byte(nodeID)) }

// parseFeedName splits a feed object's name under tenant into its node
// (hex) and seq; ok is false for a name that is not one.
func parseFeedName(tenant, name string) (node string, seq uint64, ok bool) {
	rest, found := strings.CutPrefix(name, feedTenantPrefix(tenant))
	if !found {
		return "", 0, false
	}
	node, s, found := strings.Cut(rest, "/")
	if !found || node == "" || len(s) != 16 {
		return "", 0, false
	}
	if _, err := hex.DecodeString(node); err != nil {
		return "", 0, false
	}
	seq, err := strconv.ParseUint(s, 16, 64)
	if err != nil || strings.ToLower(s) != s || seq == 0 {
		return "", 0, false
	}
	return node, seq, true
}

// feedState is the persisted state of the feed of one (backend, tenant):
// the last seq this node published, the publish-time marks retention trims
// by, and the last seq read of each peer (by node hex).
type feedState struct {
	seq     uint64
	marks   []feedMark // ascending; at most maxMarks
	cursors map[string]uint64
}

// feedMark says that the objects up to seq were published by at.
type feedMark struct {
	seq uint64
	at  int64 // unix ns
}

const feedStateFormat = 1

func (s *feedState) encode() []byte {
	b := []byte{feedStateFormat}
	b = binary.AppendUvarint(b, s.seq)
	b = binary.AppendUvarint(b, uint64(len(s.marks)))
	for _, m := range s.marks {
		b = binary.AppendUvarint(b, m.seq)
		b = binary.AppendVarint(b, m.at)
	}
	b = binary.AppendUvarint(b, uint64(len(s.cursors)))
	for p, c := range s.cursors {
		b = appendLenString(b, p)
		b = binary.AppendUvarint(b, c)
	}
	return b
}

func decodeFeedState(b []byte) (feedState, error) {
	s := feedState{cursors: map[string]uint64{}}
	if len(b) == 0 || b[0] != feedStateFormat {
		return s, errors.New("reconcile: malformed feed state")
	}
	r := &feedReader{b: b[1:]}
	s.seq = r.uvarint("seq")
	n := r.uvarint("marks")
	for i := uint64(0); i < n && r.err == nil; i++ {
		m := feedMark{seq: r.uvarint("mark")}
		at, k := binary.Varint(r.b)
		if k <= 0 {
			r.fail("mark time")
			break
		}
		m.at, r.b = at, r.b[k:]
		s.marks = append(s.marks, m)
	}
	n = r.uvarint("cursors")
	for i := uint64(0); i < n && r.err == nil; i++ {
		p := string(r.bytes("peer"))
		s.cursors[p] = r.uvarint("cursor")
	}
	if r.err != nil || len(r.b) != 0 {
		return s, errors.New("reconcile: malformed feed state")
	}
	return s, nil
}

// corruptFeed classes a feed object's decoding error.
func corruptFeed(backendName, tenant, name string, err error) error {
	return fault.E(fault.Corruption, fault.Context{Op: "reconcile.feed_read", Backend: backendName, Tenant: tenant, Key: name}, err)
}
