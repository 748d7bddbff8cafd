// Package chaos is cairn's fault simulator: a backend wrapper that injects
// the failures of real object stores on a seeded, replayable schedule, the
// crash points (failpoints) of the durable write path and the reconciler,
// and a memory ballast for memory-pressure runs. A node started with
// --enable-chaos wraps every backend with it and lets an operator set
// each backend's fault [Profile] at runtime (PUT /v1/admin/chaos/{backend}).
//
// # Faults
//
// [Wrap] returns a [Backend] that passes calls through until a profile is
// set ([Backend.SetProfile]). Then, for each call it applies to (all, or
// Profile.Ops), in this order:
//
//   - partition "fail": the call fails at once (Transient, EHOSTUNREACH);
//     "hang": it blocks until its context ends or the profile is replaced;
//   - throttle: S3's SlowDown, Transient with a Retry-After;
//   - fail_before: Transient (ECONNRESET); nothing reached the backend;
//   - latency: the call waits (exponential, mean and cap from the profile)
//     before reaching the backend, or until its context ends;
//   - the backend does the call;
//   - Get, corrupt_flip / corrupt_truncate: one bit of the object as read
//     is flipped, or the object is cut short, and the damaged bytes are
//     verified as every backend verifies them (backend.VerifyObject), so
//     the caller sees the fault.Corruption a damaged object produces. The
//     stored object is untouched;
//   - List, stale_list: entries written through the wrapper in the last
//     stale_ms are left out of the page, as in an eventually consistent
//     listing;
//   - fail_after: a call that succeeded is reported as failed (Transient,
//     ECONNRESET). For Put and Delete this is the ambiguous outcome: the
//     write was applied and the caller cannot know it.
//
// Every injection is logged by the [Observer]: node uses [Report], which
// writes the warning "chaos: injected fault" (backend, op, fault, tenant,
// key), increments cairn_chaos_injected_total{backend,fault} and adds a
// "chaos.fault" event to the span of the call's context.
//
// # Replay
//
// Each decision is a hash of the seed, the operation, the tenant and key,
// the call's ordinal among that key's calls of that operation since the
// profile was set, and the fault's name: never a shared random stream. Two
// runs with the same seed that make the same calls per key inject the same
// faults, however their goroutines interleave ([Backend.Schedule] lists
// them). What a stale listing leaves out depends on timing, so it is a log
// note, not part of the schedule.
//
// # Failpoints
//
// [ParseFailpoints] arms crash points from CAIRN_FAILPOINTS
// ("store.commit.after-sync=kill@3,reconcile.apply.before=kill%0.01"); the
// store and the reconciler take [Failpoints.Hit] as a hook that is nil
// when chaos is off, so an unarmed build pays one nil check per commit
// group and per applied key. A firing failpoint logs "chaos: failpoint
// kill" and SIGKILLs the process.
//
// # Where chaos lives
//
// In the serving binary, inert without --enable-chaos: this package (the
// simulator, failpoints, ballast), the serve flags (internal/cli,
// serve_chaos.go), the admin route PUT /v1/admin/chaos/{backend}
// (internal/server) and the chaos metrics (internal/telemetry, chaos.go).
//
// The harness, which is not in the serving binary: the cairn-lab command
// of the lab module (lab/cmd/cairn-lab, which 'cairn chaos run' runs), its
// scenarios, cluster, checkers and report in lab/internal/chaosrun, and
// the scenarios in short form as tests in lab/test/chaos.
//
// # Sharp edges
//
//   - SetProfile restarts the ordinals: replay counts calls from the
//     moment the profile was set, not from the wrapper's creation.
//   - Corruption is injected on reads only; damage at rest (on disk, in a
//     bucket) is the chaos harness's job (it writes the files).
//   - A "hang" partition holds goroutines until their contexts end: a
//     caller without a deadline hangs until the heal.
//   - The schedule keeps the first 100 000 injections; the counts go on.
//   - Report logs every injection at Warn: a high fault rate on a busy
//     node is a lot of log lines, on purpose (each is a fault to find).
package chaos
