// Package storetest damages a closed store's files the way a failing disk
// would, for tests of what the store, the node and the binary do about it.
package storetest

import (
	"os"
	"path/filepath"
	"testing"
)

// CorruptManifest flips every byte after the first 16 of the manifests of
// the closed store in dataDir (the files that list the database's tables),
// so that opening it fails as a corrupt store.
func CorruptManifest(t testing.TB, dataDir string) {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dataDir, "pebble", "MANIFEST-*"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no manifest in %s: %v", dataDir, err)
	}
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for i := 16; i < len(b); i++ {
			b[i] ^= 0xff
		}
		if err := os.WriteFile(name, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
