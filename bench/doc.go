// Package bench holds the benchmarks that compare cairn's parts with other
// libraries: the cache with otter, xsync and sync.Map (./cache), the
// MarketData decoder with other JSON decoders (./ingest), and the store's
// durable writes with bbolt (./store). It is a module of its own so that
// the product's go.mod lists only what cairn uses; it reaches cairn's
// internal packages through the replace directive in its go.mod, since its
// import paths lie under cairn's. Benchmarks of cairn alone stay beside
// the code they measure. Run from this directory, for example:
//
//	go test -run '^$' -bench . -benchmem ./cache/
package bench
