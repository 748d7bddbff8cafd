// Package replbench measures replication between cairn nodes that share
// one S3 backend: versitygw and two nodes (A and B) on loopback, default
// settings, driven over HTTP and observed through their own metrics
// (cairn_backend_operations_total), /readyz and admin routes. It is what
// scripts/bench-replication.sh and 'cairn-lab bench-replication' run.
//
// # Rows
//
//  1. Backend requests node A makes for 1,000 writes of distinct keys,
//     counted once its uploader has drained (lag 0, puts no longer moving).
//  2. Uploads (backend puts) per second while one key is rewritten
//     1,000 times a second.
//  3. Delay from a write acknowledged by A to B serving it from its own
//     store with the same ETag (a 304 to If-None-Match, not read through),
//     for one write in 20 while 2,000 writes/s flow; p50 and p99.
//  4. Catch-up: a third node started on an empty data directory, timed to
//     its /readyz answering 200, in documents per second, with its peak
//     RSS (VmHWM).
//  5. An in-sync round of A over the whole tenant: duration and the
//     objects it read (backend gets).
//
// Rows 4 and 5 first fill the tenant with Options.Docs documents through
// A's NDJSON ingest and wait for A to upload them.
//
// # A/B
//
// Every binary given is measured in turn, each on a cluster of its own,
// and later binaries' figures are printed as ratios of the first's. The
// machine is shared and noisy: compare ratios from one run, not figures
// from different runs.
//
// # Sharp edges
//
// Row 3's poller checks pending probes one at a time, so its resolution
// is the time to poll every pending probe once (milliseconds when B keeps
// up, about a second when thousands wait). Row 1 counts every call A made
// in the window, so a periodic round that starts in it adds its listings
// (shown in the row's detail).
package replbench
