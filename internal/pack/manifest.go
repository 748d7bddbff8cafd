package pack

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
	"time"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// Manifest describes one complete pack generation. It is written after
// every part, so a generation without a manifest is incomplete and is
// never read.
type Manifest struct {
	Tenant     string    `json:"tenant"`
	Generation string    `json:"generation"`
	Backend    string    `json:"backend"` // the backend the ETags are of, by the writer's name for it
	Created    time.Time `json:"created"`
	// HLC is the writer's clock when it started listing: every version the
	// pack holds was committed on the writer before it.
	HLC   doc.Timestamp `json:"hlc"`
	Docs  int64         `json:"docs"`
	Bytes int64         `json:"bytes"`
	Parts []Part        `json:"parts"`
	// Feed is, per node (its id in lower-case hex, as in feed object
	// names), the highest seq of that node's change feed of the tenant
	// whose every entry the pack holds or supersedes: a restoring node
	// replays the feeds after them. nil (a writer without a feed, or one
	// that predates this field): the pack says nothing of the feeds.
	Feed map[string]uint64 `json:"feed"`
}

// Part names one part of a generation: its blob's name within the
// generation, the number of entries, and its first and last keys.
type Part struct {
	Name  string `json:"name"`
	Docs  int    `json:"docs"`
	Size  int    `json:"size"`
	First string `json:"first"`
	Last  string `json:"last"`
}

// maxNodeHex bounds a feed node's name (a blob name segment's length).
const maxNodeHex = 255

// maxManifest bounds a manifest's size (a million parts' worth).
const maxManifest = 256 << 20

// Encode returns m's bytes: magic, format, JSON, CRC-32C.
func (m *Manifest) Encode() ([]byte, error) {
	j, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	b := append(append([]byte(manifestMagic), Format), j...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli)), nil
}

// DecodeManifest verifies b and returns the manifest it holds. Outcomes:
// the manifest; fault.Corruption for anything malformed, including parts
// not in key order or a tenant or generation name that is not valid.
func DecodeManifest(b []byte) (*Manifest, error) {
	if len(b) > maxManifest {
		return nil, errCorrupt("manifest", fmt.Errorf("%d bytes", len(b)))
	}
	payload, err := verify("manifest", manifestMagic, b)
	if err != nil {
		return nil, err
	}
	var m Manifest
	d := json.NewDecoder(bytes.NewReader(payload))
	d.DisallowUnknownFields()
	if err := d.Decode(&m); err != nil {
		return nil, errCorrupt("manifest", err)
	}
	if d.More() {
		return nil, errCorrupt("manifest", errors.New("data after the JSON value"))
	}
	if err := m.check(); err != nil {
		return nil, errCorrupt("manifest", err)
	}
	return &m, nil
}

func (m *Manifest) check() error {
	if err := doc.ValidateTenant(m.Tenant); err != nil {
		return err
	}
	if !ValidGeneration(m.Generation) {
		return fmt.Errorf("bad generation %q", m.Generation)
	}
	for node := range m.Feed {
		if _, err := hex.DecodeString(node); err != nil || node == "" || len(node) > maxNodeHex || node != strings.ToLower(node) {
			return fmt.Errorf("bad feed node %q", node)
		}
	}
	var docs int64
	for i, p := range m.Parts {
		if p.Name != PartFile(i+1) {
			return fmt.Errorf("part %d is named %q", i+1, p.Name)
		}
		if p.Docs < 0 || p.Size < 0 || p.Size > MaxPart || (i > 0 && p.First <= m.Parts[i-1].Last) || p.Last < p.First {
			return fmt.Errorf("part %d: bad counts or keys out of order", i+1)
		}
		docs += int64(p.Docs)
	}
	if docs != m.Docs {
		return fmt.Errorf("parts hold %d documents, manifest says %d", docs, m.Docs)
	}
	return nil
}

// Names. A tenant's packs live under Prefix(tenant); a generation's
// blobs under Prefix(tenant)+generation+"/": "part-NNNNNN" from 1, then
// "manifest".

// Prefix is the blob prefix of tenant's packs.
func Prefix(tenant string) string { return "pack/" + tenant + "/" }

// PartFile is the name of part i (from 1) within its generation.
func PartFile(i int) string { return fmt.Sprintf("part-%06d", i) }

// PartName is the blob name of part i of a generation.
func PartName(tenant, gen string, i int) string { return Prefix(tenant) + gen + "/" + PartFile(i) }

// ManifestName is the blob name of a generation's manifest.
func ManifestName(tenant, gen string) string { return Prefix(tenant) + gen + "/manifest" }

// NewGeneration names a generation created at t: 16 hex digits of its
// Unix time in nanoseconds, so that generations sort by age, and 8 of
// nonce, so that two writers never share a name.
func NewGeneration(t time.Time, nonce uint32) string {
	return fmt.Sprintf("%016x-%08x", uint64(t.UnixNano()), nonce)
}

// ValidGeneration reports whether g has NewGeneration's shape.
func ValidGeneration(g string) bool {
	ts, nonce, ok := strings.Cut(g, "-")
	if !ok || len(ts) != 16 || len(nonce) != 8 {
		return false
	}
	_, err1 := hex.DecodeString(ts)
	_, err2 := hex.DecodeString(nonce)
	return err1 == nil && err2 == nil && ts == strings.ToLower(ts) && nonce == strings.ToLower(nonce)
}

// GenerationTime is when generation g was created; false if g is not one.
func GenerationTime(g string) (time.Time, bool) {
	if !ValidGeneration(g) {
		return time.Time{}, false
	}
	ns, err := strconv.ParseUint(g[:16], 16, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, int64(ns)), true
}

// ParseName splits a blob name under Prefix(tenant) into its generation
// and file ("part-NNNNNN" or "manifest"); ok is false for any other name.
func ParseName(tenant, name string) (gen, file string, ok bool) {
	rest, found := strings.CutPrefix(name, Prefix(tenant))
	if !found {
		return "", "", false
	}
	gen, file, found = strings.Cut(rest, "/")
	return gen, file, found && ValidGeneration(gen) && !strings.Contains(file, "/")
}

// Corrupt reports whether err is a pack format error (fault.Corruption).
func Corrupt(err error) bool { return fault.ClassOf(err) == fault.Corruption }
