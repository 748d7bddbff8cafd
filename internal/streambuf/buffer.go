package streambuf

import (
	"bytes"
	"sync/atomic"
	"unsafe"
)

// Config bounds the long-lived region. Zero fields take the defaults.
type Config struct {
	// MaxInterned is the most distinct strings the long-lived region holds
	// (default 4096).
	MaxInterned int
	// MaxInternedBytes bounds their total size (default 1 MiB).
	MaxInternedBytes int
	// MaxInternLen is the longest string worth interning (default 64): long
	// values are rarely repeated and would burn the byte budget.
	MaxInternLen int
}

const (
	defaultMaxInterned      = 4096
	defaultMaxInternedBytes = 1 << 20
	defaultMaxInternLen     = 64
	longBlockSize           = 4096
)

// Buffer holds a long-lived interned region and a short-lived batch region.
// The zero value is not usable; call New.
type Buffer struct {
	cfg Config

	// Long-lived region. Blocks are never rewritten, so the strings made from
	// them stay immutable; a full block is simply left to the strings that
	// point into it.
	block    []byte
	interned map[string]string
	order    []string // interned strings in insertion order, for Persistent
	longSize int

	// Short-lived region, reused after Reset.
	arena []byte
	items []View

	// gen counts Resets; views made under -tags cairndebug compare it.
	gen atomic.Uint64
}

// New returns an empty Buffer.
func New(cfg Config) *Buffer {
	if cfg.MaxInterned <= 0 {
		cfg.MaxInterned = defaultMaxInterned
	}
	if cfg.MaxInternedBytes <= 0 {
		cfg.MaxInternedBytes = defaultMaxInternedBytes
	}
	if cfg.MaxInternLen <= 0 {
		cfg.MaxInternLen = defaultMaxInternLen
	}
	return &Buffer{cfg: cfg, interned: make(map[string]string)}
}

// Intern returns the long-lived copy of s, adding it if the region has room.
// It reports false, and returns "", when s is too long or the region is full;
// the caller then keeps a short-lived view instead. A hit never allocates.
func (b *Buffer) Intern(s []byte) (string, bool) {
	if v, ok := b.interned[string(s)]; ok { // no allocation: map lookup by converted key
		return v, true
	}
	if len(s) > b.cfg.MaxInternLen || len(b.order) >= b.cfg.MaxInterned ||
		b.longSize+len(s) > b.cfg.MaxInternedBytes {
		return "", false
	}
	if len(s) > cap(b.block)-len(b.block) {
		b.block = make([]byte, 0, max(longBlockSize, len(s)))
	}
	start := len(b.block)
	b.block = append(b.block, s...)
	v := unsafe.String(unsafe.SliceData(b.block[start:]), len(s))
	b.interned[v] = v
	b.order = append(b.order, v)
	b.longSize += len(s)
	return v, true
}

// Persistent returns the interned strings in the order they were added. The
// slice is capped, so appending to it never disturbs the Buffer, and it stays
// valid (and correct as a prefix) for the Buffer's whole life.
func (b *Buffer) Persistent() []string { return b.order[:len(b.order):len(b.order)] }

// Add copies p into the short-lived region, remembers it as the most recent
// item, and returns its view (valid until Reset).
func (b *Buffer) Add(p []byte) View {
	dst := b.Grow(len(p))
	v := b.Commit(append(dst, p...))
	b.items = append(b.items, v)
	return v
}

// Ref returns a short-lived view of caller-owned bytes without copying and
// remembers it as the most recent item. The caller keeps p unchanged until
// Reset.
func (b *Buffer) Ref(p []byte) View {
	v := View{g: b.guard(), p: p}
	b.items = append(b.items, v)
	return v
}

// View wraps p as a short-lived view without copying or remembering it: the
// cheapest way for a decoder to hand out a slice of its input.
func (b *Buffer) View(p []byte) View { return View{g: b.guard(), p: p} }

// Grow returns an empty slice at the end of the arena with room for n bytes.
// Append to it (at most n bytes) and pass the result to Commit.
func (b *Buffer) Grow(n int) []byte {
	if cap(b.arena)-len(b.arena) < n {
		// The old array stays alive for views already handed out; only new
		// data goes to the bigger one.
		b.arena = make([]byte, 0, max(2*cap(b.arena), n, 4096))
	}
	return b.arena[len(b.arena):len(b.arena)]
}

// Commit claims p, which must be the slice from the latest Grow with at most
// the requested bytes appended, and returns its view. It panics on any other
// slice: that is a programming error that would corrupt earlier views.
func (b *Buffer) Commit(p []byte) View {
	end := b.arena[len(b.arena):cap(b.arena)]
	if len(p) > len(end) || (len(p) > 0 && unsafe.SliceData(p) != unsafe.SliceData(end)) {
		panic("streambuf: Commit of a slice not obtained from Grow")
	}
	b.arena = b.arena[:len(b.arena)+len(p)]
	return View{g: b.guard(), p: p[:len(p):len(p)]}
}

// Recent returns the n most recently added items (all of them if fewer),
// oldest first, without copying. The slice is valid until Reset.
func (b *Buffer) Recent(n int) []View {
	n = min(max(n, 0), len(b.items))
	return b.items[len(b.items)-n : len(b.items) : len(b.items)]
}

// Len is the number of items added since the last Reset.
func (b *Buffer) Len() int { return len(b.items) }

// ArenaBytes is the short-lived region's size in use, for accounting.
func (b *Buffer) ArenaBytes() int { return len(b.arena) }

// Reset ends the short-lived region's lifetime: its memory is reused and all
// of its views become invalid (and panic under -tags cairndebug). Interned
// strings are untouched.
func (b *Buffer) Reset() {
	b.gen.Add(1)
	b.arena = b.arena[:0]
	clear(b.items) // drop references to caller input so the GC can free it
	b.items = b.items[:0]
}

// View is a zero-copy view of bytes owned by a Buffer's region or its input.
// Views from the short-lived region are valid until the Buffer's next Reset;
// views from Permanent never expire.
type View struct {
	g guard // zero-size unless built with -tags cairndebug; first so it adds no padding
	p []byte
}

// Permanent wraps a long-lived string (an interned value, a constant) as a
// View that never expires.
func Permanent(s string) View {
	return View{p: unsafe.Slice(unsafe.StringData(s), len(s))}
}

// Bytes returns the viewed bytes. Do not modify them.
func (v View) Bytes() []byte { v.g.check(); return v.p }

// Len returns the length of the view.
func (v View) Len() int { v.g.check(); return len(v.p) }

// String returns a copy that outlives the view.
func (v View) String() string { v.g.check(); return string(v.p) }

// Equal reports whether the view holds exactly s.
func (v View) Equal(s string) bool { v.g.check(); return string(v.p) == s }

// EqualBytes reports whether the view holds exactly p.
func (v View) EqualBytes(p []byte) bool { v.g.check(); return bytes.Equal(v.p, p) }
