package backend

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Key naming: how a key becomes a relative object path for the s3 backend
// (an object name under "<prefix>/<tenant>/"); the fs backend uses step 1
// only, as file names inside its leaf directories. Each step preserves
// the keys' byte order, as it says.
//
// Step 1, escaping (EscapeKey): every byte maps to a code; the codes are
// prefix-free and increase with the byte, so the escaped strings sort like
// the keys, and the escape of a key prefix is a prefix of the key's escape.
//
//	'.' → ".2E"  '/' → ".2F"          (no '/', no "." or ".." component)
//	'~' → "~7E"  0x7F…0xFF → "~7F"…"~FF" (the result is ASCII)
//	every other byte is itself
//
// The two escape characters sit at the low end ('.' just below '/') and the
// high end ('~') of the bytes they escape, with no literal byte in between,
// which is what makes the codes increase with the byte.
//
// Step 2, splitting (KeyPath): the escaped key is cut every Chunk bytes into
// path components; every component but the last is a directory, marked by
// one more byte (DirMark), so a directory name (Chunk+1 bytes) never equals
// a file name (≤ Chunk bytes). Comparing paths compares the escaped keys,
// because the cut points are at the same offsets in every key.
//
// Step 3, only with a chunk limit (the s3 backend, whose object names are
// at most 1024 bytes): an escaped key longer than maxChunks·Chunk bytes is
// stored as the first maxChunks chunks, all as directories, then "#" and a
// hash of the key. Those names do not sort by key; see [KeyPath].
const (
	Chunk   = 200 // bytes of escaped key per path component; names ≤ 255 bytes
	DirMark = '+'
	hashTag = '#'
	hexUp   = "0123456789ABCDEF"
)

// EscapeKey returns the escaped form of key (step 1 above).
func EscapeKey(key string) string {
	n := 0
	for i := 0; i < len(key); i++ {
		if escaped(key[i]) {
			n++
		}
	}
	if n == 0 {
		return key
	}
	b := make([]byte, 0, len(key)+2*n)
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c == '.' || c == '/':
			b = append(b, '.', hexUp[c>>4], hexUp[c&15])
		case c >= '~':
			b = append(b, '~', hexUp[c>>4], hexUp[c&15])
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

func escaped(c byte) bool { return c == '.' || c == '/' || c >= '~' }

// UnescapeKey inverts EscapeKey. It rejects anything EscapeKey cannot
// produce (a bad or unnecessary escape, a raw byte that should have been
// escaped), so every stored name has exactly one key.
func UnescapeKey(enc string) (string, error) {
	if !strings.ContainsFunc(enc, func(r rune) bool { return r >= '~' || r == '.' || r == '/' }) {
		return enc, nil // nothing escaped (the common case)
	}
	b := make([]byte, 0, len(enc))
	for i := 0; i < len(enc); i++ {
		c := enc[i]
		if c != '.' && c != '~' {
			if escaped(c) {
				return "", fmt.Errorf("backend: bad escaped key %q: raw byte %#x at %d", enc, c, i)
			}
			b = append(b, c)
			continue
		}
		if i+2 >= len(enc) {
			return "", fmt.Errorf("backend: bad escaped key %q: short escape at %d", enc, i)
		}
		hi, lo := strings.IndexByte(hexUp, enc[i+1]), strings.IndexByte(hexUp, enc[i+2])
		v := byte(hi<<4 | lo)
		if hi < 0 || lo < 0 || !escaped(v) || (c == '.') != (v == '.' || v == '/') {
			return "", fmt.Errorf("backend: bad escaped key %q: bad escape at %d", enc, i)
		}
		b = append(b, v)
		i += 2
	}
	return string(b), nil
}

// KeyPath returns key's relative path: the escaped key split into
// components (steps 2 and 3 above). maxChunks ≤ 0 means no limit: every key
// keeps its order. With a limit, a key whose escaped form is longer than
// maxChunks·Chunk bytes is hashed (hashed is true): its path is the first
// maxChunks chunks as directories, then "#" and 32 hex digits of the
// SHA-256 of the key. All keys sharing those first maxChunks·Chunk escaped
// bytes — and only they — are in that one directory (a "group"), which
// sorts where the keys would; inside a group, names are in hash order, and
// a lister must read the objects' headers for their keys and sort them.
func KeyPath(key string, maxChunks int) (path string, hashed bool) {
	enc := EscapeKey(key)
	if maxChunks > 0 && len(enc) > maxChunks*Chunk {
		sum := sha256.Sum256([]byte(key))
		return dirs(enc[:maxChunks*Chunk]) + string(hashTag) + hex.EncodeToString(sum[:16]), true
	}
	return split(enc), false
}

// GroupFile is the path of the one unhashed key that can sort immediately
// before the group of a hashed key: the first maxChunks·Chunk escaped bytes
// as a plain key. Listing "after" it starts exactly at the group.
func GroupFile(key string, maxChunks int) string {
	return split(EscapeKey(key)[:maxChunks*Chunk])
}

// split renders an escaped key: full chunks as directories, the rest (at
// least one byte, so the last component may be a full chunk) as the file.
func split(enc string) string {
	if len(enc) <= Chunk {
		return enc
	}
	last := (len(enc) - 1) / Chunk * Chunk
	return dirs(enc[:last]) + enc[last:]
}

// dirs renders enc (a multiple of Chunk bytes) as directories, each ending
// in "<DirMark>/".
func dirs(enc string) string {
	var b strings.Builder
	b.Grow(len(enc) + 2*len(enc)/Chunk)
	for i := 0; i < len(enc); i += Chunk {
		b.WriteString(enc[i : i+Chunk])
		b.WriteByte(DirMark)
		b.WriteByte('/')
	}
	return b.String()
}

// PrefixPath returns the path prefix shared by the paths of all keys that
// start with prefix. When the prefix reaches into hashed names (beyond is
// true), the path prefix is the group directory, and a lister must filter
// the group's keys by the prefix itself.
func PrefixPath(prefix string, maxChunks int) (path string, beyond bool) {
	enc := EscapeKey(prefix)
	if maxChunks > 0 && len(enc) > maxChunks*Chunk {
		return dirs(enc[:maxChunks*Chunk]), true
	}
	if len(enc)%Chunk != 0 {
		return dirs(enc[:len(enc)/Chunk*Chunk]) + enc[len(enc)/Chunk*Chunk:], false
	}
	// A key equal to the last full chunk is a file named by it, a longer
	// key a directory named by it plus DirMark: the chunk itself is the
	// shared prefix.
	return split(enc), false
}

// ParsePath inverts KeyPath. For a hashed path it returns hashed = true
// and no key: the key is in the object's header.
func ParsePath(path string, maxChunks int) (key string, hashed bool, err error) {
	comps := strings.Split(path, "/")
	var enc strings.Builder
	enc.Grow(len(path))
	for i, c := range comps {
		if i < len(comps)-1 {
			if len(c) != Chunk+1 || c[Chunk] != DirMark {
				return "", false, fmt.Errorf("backend: bad object path %q: component %d is not a chunk directory", path, i)
			}
			enc.WriteString(c[:Chunk])
			continue
		}
		if maxChunks > 0 && i == maxChunks {
			if len(c) != 33 || c[0] != hashTag {
				return "", false, fmt.Errorf("backend: bad object path %q: bad hashed name", path)
			}
			return "", true, nil
		}
		if len(c) == 0 || len(c) > Chunk || (maxChunks > 0 && i > maxChunks) {
			return "", false, fmt.Errorf("backend: bad object path %q: bad file component", path)
		}
		enc.WriteString(c)
	}
	key, err = UnescapeKey(enc.String())
	return key, false, err
}
