package api

import "time"

// ReconcileStatus is the body of GET /v1/admin/reconcile.
type ReconcileStatus struct {
	Backends []BackendStatus `json:"backends"`
	// CatchingUp names the tenants /readyz waits for.
	CatchingUp []string         `json:"catching_up"`
	Collector  *CollectorStatus `json:"collector,omitempty"`
}

// BackendStatus is one backend's breaker and its tenants' progress.
type BackendStatus struct {
	Name    string `json:"name"`
	Breaker string `json:"breaker"` // closed, open or half_open
	// LagSeconds is the replication lag: the age of the oldest change not
	// yet uploaded to the backend.
	LagSeconds float64          `json:"lag_seconds"`
	Tenants    []TenantProgress `json:"tenants"` // tenants the engine serves or has worked on, by name
}

// TenantProgress is one tenant's progress on one backend.
type TenantProgress struct {
	Tenant  string `json:"tenant"`
	Running bool   `json:"running"`
	// CatchingUp: no round of the tenant has completed and the backend
	// may hold documents the node does not; Scanned and Downloaded are the
	// catch-up's progress while its round runs.
	CatchingUp bool `json:"catching_up"`
	Downloaded int  `json:"downloaded,omitempty"`
	// Cursor is the last key fully handled by the round in progress.
	Cursor  string `json:"cursor,omitempty"`
	Scanned int    `json:"scanned"`
	// Started and ResumedAfter describe the round in progress.
	Started      *time.Time `json:"started,omitempty"`
	ResumedAfter string     `json:"resumed_after,omitempty"`
	// Estimate is the number of keys the last whole round scanned: the
	// expected size of this one (absent before a first whole round).
	Estimate int `json:"estimate,omitempty"`
	// PercentDone is Scanned of Estimate while a round runs, below 100
	// until it ends (a resumed round counts only the keys since its
	// cursor, so it reads low); KeysPerSecond is the round's rate so far,
	// and ETASeconds the rest of the estimate at that rate. Each is absent
	// when it cannot be known.
	PercentDone   *float64 `json:"percent_done,omitempty"`
	KeysPerSecond float64  `json:"keys_per_second,omitempty"`
	ETASeconds    *float64 `json:"eta_seconds,omitempty"`
	// Last is the last finished round, LastError its error ("" if none).
	Last      *RoundResult `json:"last,omitempty"`
	LastError string       `json:"last_error,omitempty"`
	// LastUploadError is the last fast-path upload's error ("" if none).
	LastUploadError string `json:"last_upload_error,omitempty"`
	// Held: the mass-deletion guard holds the tenant's deletions on this
	// backend until they are confirmed (runbook 11).
	Held bool `json:"held,omitempty"`
	// Feed is the tenant's change feed on this backend; absent when the
	// feed is off.
	Feed *FeedStatus `json:"feed,omitempty"`
}

// FeedStatus is one tenant's change feed on one backend: what this node
// published and how far it has read each peer's.
type FeedStatus struct {
	Published uint64 `json:"published"` // this node's last feed seq
	Pending   int    `json:"pending"`   // uploaded changes waiting for a feed object
	// Peers maps a peer's node id to the last seq read of its feed.
	Peers map[string]PeerFeed `json:"peers"`
	// Fallback says why a round is awaited to cover a gap in a peer's
	// feed ("" when tailing).
	Fallback string `json:"fallback,omitempty"`
	// PolledAt is when the last poll that read every peer's feed without
	// an error ended; Error is the last poll's error, absent after one
	// succeeds, or says that the poll in progress has waited long on the
	// backend. While polls fail, the peers' lags are those of the last
	// objects read: Error and PolledAt show that nothing newer is.
	PolledAt *time.Time `json:"polled_at,omitempty"`
	Error    string     `json:"error,omitempty"`
}

// PeerFeed is how far a node has read one peer's feed.
type PeerFeed struct {
	Cursor uint64 `json:"cursor"`
	// LagSeconds is from the publication of the last object read to its
	// application; ReadAt is when it was applied (absent before one).
	LagSeconds float64    `json:"lag_seconds"`
	ReadAt     *time.Time `json:"read_at,omitempty"`
}

// RoundResult is one reconciliation round of one tenant on one backend.
type RoundResult struct {
	Backend      string         `json:"backend,omitempty"`
	Tenant       string         `json:"tenant"`
	Started      time.Time      `json:"started"`
	DurationMS   float64        `json:"duration_ms"`
	ResumedAfter string         `json:"resumed_after,omitempty"`
	Scanned      int            `json:"scanned"`
	Applied      int            `json:"applied"` // actions other than in_sync
	Actions      map[string]int `json:"actions,omitempty"`
	Conflicts    int            `json:"conflicts"`
	Losers       int            `json:"losers"`
	Siblings     int            `json:"siblings"`
	Deletes      int            `json:"deletes"`
	Corrupt      int            `json:"corrupt"`
	Repaired     int            `json:"repaired"`
	Raced        int            `json:"raced"`
	BytesUp      int64          `json:"bytes_up"`
	BytesDown    int64          `json:"bytes_down"`
	// Error and NeedsConfirm are set in a run's answer only.
	Error        string `json:"error,omitempty"`
	NeedsConfirm bool   `json:"needs_confirm,omitempty"`
}

// ReconcileRun is the body of POST /v1/admin/reconcile/run.
type ReconcileRun struct {
	// Triggered is true when the rounds were only started (no wait=1).
	Triggered bool          `json:"triggered"`
	Rounds    []RoundResult `json:"rounds,omitempty"`
}

// CollectorStatus is the tombstone collector's part of GET
// /v1/admin/reconcile: its settings and its last pass.
type CollectorStatus struct {
	Grace    string             `json:"grace"`    // --gc-grace, as a Go duration
	Interval string             `json:"interval"` // --gc-interval; "0s": no periodic pass
	LastPass *CollectPassResult `json:"last_pass,omitempty"`
}

// CollectPassResult is one pass of the tombstone collector.
// Waiting counts tombstones past the grace period that some backend does
// not hold yet: a number that stays up means that backend's rounds are
// not getting through.
type CollectPassResult struct {
	Started    time.Time `json:"started"`
	DurationMS float64   `json:"duration_ms"`
	Examined   int       `json:"examined"`
	Collected  int       `json:"collected"`
	Waiting    int       `json:"waiting"`
	Trimmed    int       `json:"trimmed"`
	Error      string    `json:"error,omitempty"`
}

// QuarantineRow is one damaged remote object the reconciler recorded
// before repairing it, with why. Raw, the damaged bytes (base64 in
// JSON), is filled only when one key is asked for.
type QuarantineRow struct {
	Backend string    `json:"backend"`
	Tenant  string    `json:"tenant"`
	Key     string    `json:"key"`
	ETag    string    `json:"etag"`
	Time    time.Time `json:"time"`
	Reason  string    `json:"reason"`
	Size    int64     `json:"size"`
	Raw     []byte    `json:"raw,omitempty"`
}

// QuarantineList is the body of GET /v1/admin/quarantine.
type QuarantineList struct {
	Rows []QuarantineRow `json:"rows"`
}
