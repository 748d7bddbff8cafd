package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDevToken: the development token is made once and read back; an
// empty dev-token file (a crash while an older build wrote it in place)
// is replaced with a new token, not served as the empty token, which
// every request would fail; a token put there by hand is kept.
func TestDevToken(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	tok, err := devToken(dir)
	if err != nil || !strings.HasPrefix(tok, "cairn_") {
		t.Fatalf("devToken = %q, %v", tok, err)
	}
	if again, err := devToken(dir); err != nil || again != tok {
		t.Fatalf("second devToken = %q, %v; want %q", again, err, tok)
	}
	path := filepath.Join(dir, "dev-token")
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("dev-token: %v %v, want mode 0600", fi.Mode(), err)
	}
	os.WriteFile(path, []byte("\n"), 0o600)
	if fresh, err := devToken(dir); err != nil || !strings.HasPrefix(fresh, "cairn_") || fresh == tok {
		t.Fatalf("devToken over an empty file = %q, %v; want a new token", fresh, err)
	}
	os.WriteFile(path, []byte(" cairn_mine \n"), 0o600)
	if mine, err := devToken(dir); err != nil || mine != "cairn_mine" {
		t.Fatalf("devToken of a token written by hand = %q, %v", mine, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("data directory holds %d entries, want dev-token only (no temporary file left)", len(entries))
	}
}
