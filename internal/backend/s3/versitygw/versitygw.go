// Package versitygw builds the command line of versitygw, the S3 gateway
// that the S3 backend's tests, the chaos harness and the replication
// benchmark run on loopback. It imports nothing of testing, so the lab's
// commands may link it.
package versitygw

import "os"

// KeepAlive reports whether gateways are to keep connections open:
// CAIRN_VERSITYGW_KEEPALIVE=1, which the benchmark scripts set. Without
// --keep-alive versitygw closes every connection after its response, so a
// node dials for each call and piles sockets in TIME_WAIT on loopback,
// which a benchmark must not measure. Tests run without it: with it,
// versitygw 1.8.0 now and then answers a request on a reused connection
// with a 400 ("An error occurred when parsing the HTTP request") and an
// unsolicited second response, seen in the conformance suite's blob test.
func KeepAlive() bool { return os.Getenv("CAIRN_VERSITYGW_KEEPALIVE") == "1" }

// Args is versitygw's command line (after the binary) serving dir with its
// posix backend on addr, with the given keys, keeping connections open if
// keepAlive.
func Args(access, secret, addr, dir string, keepAlive bool) []string {
	args := []string{"--quiet"}
	if keepAlive {
		args = append(args, "--keep-alive")
	}
	return append(args, "--access", access, "--secret", secret, "--port", addr, "posix", dir)
}
