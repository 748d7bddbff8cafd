// Package chaosrun runs cairn's chaos scenarios against a real local
// cluster: a versitygw S3 server, a toxiproxy proxy per node→S3 link
// (embedded as a library), and node processes of the real cairn binary, all
// on loopback. It drives load through the public client package, injects
// faults on a seeded schedule, heals, and checks the invariants; `cairn
// chaos run` (which runs `cairn-lab chaos run`) and the tests in
// lab/test/chaos are its two front ends. It is part of the lab module, so
// the serving binary links neither it nor toxiproxy; the fault simulator
// it drives inside the nodes is internal/chaos.
//
// # Parts
//
//   - [Cluster]: the processes and the proxy. Each node replicates to
//     s3=s3://BUCKET/chaos/?endpoint=PROXY (its own proxy in front of the one
//     gateway) and, when asked, to a second backend disk=fs:DIR shared by
//     all nodes. With Options.Chaos the nodes also run their own fault
//     simulator (--enable-chaos), driven through PUT /v1/admin/chaos/s3.
//   - [Schedule]: the fault schedule, a pure function of the seed, so the
//     same seed replays the same faults at the same offsets.
//   - The checkers ([LostWrites], [Divergence], [Unsettled], [PingPong],
//     [CorruptServed], [Linearizable], [ErrorRate], [FaultsVisible]): pure
//     functions of recorded histories, each unit-tested on planted
//     anomalies.
//   - [Scenarios]: load, partition, node-failure, corruption, memory,
//     node-replace.
//   - [Report]: the table and the JSON form.
//
// # Sharp edges
//
// Nodes never talk to each other: they converge through the shared
// backends. A partition that makes two nodes "lose each other" is therefore
// both nodes losing the shared backend (their proxies refuse connections);
// each keeps serving clients from its own store.
//
// A node's API and admin listeners are not behind the proxy: faults sit on
// the node→S3 links only, so client-visible errors measure what the node
// does when its backends fail, not the network to the client.
//
// toxiproxy picks which connections a toxic with toxicity < 1 hits with its
// own unseeded random source; the harness only uses toxicity 1, so the
// schedule alone decides what is injected and when. (The simulator's
// per-call draws are seeded: --chaos-seed is derived from the run's seed.)
// Wall-clock timing is not replayed: on a loaded machine the same schedule
// meets different requests.
//
// The load clients use the client package with its retry rules (and
// enough attempts to outlast a node's restart); every attempt is recorded,
// so the error rate is what callers of the client library see and the
// report says which failures the retries absorbed.
//
// Reconciliation rounds are traced, but a fault's sample trace is a
// client request the faulted node served while the fault was on (the
// harness names its trace id in a traceparent header and finds it in the
// node's json trace file): it proves the node was serving, and where the
// fault failed requests, which ones.
package chaosrun
