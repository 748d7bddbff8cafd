package ingest

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Outstanding reports pooled batches not yet returned, for tests.
func Outstanding() int64 { return outstanding.Load() }
