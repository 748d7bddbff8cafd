// Package streambuf is a buffer with two lifetimes, used by ingestion to hand
// out zero-copy views of decoded records.
//
// # Regions
//
// A [Buffer] has two regions:
//
//   - The long-lived region holds interned strings (exchange names, data
//     sources, configuration symbols). [Buffer.Intern] copies a value in once
//     and returns a Go string that stays valid for as long as anything refers
//     to it, including after [Buffer.Reset] and after the Buffer itself is
//     dropped. [Buffer.Persistent] lists them. The region is bounded
//     ([Config]); past the bound Intern reports false and callers fall back to
//     a short-lived view.
//   - The short-lived region holds the current batch: [Buffer.Add] copies an
//     item in and remembers it, [Buffer.Ref] wraps caller-owned bytes (the
//     input chunk) without copying, and [Buffer.Grow]/[Buffer.Commit] let a
//     decoder write straight into the arena. [Buffer.Recent] is a zero-copy
//     slice of the N most recent items. Everything in this region is valid
//     until the next [Buffer.Reset], which reuses the memory.
//
// # Lifetimes
//
// The garbage collector keeps any referenced array alive, so a view never
// dangles. What Go cannot prevent is reuse: after Reset the short region's
// memory is overwritten by the next batch, and a retained view silently
// reads the new batch's bytes. So:
//
//   - Strings from the long-lived region are immutable and GC-owned: they
//     outlive every short-lived view and may be stored anywhere.
//   - A [View] is valid until the next Reset of the Buffer that made it.
//     Code that needs the data longer copies it ([View.String], or
//     append(dst, v.Bytes()...)) or interns it.
//
// # Debug build tag
//
// Built with -tags cairndebug, every View records the Buffer's generation
// and every accessor checks it: using a short-lived view after its region
// was reset panics with "streambuf: use of short-lived view after Reset".
// Without the tag the guard is a zero-size struct and the check compiles away,
// so views cost exactly a slice header. Run the ingestion tests with the tag
// to catch retained views.
//
// # Concurrency
//
// A Buffer is not safe for concurrent use: one goroutine owns it at a time
// (ingestion hands a batch's Buffer from a decode worker to the handler over a
// channel). Views may be read from any goroutine until the owner calls Reset;
// the debug generation counter is atomic so the check itself is race-free.
//
// # Sharp edges
//
//   - Never modify the bytes returned by [View.Bytes]: they may be an interned
//     string's memory or the caller's input.
//   - A View made by Ref is only as valid as the bytes it wraps: Reset does
//     not own them, so the caller must keep them unchanged until Reset.
package streambuf
