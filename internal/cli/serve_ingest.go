package cli

import (
	"flag"
	"fmt"
	"time"

	"github.com/cairnstore/cairn/internal/node"
	"github.com/cairnstore/cairn/internal/server"
)

// serveIngestFlags are the bounds of 'cairn serve' on bulk-ingestion streams
// (server.IngestLimits; docs/ingest.md).
type serveIngestFlags struct {
	streams       int
	tenantStreams int
	minRate       byteSize
	rateWindow    time.Duration
}

func (f *serveIngestFlags) register(fs *flag.FlagSet) {
	f.minRate = server.DefaultIngestMinRate
	fs.IntVar(&f.streams, "ingest-streams", server.DefaultIngestStreams, "ingest streams the node serves at once; beyond it: 503 with Retry-After")
	fs.IntVar(&f.tenantStreams, "ingest-tenant-streams", 0, "ingest streams one tenant may hold at once (0: half of --ingest-streams, rounded up); beyond it: 429 with Retry-After")
	fs.Var(&f.minRate, "ingest-min-rate", "slowest an ingest stream may send its body, in bytes (`size`) per second of waiting for the client, averaged over --ingest-rate-window; a slower stream is ended with 408 too_slow; 0 turns the minimum off")
	fs.DurationVar(&f.rateWindow, "ingest-rate-window", server.DefaultIngestRateWindow, "waiting for the client over which --ingest-min-rate is averaged")
}

// config sets cfg.Ingest; an error names each setting where it came from.
func (f *serveIngestFlags) config(cfg *node.Config, o origins) error {
	switch {
	case f.streams < 1:
		return fmt.Errorf("%s: want 1 or more", o.named("ingest-streams", f.streams))
	case f.tenantStreams < 0 || f.tenantStreams > f.streams:
		return fmt.Errorf("%s: want 0 (half of %s) to %s (%d)", o.named("ingest-tenant-streams", f.tenantStreams),
			o.setting("ingest-streams"), o.setting("ingest-streams"), f.streams)
	case f.rateWindow <= 0:
		return fmt.Errorf("%s: want a duration such as 10s", o.named("ingest-rate-window", f.rateWindow))
	}
	cfg.Ingest = server.IngestLimits{Streams: f.streams, TenantStreams: f.tenantStreams,
		MinRate: int64(f.minRate), RateWindow: f.rateWindow}
	if f.minRate == 0 {
		cfg.Ingest.MinRate = -1 // server.IngestLimits: negative is off, 0 the default
	}
	return nil
}
