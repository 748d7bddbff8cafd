package reconcile

import "time"

// Stats describe one round, or one uploader drain, for telemetry and the
// admin endpoint.
type Stats struct {
	Tenant  string
	Started time.Time
	// Duration is the wall time from start to end.
	Duration time.Duration
	// ResumedAfter is the checkpoint cursor the round started after; "" for
	// a round from the first key.
	ResumedAfter string
	// Scanned counts the keys of the merge-join (the uploader: changes).
	Scanned int
	// Actions counts the decisions applied, by Action (FetchRemote counts
	// the reads, each followed by a second decision).
	Actions [numActions]int
	// Conflicts counts resolutions; Losers the lww losers recorded in the
	// conflict history; Siblings the manual conflicts left for a person.
	Conflicts, Losers, Siblings int
	// Deletes counts applied actions that deleted a live document.
	Deletes int
	// Corrupt counts remote objects that failed verification: never
	// applied. Repaired counts those overwritten with the local copy.
	Corrupt, Repaired int
	// Quarantined counts damaged objects recorded in the store's
	// quarantine before their repair (see Engine.repair).
	Quarantined int
	// Raced counts keys skipped because one side changed between the
	// decision and its application (a failed compare-and-set or
	// precondition): the next round handles them.
	Raced int
	// BytesUp and BytesDown count document bytes written to the backend
	// and to the store.
	BytesUp, BytesDown int64
	// Listed counts the remote objects a round listed; Skipped the
	// segments of the tenant's layout it did not list because their
	// digests matched (docs/design/replication.md).
	Listed, Skipped int
}

// Applied returns the number of actions other than InSync and
// FetchRemote: what a round after convergence should report as 0. A
// FetchRemote is a read that leads to the key's real action, counted on
// its own; counted too, a download read first would count twice.
func (s *Stats) Applied() int {
	n := 0
	for a, c := range s.Actions {
		if Action(a) != InSync && Action(a) != FetchRemote {
			n += c
		}
	}
	return n
}

// Progress is what an admin endpoint shows for one tenant on one backend.
type Progress struct {
	// Running is true while a round is in progress; Cursor is then the
	// last key fully handled, Started when it started and ResumedAfter
	// the cursor it resumed after ("" from the first key).
	Running      bool
	Cursor       string
	Started      time.Time
	ResumedAfter string
	// Scanned counts the keys of the round in progress, updated every
	// 100 keys, at each checkpoint and at each turn; Cursor only at
	// checkpoints and turns.
	Scanned int
	// Downloaded counts the versions the round in progress has written to
	// the store from the backend, updated with Scanned; while the tenant
	// catches up, those its restore from a catch-up pack wrote too
	// (restored, added by Engine.Progress).
	Downloaded int
	restored   int
	// CatchingUp is true while no round of the tenant has completed and
	// the backend may hold documents the node does not (see
	// Engine.CatchingUp); Scanned and Downloaded then show the catch-up's
	// progress.
	CatchingUp bool
	// Estimate is the number of keys the last whole round (not resumed,
	// no error) scanned: the expected size of the next one; 0 unknown.
	Estimate int
	// Last is the last finished round and
	// LastErr its error.
	Last    Stats
	LastErr error
	// LastUploadErr is the error of the last fast-path upload (nil if it
	// succeeded): the uploader runs on its own, so this is where its
	// failures show.
	LastUploadErr error
}

const numActions = int(Conflict) + 1
