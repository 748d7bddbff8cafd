package api

import "time"

// MaxIngestRejects is how many rejected records an ingest reply lists (the
// first ones, by offset); the counts cover all of them.
const MaxIngestRejects = 100

// IngestResult is the reply of POST /v1/tenants/{tenant}/ingest.
type IngestResult struct {
	// Complete is true when the whole stream was processed. Rejected
	// records do not make it false; a fatal error does.
	Complete bool        `json:"complete"`
	Stats    IngestStats `json:"stats"`
	// ProcessedBytes: every record starting before this offset was either
	// stored durably or rejected. Resume a failed ingest from here.
	ProcessedBytes int64 `json:"processed_bytes"`
	// LastDurableLine is the line of the last record stored durably.
	LastDurableLine int64 `json:"last_durable_line"`
	// Rejects lists the first rejected records (at most
	// MaxIngestRejects); RejectsOmitted counts the others.
	Rejects        []IngestReject `json:"rejects"`
	RejectsOmitted int64          `json:"rejects_omitted"`
	// Error says why a stream stopped (Complete is then false).
	Error *Error `json:"error,omitempty"`
}

// IngestStats are the counts of an ingest.
type IngestStats struct {
	Records        int64   `json:"records"` // Accepted + Rejected
	Bytes          int64   `json:"bytes"`
	Accepted       int64   `json:"accepted"`
	Rejected       int64   `json:"rejected"`
	Malformed      int64   `json:"malformed"`
	Oversize       int64   `json:"oversize"`
	InvalidKey     int64   `json:"invalid_key"`
	DurationMS     float64 `json:"duration_ms"`
	ThroughputMBps float64 `json:"throughput_mb_s"` // 10^6 bytes per second
	RecordsPerSec  float64 `json:"records_per_s"`
	Batches        int64   `json:"batches"` // store group commits
}

// Duration is the server-side duration.
func (s IngestStats) Duration() time.Duration {
	return time.Duration(s.DurationMS * float64(time.Millisecond))
}

// IngestReject is one record the server did not store.
type IngestReject struct {
	Line   int64  `json:"line"`   // 1-based
	Offset int64  `json:"offset"` // byte offset of the record in the stream
	Kind   string `json:"kind"`   // malformed, oversize or invalid_key
	Reason string `json:"reason"`
}
