// Package loadgen is cairn's HTTP load generator: closed-loop clients, each
// on its own keep-alive connection, that send GETs, PUTs or a mix to a node
// (or to [Bare], the baseline handler) and record every request's latency
// in a log-linear [Histogram]. 'cairn bench' (which runs 'cairn-lab
// bench') is its command line.
//
// # Closed loop
//
// Each of Config.Conns workers sends its next request as soon as the
// previous response has been read, so the offered load adapts to the
// server: req/s is the server's capacity at that concurrency, and latency
// includes no queueing in the generator (as with wrk; unlike an open-loop
// generator, a stall is not charged to the requests that would have been
// sent during it). Only requests that start and end inside the measured
// window count, after an unmeasured warm-up.
//
// # The generator must not be what is measured
//
// Client and server share the machine's cores, so every microsecond of CPU
// the generator spends per request is one the server does not get. The
// default [ClientRaw] writes pre-built requests (a GET is one Write of
// bytes made before the run) and parses only the status line and the
// framing headers. Measured against the bare handler on a 2-core box, it
// used 6.7µs of CPU per request, where net/http's client ([ClientHTTP])
// used 22.7µs, and the bare handler's rate was 50K req/s with the raw
// client and 26K with net/http's: with net/http's client, the generator is
// the bottleneck.
//
// # Concurrency
//
// A worker owns its connection, histogram and counters; Run merges them
// after every worker has stopped, so the request path takes no lock. The
// only cross-goroutine call is the interrupt that cancelling Run's context
// makes, which sets the connection's deadline to now.
//
// # Caveats
//
// The raw client speaks just enough HTTP/1.1 for servers that frame every
// response with Content-Length or chunked encoding (as net/http does); a
// response framed by closing the connection counts as an error. It does not
// follow redirects or speak TLS.
package loadgen
