package store

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/cairnstore/cairn/internal/fault"
)

// Identity is who this node is. The incarnation keys the node's entries in
// version vectors; it is random, non-zero, created on the first open of a
// data directory and kept in it (identity.json), so a node that lost its
// disk comes back as a new incarnation and never reuses old counters.
type Identity struct {
	NodeID      string `json:"node_id"`
	Incarnation uint64 `json:"incarnation,string"` // a string: JSON readers lose precision above 2^53
}

const identityFile = "identity.json"

// loadIdentity reads dir/identity.json, or creates it with a new random
// incarnation when the directory holds no data yet; created says which.
// nodeID, when set, must match a stored one: opening node A's directory as
// node B is an operator mistake that would mix two nodes' histories.
//
// A directory whose id was made up by default (no --node-id at its first
// start) may still take nodeID, if it never stored a write: a first start
// that failed (a backend refused, a port taken) must not bind the
// directory to the made-up id. Such an id comes back with adopt set, and
// the caller decides once it knows whether the store is empty (adoptID).
func loadIdentity(dir, nodeID string, hasData bool) (id Identity, created, adopt bool, err error) {
	if err := CheckNodeID(nodeID); err != nil {
		return Identity{}, false, false, fault.New(fault.Config, fault.Context{}, fmt.Sprintf("node id %q: %v", nodeID, err))
	}
	id, err = readIdentity(dir, nodeID, hasData)
	if err == nil {
		// An id stored by an older version, or written by hand.
		if cerr := CheckNodeID(id.NodeID); cerr != nil {
			return Identity{}, false, false, fault.New(fault.Config, fault.Context{}, fmt.Sprintf(
				"data directory %s has the node id %q: %v; start the node from an empty data directory with a --node-id that is one (it restores from the backends)", dir, id.NodeID, cerr))
		}
	}
	switch {
	case errors.Is(err, errNoIdentity):
		id, err = createIdentity(dir, nodeID)
		return id, err == nil, false, err
	case errors.Is(err, errOtherNode) && id.NodeID == defaultNodeID(id.Incarnation):
		return id, false, true, nil
	case errors.Is(err, errOtherNode):
		return Identity{}, false, false, otherNode(dir, id, nodeID)
	}
	return id, false, false, err
}

// adoptID gives a directory whose made-up id loadIdentity let through the
// id nodeID, or refuses as for another node's directory when it holds
// writes (seq is its last).
func adoptID(dir string, id Identity, nodeID string, seq uint64) (Identity, error) {
	if seq != 0 {
		return Identity{}, otherNode(dir, id, nodeID)
	}
	id.NodeID = nodeID
	return id, writeIdentity(dir, id)
}

// errOtherNode: the directory's identity names another node than asked.
var errOtherNode = errors.New("another node's directory")

func otherNode(dir string, id Identity, nodeID string) error {
	return fault.New(fault.Config, fault.Context{}, fmt.Sprintf(
		"data directory %s belongs to node %q, not %q: a data directory keeps the node id it was created with "+
			"(by the node's first start, or by cairn import --node-id); start it with --node-id %q, or without --node-id",
		dir, id.NodeID, nodeID, id.NodeID))
}

// MaxNodeID bounds a node id's length in bytes: the id names the node's
// objects in the backends (identity claims, change feeds), hex-encoded
// into one path segment, which the backends bound.
const MaxNodeID = 100

// CheckNodeID says why id cannot be a node id: longer than MaxNodeID, not
// UTF-8, or with spaces or control characters. The empty id is one to be
// made up.
func CheckNodeID(id string) error {
	switch {
	case len(id) > MaxNodeID:
		return fmt.Errorf("%d bytes, longer than the %d a node id may have", len(id), MaxNodeID)
	case !utf8.ValidString(id):
		return errors.New("not UTF-8 text")
	case strings.ContainsFunc(id, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }):
		return errors.New("a node id has no spaces or control characters")
	}
	return nil
}

// defaultNodeID is the id a directory made without a node id gets.
func defaultNodeID(incarnation uint64) string { return fmt.Sprintf("node-%016x", incarnation) }

// errNoIdentity: an empty directory, whose identity is to be created.
var errNoIdentity = errors.New("no identity")

func readIdentity(dir, nodeID string, hasData bool) (Identity, error) {
	ctx := fault.Context{}
	name := filepath.Join(dir, identityFile)
	raw, err := os.ReadFile(name)
	switch {
	case errors.Is(err, fs.ErrNotExist) && hasData:
		return Identity{}, fault.New(fault.Config, ctx, fmt.Sprintf(
			"data directory %s holds data but no %s; restore it or start from an empty directory", dir, identityFile))
	case errors.Is(err, fs.ErrNotExist):
		return Identity{}, errNoIdentity
	case err != nil:
		return Identity{}, fault.E(fault.Config, ctx, fmt.Errorf("read %s: %w", name, err))
	}
	var id Identity
	if err := json.Unmarshal(raw, &id); err != nil || id.Incarnation == 0 {
		return Identity{}, fault.New(fault.Corruption, ctx, fmt.Sprintf("%s is malformed: %v", name, err))
	}
	if nodeID != "" && nodeID != id.NodeID {
		return id, errOtherNode
	}
	return id, nil
}

func createIdentity(dir, nodeID string) (Identity, error) {
	id := Identity{NodeID: nodeID, Incarnation: newIncarnation()}
	if id.NodeID == "" {
		id.NodeID = defaultNodeID(id.Incarnation)
	}
	return id, writeIdentity(dir, id)
}

// writeIdentity writes id to dir's identity.json, durably.
func writeIdentity(dir string, id Identity) error {
	raw, err := json.MarshalIndent(id, "", "  ")
	if err != nil {
		return err
	}
	if err := WriteFileSync(filepath.Join(dir, identityFile), append(raw, '\n')); err != nil {
		return fault.E(fault.Config, fault.Context{}, err)
	}
	return nil
}

func newIncarnation() uint64 {
	var b [8]byte
	for {
		rand.Read(b[:]) // never fails (crypto/rand panics instead)
		if x := binary.LittleEndian.Uint64(b[:]); x != 0 {
			return x
		}
	}
}

// WriteFileSync writes name atomically and durably: a temporary file,
// fsynced, renamed over name, and the directory fsynced so the rename itself
// survives a crash. It is for the small files the node keeps beside the
// store in its data directory.
func WriteFileSync(name string, data []byte) error {
	return ReplaceFile(name, 0o600, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// ReplaceFile writes name as WriteFileSync does, with what write writes to
// the temporary file (.NAME.*.tmp beside it, made with exactly perm, not
// masked by the umask), which is removed if write or anything after it
// fails: a file at name is always whole. write may also set the temporary
// file's owner.
func ReplaceFile(name string, perm os.FileMode, write func(*os.File) error) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // fails harmlessly once renamed
	err = f.Chmod(perm)
	if err == nil {
		err = write(f)
	}
	if err == nil {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), name); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(name))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// mkdirAll makes the data directory, for its owner only: its files (the
// store's log and tables) hold every tenant's documents as written.
func mkdirAll(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fault.E(fault.Config, fault.Context{Op: "store.open"}, fmt.Errorf("data directory %s: %w", dir, err))
	}
	return nil
}
