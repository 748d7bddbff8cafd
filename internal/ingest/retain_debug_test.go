//go:build cairndebug

package ingest

import (
	"context"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/internal/streambuf"
)

// TestRetainedViewPanics: a Handler that keeps a record's view past its
// return is caught by the cairndebug generation check.
func TestRetainedViewPanics(t *testing.T) {
	var kept, exchange streambuf.View
	h := func(_ context.Context, b *Batch) error {
		kept, exchange = b.Records[0].Market.Symbol, b.Records[0].Market.Exchange
		return nil
	}
	if _, err := ProcessBytes(context.Background(), genRecords(1, 1), Options{Schema: MarketDataSchema}, h); err != nil {
		t.Fatal(err)
	}
	_ = exchange.Bytes() // interned: permanent, must not panic
	defer func() {
		msg, _ := recover().(string)
		if !strings.Contains(msg, "use of short-lived view after Reset") {
			t.Fatalf("retained view: panic %q, want use-after-Reset", msg)
		}
	}()
	_ = kept.Bytes()
}
