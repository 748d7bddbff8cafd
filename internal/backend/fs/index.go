package fs

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/fault"
)

// A tenant's objects live in leaf directories, each holding the keys of one
// range; the tenant's index file lists the leaves by their lower bound. See
// the package documentation ("Layout") for the format and the protocol.

const (
	indexFile    = "index"
	indexMagic   = "cairn-fs-index 1"
	hashedPrefix = "~L" // never produced by backend.EscapeKey ('~' is followed by hex there)
	// maxPlainName is the longest escaped key stored under its own name
	// (NAME_MAX is 255); longer keys are stored under a hash of the key.
	maxPlainName = 240
	// defaultLeafMax is how many objects a leaf holds before it is split in
	// two. A listing page reads one or two leaves whole, so it trades the
	// directory entries read per page against the index's size.
	defaultLeafMax = 2048
)

// leaf is one range of a tenant's keys: from lo (an escaped key, "" for the
// first leaf) up to the next leaf's lo.
type leaf struct {
	dir string // directory name under the tenant's, "L" + 16 hex digits
	lo  string
}

// index is one version of a tenant's index file, parsed. It is immutable.
type index struct {
	leaves []leaf // sorted by lo; leaves[0].lo == ""
	id     fileID
}

// fileID identifies one version of the index file. The file is only ever
// replaced by a rename (a new inode) with one more line (a larger size), so
// (inode, size) never repeats, even when the file system reuses an inode,
// while the file exists (loadIndex forgets a tenant's index once it is
// gone).
type fileID struct {
	ino  uint64
	size int64
}

func idOf(fi iofs.FileInfo) fileID {
	id := fileID{size: fi.Size()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.ino = uint64(st.Ino)
	}
	return id
}

// find returns the leaf whose range holds the escaped key enc.
func (ix *index) find(enc string) int {
	i, found := slices.BinarySearchFunc(ix.leaves, enc, func(l leaf, enc string) int { return strings.Compare(l.lo, enc) })
	if found {
		return i
	}
	return i - 1 // leaves[0].lo is "", so i ≥ 1
}

// inRange reports whether enc belongs to leaf i.
func (ix *index) inRange(i int, enc string) bool {
	return enc >= ix.leaves[i].lo && (i+1 == len(ix.leaves) || enc < ix.leaves[i+1].lo)
}

func (ix *index) encode() []byte {
	var b bytes.Buffer
	b.WriteString(indexMagic + "\n")
	for _, l := range ix.leaves {
		b.WriteString(l.dir + " " + l.lo + "\n")
	}
	return b.Bytes()
}

func parseIndex(raw []byte) (*index, error) {
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 64<<10)
	if !sc.Scan() || sc.Text() != indexMagic {
		return nil, errors.New("fs backend: index: bad first line")
	}
	ix := &index{}
	for sc.Scan() {
		dir, lo, ok := strings.Cut(sc.Text(), " ")
		if !ok || !validLeafDir(dir) || (len(ix.leaves) == 0) != (lo == "") ||
			(len(ix.leaves) > 0 && lo <= ix.leaves[len(ix.leaves)-1].lo) {
			return nil, fmt.Errorf("fs backend: index: bad line %d", len(ix.leaves)+2)
		}
		ix.leaves = append(ix.leaves, leaf{dir: dir, lo: lo})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("fs backend: index: %w", err)
	}
	if len(ix.leaves) == 0 {
		return nil, errors.New("fs backend: index: no leaves")
	}
	return ix, nil
}

func validLeafDir(s string) bool {
	if len(s) != 17 || s[0] != 'L' {
		return false
	}
	_, err := hex.DecodeString(s[1:])
	return err == nil
}

// objectName is the file name of key inside its leaf: the escaped key, or
// for a key whose escape is too long for a name, "~L" and a hash of it.
func objectName(enc string) string {
	if len(enc) <= maxPlainName {
		return enc
	}
	sum := sha256.Sum256([]byte(enc))
	return hashedPrefix + hex.EncodeToString(sum[:16])
}

func (f *FS) tenantDir(tenant string) string { return filepath.Join(f.root, tenant) }

// loadIndex returns tenant's current index, or nil when the tenant has none
// (no object was ever written). A cached index is reused while the file on
// disk is the same version: one stat per call.
func (f *FS) loadIndex(tenant string) (*index, error) {
	path := filepath.Join(f.tenantDir(tenant), indexFile)
	fi, err := os.Stat(path)
	if errors.Is(err, iofs.ErrNotExist) {
		// Forgotten: an index made again from nothing (the root was
		// emptied) starts at the first version's size, maybe in its inode.
		f.mu.Lock()
		delete(f.indexes, tenant)
		f.mu.Unlock()
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	id := idOf(fi)
	f.mu.Lock()
	ix := f.indexes[tenant]
	f.mu.Unlock()
	if ix != nil && ix.id == id {
		return ix, nil
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	if fi, err = fh.Stat(); err != nil { // the version actually read
		return nil, err
	}
	raw := make([]byte, fi.Size())
	if n, err := fh.ReadAt(raw, 0); n < len(raw) {
		return nil, err
	}
	if ix, err = parseIndex(raw); err != nil {
		return nil, fault.E(fault.Corruption, fault.Context{}, err)
	}
	ix.id = idOf(fi)
	f.mu.Lock()
	f.indexes[tenant] = ix
	f.mu.Unlock()
	return ix, nil
}

// changed reports whether tenant's index is no longer ix (nil: none).
func (f *FS) changed(tenant string, ix *index) (bool, error) {
	fi, err := os.Stat(filepath.Join(f.tenantDir(tenant), indexFile))
	switch {
	case errors.Is(err, iofs.ErrNotExist):
		return ix != nil, nil
	case err != nil:
		return false, err
	}
	return ix == nil || idOf(fi) != ix.id, nil
}

// locate returns the file that holds key under ix (nil: "").
func (f *FS) locate(tenant string, ix *index, key string) string {
	if ix == nil {
		return ""
	}
	enc := backend.EscapeKey(key)
	return filepath.Join(f.tenantDir(tenant), ix.leaves[ix.find(enc)].dir, objectName(enc))
}

// read runs fn on the file of key, without the lock. A split may move the
// file between reading the index and opening it; it then leaves a new
// index behind, so a missing file is only reported after checking that the
// index did not change (see "Layout" in the package documentation).
func (f *FS) read(tenant, key string, fn func(path string) error) error {
	for {
		ix, err := f.loadIndex(tenant)
		if err != nil {
			return err
		}
		if ix == nil {
			return notFound(iofs.ErrNotExist)
		}
		if f.afterIndex != nil {
			f.afterIndex()
		}
		err = fn(f.locate(tenant, ix, key))
		if fault.ClassOf(err) != fault.NotFound {
			return err
		}
		if moved, cerr := f.changed(tenant, ix); cerr != nil || !moved {
			return err
		}
	}
}

// writeIndexLocked replaces tenant's index durably; the tenant's lock is
// held.
func (f *FS) writeIndexLocked(tenant string, ix *index) error {
	tmp, err := f.writeTemp(ix.encode())
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	path := filepath.Join(f.tenantDir(tenant), indexFile)
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if err := f.syncDir(f.tenantDir(tenant)); err != nil {
		return err
	}
	_, err = f.loadIndex(tenant)
	return err
}

// newLeafLocked creates an empty leaf directory with a fresh random name
// (a crash can leave an unreferenced one behind: a fresh name never
// reuses it) and makes its entry durable.
func (f *FS) newLeafLocked(tenant string) (string, error) {
	for {
		var b [8]byte
		rand.Read(b[:])
		name := "L" + hex.EncodeToString(b[:])
		err := os.Mkdir(filepath.Join(f.tenantDir(tenant), name), 0o700)
		if errors.Is(err, iofs.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		return name, f.syncDir(f.tenantDir(tenant))
	}
}

// indexForWriteLocked returns tenant's index, creating the tenant's
// directory, a first leaf and the index when there is none.
func (f *FS) indexForWriteLocked(tenant string) (*index, error) {
	ix, err := f.loadIndex(tenant)
	if err != nil || ix != nil {
		return ix, err
	}
	if err := os.Mkdir(f.tenantDir(tenant), 0o700); err != nil && !errors.Is(err, iofs.ErrExist) {
		return nil, err
	}
	if err := f.syncDir(f.root); err != nil {
		return nil, err
	}
	dir, err := f.newLeafLocked(tenant)
	if err != nil {
		return nil, err
	}
	if err := f.writeIndexLocked(tenant, &index{leaves: []leaf{{dir: dir}}}); err != nil {
		return nil, err
	}
	return f.loadIndex(tenant)
}

// leafItem is one object file of a leaf with its escaped key.
type leafItem struct {
	enc, name string
}

// readLeaf returns the objects of leaf dir with their escaped keys,
// unsorted. Entries that cannot be objects are left out, as the S3
// backend leaves out names no key maps to: a directory, a link, or a file
// whose name no key escapes to (an editor's swap file, a copy kept as
// k.bak). Failing on them would fail every listing of the tenant, and with
// it every scrub and every catch-up, for a file that holds no document.
// A hashed name is this backend's own: its key is read from the object's
// header; one whose header is damaged is left out (Get still finds it by
// key and reports the damage), and so is one deleted since the directory
// was read. Any other failure to read a header (an I/O error, too many
// open files, a directory in its place) is returned: a split that left
// such an object out would move its range to the new leaf without it, and
// the object would be lost.
func readLeaf(dir string) ([]leafItem, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	ents, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return nil, err
	}
	items := make([]leafItem, 0, len(ents))
	for _, de := range ents {
		n := de.Name()
		if !strings.HasPrefix(n, hashedPrefix) {
			if !de.Type().IsRegular() {
				continue // a directory or a link someone made: never an object
			}
			if _, err := backend.UnescapeKey(n); err != nil {
				continue // a name no key escapes to: an editor's or tool's file
			}
			items = append(items, leafItem{enc: n, name: n})
			continue
		}
		key, err := headerKey(filepath.Join(dir, n))
		if errors.Is(err, errBadHeader) || errors.Is(err, iofs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		items = append(items, leafItem{enc: backend.EscapeKey(key), name: n})
	}
	return items, nil
}

// errBadHeader wraps headerKey's error for an object whose header does not
// parse (a damaged object), as opposed to one that could not be read.
var errBadHeader = errors.New("fs backend: damaged object header")

// headerKey reads the key from the header of the object file at path.
func headerKey(path string) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	buf := make([]byte, headerRead)
	n, err := fh.ReadAt(buf, 0)
	h, perr := backend.ParseHeader(buf[:n])
	if perr != nil && backend.IsShortHeader(perr) && n == len(buf) {
		raw, rerr := readFile(path)
		if rerr != nil {
			return "", rerr
		}
		h, perr = backend.ParseHeader(raw)
	}
	if perr != nil {
		if err != nil && n == 0 && !errors.Is(err, io.EOF) {
			return "", err
		}
		return "", fmt.Errorf("%w: %w", errBadHeader, perr)
	}
	return h.Key, nil
}

// noteCreatedLocked counts an object created in leaf i and splits the leaf
// when it has grown past the limit. The count is a per-process hint (other
// processes writing to the same root make it low): the split itself counts
// exactly, so a low hint only delays a split.
func (f *FS) noteCreatedLocked(tenant string, ix *index, i int) error {
	k := tenant + "/" + ix.leaves[i].dir
	f.mu.Lock()
	n, ok := f.counts[k]
	f.mu.Unlock()
	if !ok {
		d, err := os.Open(filepath.Join(f.tenantDir(tenant), ix.leaves[i].dir))
		if err != nil {
			return err
		}
		names, err := d.Readdirnames(-1)
		d.Close()
		if err != nil {
			return err
		}
		n = len(names)
	} else {
		n++
	}
	f.mu.Lock()
	f.counts[k] = n
	f.mu.Unlock()
	if n <= f.leafMax {
		return nil
	}
	return f.splitLocked(tenant, ix, i)
}

func (f *FS) noteRemoved(tenant, dir string) {
	k := tenant + "/" + dir
	f.mu.Lock()
	if n, ok := f.counts[k]; ok && n > 0 {
		f.counts[k] = n - 1
	}
	f.mu.Unlock()
}

// splitLocked moves the upper half of leaf i into a new leaf, holding the
// tenant's lock. The steps keep every object findable by a reader that
// holds no lock, and every state a crash can leave behind valid:
//
//  1. create the new leaf and hard-link the upper half into it (the old
//     index still sends everyone to the old leaf, which has them all);
//  2. replace the index by one with the new leaf (now everyone is sent to
//     the new leaf, which has them all);
//  3. unlink the upper half from the old leaf.
//
// A reader that read the old index and finds a file gone after step 3
// sees that the index changed and looks again. Files a crash left in a
// leaf whose range no longer holds them are never listed or read (readers
// go by the index and listings filter by range), and the next split of that
// leaf removes them.
func (f *FS) splitLocked(tenant string, ix *index, i int) error {
	tdir := f.tenantDir(tenant)
	old := filepath.Join(tdir, ix.leaves[i].dir)
	all, err := readLeaf(old)
	if err != nil {
		return err
	}
	items := all[:0]
	for _, it := range all {
		if ix.inRange(i, it.enc) {
			items = append(items, it)
		} else if err := os.Remove(filepath.Join(old, it.name)); err != nil && !errors.Is(err, iofs.ErrNotExist) {
			return err // a leftover of a split that crashed after its step 2
		}
	}
	f.mu.Lock()
	f.counts[tenant+"/"+ix.leaves[i].dir] = len(items)
	f.mu.Unlock()
	if len(items) <= f.leafMax {
		return nil
	}
	slices.SortFunc(items, func(a, b leafItem) int { return strings.Compare(a.enc, b.enc) })
	mid := len(items) / 2
	dir, err := f.newLeafLocked(tenant)
	if err != nil {
		return err
	}
	for _, it := range items[mid:] {
		if err := os.Link(filepath.Join(old, it.name), filepath.Join(tdir, dir, it.name)); err != nil {
			return err
		}
	}
	if err := f.syncDir(filepath.Join(tdir, dir)); err != nil {
		return err
	}
	next := &index{leaves: slices.Insert(slices.Clone(ix.leaves), i+1, leaf{dir: dir, lo: items[mid].enc})}
	if err := f.writeIndexLocked(tenant, next); err != nil {
		return err
	}
	for _, it := range items[mid:] {
		if err := os.Remove(filepath.Join(old, it.name)); err != nil && !errors.Is(err, iofs.ErrNotExist) {
			return err
		}
	}
	f.mu.Lock()
	f.counts[tenant+"/"+ix.leaves[i].dir] = mid
	f.counts[tenant+"/"+dir] = len(items) - mid
	f.mu.Unlock()
	return f.syncDir(old)
}
