// Package reconcile keeps a node's store and each of its backends in
// agreement. Its design (deciding, resolving, siblings, the engine,
// collecting tombstones) is docs/design/reconcile.md.
//
// # Basics
//
// The pure core decides, for one key, what to do from the node's version,
// the backend's and the base last synced between them ([Decide],
// [Explain]); resolves concurrent versions under a tenant's policy, lww,
// merge or manual ([Resolve], [MergeJSON]); and guards against mass
// deletion ([Guard]). It does no I/O, reads no clock and keeps no state,
// so every node fed the same versions makes the same version: resolving
// never starts a conflict of its own. The table in decide_test.go
// (TestDecideTable) is the specification of Decide.
//
// An [Engine] ([New]) does the I/O for one (store, backend) pair:
// [Engine.Upload] drains a tenant's change log to the backend (the fast
// path: one conditional put per changed key, coalesced by
// Config.CoalesceWindow under Run), [Engine.Round] merge-joins the store's listing, the backend's and
// the bases, deciding and applying key by key (the safety net), and
// [Engine.Run] runs both for every tenant the node serves. With
// Config.Feed, the engine also publishes what it writes to the backend as
// feed objects and applies its peers' through the same one-key sync
// (docs/design/replication.md, "Change feed"). A [Collector]
// over all of a node's engines removes tombstones every backend holds, past
// a grace period, and trims the change log every uploader has passed. A
// completed round may write a catch-up pack of the tenant ([PackConfig],
// [Engine.WritePack]), from which an empty node restores it before its
// first round ([Engine.Restore]; docs/design/replication.md).
//
// # Concurrency
//
// [Engine.Run] is the one goroutine that runs an engine's rounds, fed by
// bounded inboxes ([Engine.Trigger], [Engine.Changed], [Engine.RunRound]);
// the drains of change logs it is told of run on goroutines it starts and
// waits for, several tenants at once and never two drains of one tenant, so
// the uploader's state is locked; a pass gives tenants turns of
// Config.TurnKeys keys, so a small tenant is not kept waiting behind a big
// one. The round and the uploader take a key's slot in a shared [InFlight]
// before deciding on it, so they never act on one key at once. Every
// backend call goes through the engine's resilience.Policy and takes one of
// its concurrency slots and rate tokens. Progress, CatchingUp and
// ReplicationLag are safe from any goroutine. The feed's publisher and
// tailer are two goroutines Run starts and waits for; a gap's fallback
// round goes through RunRound. Close stops Run and waits for it.
//
// # Sharp edges
//
//   - Progress is checkpointed every Config.CheckpointEvery keys; a round
//     after a crash resumes there and redoes at most that many, which is
//     safe because every action is idempotent.
//   - A round that would delete more of a tenant than the Guard allows
//     stops with [ErrNeedsConfirm]; [Engine.Confirm] lets the next one
//     through. The uploader does not consult the guard.
//   - While the backend's breaker is open a pass stops with
//     [ErrBackendUnavailable] and resumes when a probe may go through.
//   - The collector's grace period must exceed the longest time a node
//     sharing a backend may go without a round over it; a node kept away
//     longer must rejoin with an empty data directory, or it undoes deletes.
//   - MergeJSON compares numbers by their text (1 and 1.0 differ) and
//     treats arrays as atomic.
//   - A sibling set holds every sibling's body, and nothing bounds how many
//     concurrent versions join one set.
//   - Until one of its rounds has completed, a tenant is catching up
//     ([Engine.CatchingUp]): the node may lack documents the backend has.
//   - A restore from a pack runs within one turn of Run: the engine's
//     other tenants and its uploader wait for it.
//   - With Config.Digests a round lists only the key ranges whose digests
//     differ (docs/design/replication.md): an object damaged or removed
//     behind the nodes' backs is found by the scrub (Config.ScrubRate,
//     [Engine.Scrub]), not by the next round. A write whose digest delta
//     was not published yet is skipped by other nodes' rounds until its
//     writer publishes or corrects it.
package reconcile
