// Command gen-ndjson writes a deterministic MarketData-shaped NDJSON file for
// ingest tests and benchmarks: ~180-byte records with the MarketData
// schema's fields, each with a unique symbol, so every record is its own
// document.
//
//	go run ./scripts/gen-ndjson -size 1GiB -out /tmp/md.ndjson
//	go run ./scripts/gen-ndjson -size 1MiB -bad 1000 -out /tmp/small.ndjson
//
// -bad N makes every Nth line invalid (cycling through a truncated record,
// a record without its symbol, and a negative volume), for exercising the
// reject path. The output is buffered and streamed: memory stays small
// whatever -size says.
package main

import (
	"bufio"
	"encoding/base64"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
)

var (
	exchanges = []string{"NASDAQ", "NYSE", "LSE", "XETRA", "TSE"}
	sources   = []string{"consolidated-feed", "direct-feed", "sip"}
)

func main() {
	size := flag.String("size", "100MiB", "stop after this many bytes (B, KiB, MiB, GiB suffixes)")
	out := flag.String("out", "", "output `file` (default stdout)")
	bad := flag.Int("bad", 0, "make every `N`th line invalid (0: none)")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	limit, err := parseSize(*size)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen-ndjson: -size:", err)
		os.Exit(2)
	}
	w := os.Stdout
	if *out != "" {
		if w, err = os.Create(*out); err != nil {
			fmt.Fprintln(os.Stderr, "gen-ndjson:", err)
			os.Exit(1)
		}
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	n, err := generate(bw, limit, *bad, *seed)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil && w != os.Stdout {
		err = w.Close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen-ndjson:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "gen-ndjson: %d records\n", n)
}

// generate writes records until limit bytes are written; it returns the
// number of lines.
func generate(w *bufio.Writer, limit int64, bad int, seed uint64) (int64, error) {
	r := rand.New(rand.NewPCG(seed, 7))
	feed := make([]byte, 36)
	var written, i int64
	var line []byte
	for written < limit {
		i++
		for j := range feed {
			feed[j] = byte(r.Uint32())
		}
		line = fmt.Appendf(line[:0], `{"symbol":"SYM%09d","price":%d.%02d,"volume":%d,"metadata":{"exchange":"%s","data_source":"%s"},"raw_feed":"%s"}`,
			i, 10+r.IntN(990), r.IntN(100), r.IntN(1_000_000), exchanges[r.IntN(len(exchanges))],
			sources[r.IntN(len(sources))], base64.StdEncoding.EncodeToString(feed))
		if bad > 0 && i%int64(bad) == 0 {
			switch (i / int64(bad)) % 3 {
			case 0:
				line = line[:len(line)/2] // truncated: invalid JSON
			case 1:
				line = []byte(strings.Replace(string(line), `"symbol"`, `"sym"`, 1)) // no key
			default:
				line = []byte(strings.Replace(string(line), `"volume":`, `"volume":-`, 1)) // MarketData field error
			}
		}
		line = append(line, '\n')
		n, err := w.Write(line)
		written += int64(n)
		if err != nil {
			return i, err
		}
	}
	return i, nil
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(s, u.suf) {
			s, mult = strings.TrimSuffix(s, u.suf), u.m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("want a positive size such as 1048576, 100MiB or 1GiB")
	}
	return n * mult, nil
}
