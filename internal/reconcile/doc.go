// Package reconcile is cairn's reconciler. Its pure core, for one key,
// decides what to do from what the node, a backend and their last synced
// state hold ([Decide], [Explain]); it resolves conflicting versions under a
// tenant's policy ([Resolve], [MergeJSON]); it guards against mass deletion
// ([Guard]). The core does no I/O, reads no clock and keeps no state, so
// every node that feeds it the same versions gets the same answers. The
// [Engine] (see "Engine" below) lists, reads, writes and checkpoints on top
// of it; the [Collector] removes tombstones every backend has and the
// change log every backend has read (see "Collecting tombstones").
//
// # Deciding
//
// The merge-join gives, for each key, a local [Side] (the node's version),
// a remote Side (the backend's ETag, and its version if the object header
// was read) and a base Side (store.SyncState: the version last synced and
// the backend's ETag for it). A nil Side is absent. Deletes are tombstone
// versions, so a delete travels as an Upload or Download of a tombstone;
// [Decision.Deletes] marks the actions that turn a live document into one.
//
//   - Neither side has the key: InSync without a base, else UpdateBase
//     (forget the base).
//   - The remote's ETag equals the base's: the remote holds the base
//     version; no read is needed. Otherwise, if its version is unknown:
//     FetchRemote (read it, then decide again).
//   - A base tombstone is a floor: a side without the key (it collected the
//     tombstone) or with a version the tombstone dominates (an older copy,
//     restored from a backup) stands for the tombstone. So an old copy is
//     deleted again, never copied back. A side without the key while the
//     base is live lost it: it gets it back (Upload or Download) — a wiped
//     bucket is refilled, not mirrored as deletions.
//   - Only one side has the key: Upload or Download.
//   - Both hold the same version (by ID): InSync when the base is that
//     version with the remote's ETag, else UpdateBase. (Both holding a
//     version concurrent with a base tombstone is a Conflict with it.)
//   - Otherwise the version vectors decide: local After remote → Upload;
//     Before → Download; Concurrent → Conflict. Equal vectors with
//     different IDs (see below) → Conflict, which Resolve settles without
//     a new version.
//
// The base thus serves three purposes: recognising an unchanged remote by
// its ETag, knowing when to record a new base, and remembering deletes.
// Causality never comes from it: only vectors order versions. The table in
// decide_test.go is the specification, case by case.
//
// # Resolving
//
// [Resolve] first checks causality: the same version, or one dominating the
// other, is Ordered and returned unchanged, so resolving a result against
// its inputs again is a no-op. Concurrent versions with the same content
// (two deletes, two identical writes) are Merged. Otherwise the policy
// decides: LWW picks the winner of [doc.Version.Wins] and reports the loser;
// Merge runs [MergeJSON] against the ancestor (which must be a live common
// ancestor) and falls back to LWW or Manual when it cannot merge (no
// ancestor, a delete against an update, a field changed on both sides, a
// type clash); Manual keeps both as Siblings.
//
// # Siblings
//
// Kept siblings are a version of their own: a sibling set
// (doc.MakeSiblings), whose body holds every kept version, LWW winner
// first, and whose vector is their pointwise maximum. The engine writes it
// to the backend and the store like any resolution, so every node comes to
// hold the same set (a node holding one sibling downloads the set, which
// dominates it) and answers 409 for the document until a person resolves
// it. A version concurrent with a set joins it, whatever the policy says
// now: Resolve returns the set of the union, dropping members that another
// member dominates, so sets made from the same versions in any order are
// the same version. A person resolves by writing over the set (store.Put
// naming a sibling in If-Match; the server's /conflicts routes): that
// version derives from the set, so it dominates every sibling and travels
// as an ordinary Upload or Download; what it did not keep goes to the
// conflict history (store: siblings.go).
//
// # Why resolution is deterministic
//
// Two nodes resolving the same conflict must make the same version (the
// same ID), or their results would conflict with each other and the nodes
// would resolve forever. So the result is a function of the two versions
// alone, and of neither node:
//
//   - Resolve orders its arguments by last-writer-wins (made total by
//     comparing IDs last) before looking at them, so Resolve(a, b) and
//     Resolve(b, a) run the same computation.
//   - The vector is the pointwise maximum of the two, with no counter
//     bumped: a bump by the resolving node would differ between nodes. The
//     maximum dominates both inputs and nothing else.
//   - The HLC is the larger of the two; the writer is the winner's; the
//     parent is the winner's ID. No node reads its own clock or writes its
//     own incarnation.
//   - A merged body is canonical JSON (object keys sorted by their bytes,
//     minimal string escaping, numbers as their literal text), so equal
//     merges are equal bytes, whichever side was which.
//
// # Engine
//
// [Engine] is the I/O on top: one per (store, backend) pair. [Engine.Round]
// merge-joins the store's listing (tombstones included) with the backend's
// and with the bases (store.ListSyncState), one page of each in memory, and
// for each key takes its base, decides, and applies. A listed base is used
// only if no sync-state row was written since its page was read
// (store.SyncUnchanged, checked holding the key's in-flight slot);
// otherwise, and for merge tenants (whose bases carry bodies the listing
// leaves out), the base is looked up (store.SyncState):
//
//   - Upload: backend.Put if-match the listed ETag (if-none-match when there
//     was nothing), then the new base. The body is read from the store and
//     must still be the decided version.
//   - Download: backend.Get (unless already read), then store.Apply with a
//     compare-and-set on the local version the decision saw and the new base
//     in the same batch. A local write made meanwhile fails the CAS: the key
//     is skipped (Stats.Raced) and the next round sees the write.
//   - Conflict: [Resolve] under the tenant's policy (Config.PolicyFor, lww by
//     default); the loser is written to the store's conflict history first;
//     then the result (a sibling set, when siblings are kept) goes to the
//     backend (if-match) and to the store (CAS).
//     Under merge, the ancestor is the base: every base recorded for a
//     merge tenant keeps the version's body (store.SyncState.Body), and
//     Resolve gets it when it is live and a common ancestor of both sides
//     (ancestor.go says what that costs).
//   - A remote object that fails verification (fault.Corruption) is counted
//     (Stats.Corrupt) and never applied; when the node has the key, the
//     damaged object is first quarantined (store.PutQuarantine: its ETag,
//     the verification error, and the first backend.MaxDamagedRaw bytes
//     the backend returned with the error, backend.Damaged; Stats.
//     Quarantined), then its copy overwrites the damaged object (if-match;
//     Stats.Repaired). A node without the key records nothing: the damaged
//     object stays in place for one that has it.
//
// Keys are handled one at a time, in order, so "the last key fully handled"
// is exact: it is checkpointed every Config.CheckpointEvery keys
// (store.PutCheckpoint), kept when a round fails, and cleared when a round
// finishes. A round after a crash resumes after it, redoing at most one
// interval; every action is idempotent (an upload already made is found in
// sync, or only its base is recorded).
//
// Every backend call goes through the resilience.Policy; while its breaker
// is open the round ends at once with [ErrBackendUnavailable].
//
// A pass covers every tenant the node serves ([Engine.Discover]): the
// configured ones (Config.Tenants), those with rows in the store, and those
// the backend holds. A tenant is catching up until one of its rounds has
// completed, which its checkpoint then records ([Engine.CatchingUp],
// catchup.go): until then the node may lack documents the backend has, and
// [Engine.ReadThrough] reads one for a client without storing it.
//
// The mass-deletion guard is checked as the round goes: before each action
// that deletes a live document, against the larger of the tenant's live
// local documents and live bases (counted once, at the round's first
// deletion). The round stops at the first deletion the [Guard] refuses,
// with [ErrNeedsConfirm]; deletions before it, within the guard's
// allowance, are applied. [Engine.Confirm] lets the next round through.
// (A dry-run pass would know the total first but would list the backend
// twice.)
//
// [Engine.Upload] is the fast path: it drains the tenant's change log
// after a position kept in the same checkpoint row, syncing each changed
// key (store.Get, backend.Stat, Decide, apply as above) with bounded
// concurrency, a page at a time. It does not consult the guard.
//
// Concurrency: [Engine.Run] is the one goroutine that runs rounds and
// drains, fed by three inboxes: triggers (a pass over every tenant),
// requests ([Engine.RunRound]) and changed ([Engine.Changed]). [InFlight]
// is the key set the reconciler and the uploader both take before deciding
// on a key, so they never act on one key at once. [Engine.Progress] is
// safe from any goroutine.
//
// Fairness: a pass interleaves tenants. Each turn drains up to
// Config.TurnKeys changes of a tenant's log, or once it is drained handles
// up to TurnKeys keys of its round, then goes to the back of the queue; a
// round waits between turns as its state (cursor, stats), not its pages.
// A small tenant's round ends a few turns into the pass, however big the
// tenants before it. A round's Stats.Duration is its wall time, other
// tenants' turns included. RunRound of a tenant whose round the pass has
// started carries that round to its end. A drain asked for by Changed is
// a turn too: a longer log goes back to the end of the inbox.
//
// Backpressure: keys are handled one at a time, in order, and a page of
// either listing is read only when the previous one is used up, so a slow
// backend slows the listing; the uploader holds one page of the change
// log. Run's inboxes are bounded: a full changed inbox turns into a
// pending pass (which drains every tenant), triggers coalesce, RunRound
// waits. Nothing queues without bound.
//
// Limits: every backend call of an engine (round and uploader alike) takes
// one of Config.Limits.Concurrency slots (DefaultConcurrency by default)
// and, when set, a token of an ops/s bucket; document bytes pass a bytes/s
// bucket (a write before it is sent, a read after it arrives). The waits
// honour the caller's context and happen outside the resilience policy, so
// a throttled call never times out an attempt or trips the breaker. One
// engine per backend (as the node runs them) makes these per-backend
// limits.
//
// Open breaker: a call is refused without reaching the backend while the
// breaker is open and its delay has not passed (resilience.Policy.OpenFor;
// after the delay the call goes through and is the half-open probe). A
// pass that meets it stops: started rounds are paused with their cursors
// saved, later tenants are skipped, and Run comes back when the breaker
// lets a probe through, with or without Config.Interval. An upload refused
// the same way arms the same retry.
//
// Observability: the Observer hears of rounds, keys (at each checkpoint
// and turn), applied actions (in_sync included), conflicts and bytes;
// [Engine.ReplicationLag] is the age of the oldest change not yet uploaded
// (known from Changed, or from the log once Upload has read it; 0 when
// drained), read at scrape time. With Config.Tracer each round is a span
// (reconcile.round: tenant, backend, resumed_after, scanned, actions,
// conflicts, bytes) and its decisions children (reconcile.decision: key,
// action, reason): every action but InSync, and one InSync in
// Config.SampleInSync. The uploader makes no spans.
//
// # Collecting tombstones
//
// A delete is a tombstone version, kept until every backend has it. The
// [Collector] (one per node, over all of its engines, since it needs every
// backend's base) removes a tombstone t when
//
//   - the node holds t, or nothing (an earlier collection got halfway);
//   - every backend's base for the key is t with the backend's ETag
//     recorded: each backend has acknowledged t;
//   - t's HLC time is more than the grace period ago
//     (CollectorConfig.Grace, DefaultGrace 24h; cairn serve --gc-grace).
//
// It deletes each backend's object if-match the recorded ETag (an object
// already gone counts as deleted: another node sharing the backend
// collected it first; any other object is a newer write, and the key
// waits for the rounds), then the node's row and every base in one store
// batch (store.Collect). A failure in between is harmless: by the floor
// rule a side without the key while the base is the tombstone stands for
// the tombstone, so rounds find the key in sync, and the next pass goes on.
//
// The grace period is the whole defence of the nodes that have not yet
// seen the delete. Such a node (its base still the live version) learns
// the delete from the backend's tombstone at its next round over that
// backend. Once the backend's copy is collected, the node would instead
// find "the backend lost the key" and upload its live copy back: the
// delete undone. Within the grace period nothing is removed anywhere, so
// the rule is: the grace period must exceed the longest time a node
// sharing a backend may go without a round over it — the longest
// partition you tolerate, plus the reconcile interval. A node kept away
// longer must rejoin with an empty data directory, not its old one.
// (Clock skew between the deleting node and a collecting node eats into
// the grace period, which is measured against the tombstone's HLC.)
//
// A key written again after its tombstone was collected starts a new
// history. Other nodes may still hold the tombstone until their own pass;
// the store starts a first version's vector counter at its commit
// sequence, above any counter the node gave the key before, so the new
// write is never dominated by the old tombstone (at worst concurrent with
// it, settled by the tenant's policy), and the floor rule cannot delete it.
//
// The same passes trim the change log: entries at or below the smallest
// upload position (the uploader's checkpoint) over every engine go, so a
// backend that is down, or new (position 0), keeps them until its
// uploader has passed them. With no backends the whole log goes.
//
// # Sharp edges
//
//   - Without a counter bump, a version no longer owns a unique vector
//     entry. Resolutions of overlapping conflicts made in different orders
//     (res(res(a,b),c) on one node, res(a,res(b,c)) on another) can share a
//     vector and differ in parent or, under Merge, in body. Decide calls
//     that a Conflict; Resolve keeps the LWW winner unchanged (under any
//     policy) and reports the loser when its content differed. That is one
//     more round, never a loop.
//   - Upload and Download name the version to write in [Decision.Local]
//     and [Decision.Remote], which is the base tombstone when a side is
//     floored: the engine writes that tombstone (it has no body) rather
//     than reading the side, which may not have it.
//   - Both sides older than a base tombstone: the node gets the tombstone
//     first (Download), and the backend on the next round.
//   - A Conflict's Decision.Local or Remote may be the base tombstone; the
//     engine resolves those versions, not necessarily what the sides hold.
//   - MergeJSON compares numbers by their text, so 1 and 1.0 differ. It
//     treats arrays as atomic. A field added on both sides with different
//     values is a conflict even when both are objects.
//   - The merge result's HLC is not the time of the merge; a write made
//     later with a slower clock can still lose LWW to it.
//   - Two nodes that find the same conflict with different bases (one kept
//     the ancestor, one did not, as after a switch to merge) make different
//     results with equal vectors: one more Conflict, settled by LWW between
//     the two results (see the first sharp edge).
//   - Resolve verifies every body against its version's hash (SHA-256),
//     which costs a pass over each body (and each sibling's, in a set).
//   - A sibling set holds every sibling's body, so its object is their sum;
//     nothing bounds how many concurrent versions join one set.
//   - A collector pass reads the first engine's sync states (without
//     backends: every document) of every tenant; the interval between
//     passes (--gc-interval) is what bounds that cost. A tenant whose
//     documents were all collected drops out of store.Tenants, so log
//     entries an uploader had not yet passed then stay until it writes
//     again.
//   - A live copy that a base tombstone dominates is deleted without
//     asking; the engine should count [Decision.Deletes] into the [Guard]
//     before applying a round's deletions.
package reconcile
