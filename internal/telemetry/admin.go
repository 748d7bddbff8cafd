package telemetry

import (
	"net/http"
	"net/http/pprof"
)

// MetricsHandler serves cairn's registry (/metrics on the admin listener).
func (t *Telemetry) MetricsHandler() http.Handler { return t.Metrics.Handler() }

// TenantStatsHandler serves the per-tenant counters as JSON; see
// [Metrics.TenantStatsHandler].
func (t *Telemetry) TenantStatsHandler() http.Handler { return t.Metrics.TenantStatsHandler() }

// PprofHandler serves net/http/pprof under /debug/pprof/ (index, cmdline,
// profile, symbol, trace and the named profiles). Mount it at "/debug/pprof/"
// on the admin listener only.
//
// Importing net/http/pprof also registers these handlers on
// http.DefaultServeMux; cairn never serves DefaultServeMux, and must not.
func PprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
