package ingest

import (
	"testing"

	"github.com/cairnstore/cairn/internal/ingest/ingesttest"
)

// genRecords returns n deterministic MarketData lines: see
// ingesttest.Records.
func genRecords(n int, seed uint64) []byte { return ingesttest.Records(n, seed) }

func sampleLines(t testing.TB, n int) string {
	t.Helper()
	return string(genRecords(n, 1))
}
