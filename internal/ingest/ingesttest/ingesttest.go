// Package ingesttest generates MarketData input for the tests and
// benchmarks of package ingest and for the peer benchmarks of the bench
// module, so that every measurement reads the same records.
package ingesttest

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strings"
)

var (
	genSymbols   = []string{"AAPL", "MSFT", "GOOG", "AMZN", "NVDA", "TSLA", "META", "BRK.B", "JPM", "V"}
	genExchanges = []string{"NASDAQ", "NYSE", "LSE", "XETRA", "TSE"}
	genSources   = []string{"consolidated-feed", "direct-feed", "sip"}
)

// Records returns n deterministic MarketData lines (NDJSON). About one in
// eight has an escaped symbol, one in four an extra_info, one in three a
// null raw_feed, one in ten an unknown field.
func Records(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 42))
	var sb strings.Builder
	feed := make([]byte, 48)
	for i := range n {
		sym := genSymbols[r.IntN(len(genSymbols))]
		if i%8 == 7 {
			sym = sym + `\u00e9`
		}
		fmt.Fprintf(&sb, `{"symbol":"%s","price":%d.%02d,"volume":%d,"metadata":{"exchange":"%s","data_source":"%s"`,
			sym, 10+r.IntN(990), r.IntN(100), r.IntN(1_000_000), genExchanges[r.IntN(len(genExchanges))], genSources[r.IntN(len(genSources))])
		if i%4 == 0 {
			fmt.Fprintf(&sb, `,"extra_info":"auction %d"`, i)
		}
		sb.WriteString(`}`)
		switch {
		case i%3 == 0:
			sb.WriteString(`,"raw_feed":null`)
		default:
			for j := range feed {
				feed[j] = byte(r.Uint32())
			}
			fmt.Fprintf(&sb, `,"raw_feed":"%s"`, base64.StdEncoding.EncodeToString(feed))
		}
		if i%10 == 0 {
			sb.WriteString(`,"sequence":{"n":[1,2,3],"ok":true}`)
		}
		sb.WriteString("}\n")
	}
	return []byte(sb.String())
}
