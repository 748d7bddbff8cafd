//go:build !cairndebug

package streambuf_test

import (
	"testing"

	"github.com/cairnstore/cairn/internal/streambuf"
)

// Without the tag a stale view is not detected: it silently reads the next
// batch's bytes. This test pins down that hazard (and that the check costs
// nothing), which is why the ingestion tests also run with -tags cairndebug.
func TestStaleViewWithoutTagReadsReusedMemory(t *testing.T) {
	b := streambuf.New(streambuf.Config{})
	stale := b.Add([]byte("AAPL"))
	b.Reset()
	b.Add([]byte("MSFT"))
	if got := stale.String(); got != "MSFT" {
		t.Fatalf("stale view = %q; expected the reused arena's new bytes", got)
	}
	v := b.Add([]byte("x"))
	if n := testing.AllocsPerRun(100, func() { _ = v.Bytes() }); n != 0 {
		t.Fatalf("View.Bytes allocates %v", n)
	}
}
