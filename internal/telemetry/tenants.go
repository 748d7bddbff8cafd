package telemetry

import (
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
)

// Rows that are not a tenant's. Tenant ids are [a-z0-9][a-z0-9-]*, so
// neither can name a real tenant.
const (
	// OverflowTenant collects the tenants that arrive after the table is
	// full (the console shows their requests together).
	OverflowTenant = "_other"
	// unauthenticatedTenant collects the requests that did not authenticate
	// for the tenant they name: anyone can make up a name in a path, so
	// giving each one a row would let strangers fill the table.
	unauthenticatedTenant = "_unauthenticated"
)

// tenantTable holds per-tenant counters: the figures that must not become
// Prometheus labels (one series per tenant is unbounded cardinality). It is
// bounded: the first max authenticated tenants seen get a row each, later
// ones share the _other row until the process restarts. Rows are never
// evicted, so a counter never goes backwards while the process lives.
//
// Reads on the request path are an atomic load and a map lookup (no lock, no
// allocation: a sync.Map would box the string key); only the first request of
// a tenant takes mu and copies the map, at most max times in all.
type tenantTable struct {
	max  int
	rows atomic.Pointer[map[string]*tenantRow] // copy-on-write; never modified once stored
	of   *tenantRow                            // the _other row
	anon *tenantRow                            // the _unauthenticated row

	mu sync.Mutex // serialises inserts into rows
}

type tenantRow struct {
	Requests      atomic.Int64
	ClientErrors  atomic.Int64 // 4xx
	ServerErrors  atomic.Int64 // 5xx
	ResponseBytes atomic.Int64
	IngestRecords atomic.Int64
	IngestBytes   atomic.Int64
	IngestSkipped atomic.Int64 // malformed + oversize + invalid key
}

func newTenantTable(max int) *tenantTable {
	if max <= 0 {
		max = 1024
	}
	t := &tenantTable{max: max, of: &tenantRow{}, anon: &tenantRow{}}
	t.rows.Store(&map[string]*tenantRow{})
	return t
}

func (t *tenantTable) row(tenant string) *tenantRow {
	rows := *t.rows.Load()
	if r, ok := rows[tenant]; ok {
		return r
	}
	if len(rows) >= t.max {
		return t.of
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	rows = *t.rows.Load()
	if r, ok := rows[tenant]; ok { // another request inserted it
		return r
	}
	if len(rows) >= t.max {
		return t.of
	}
	next := make(map[string]*tenantRow, len(rows)+1)
	for k, v := range rows {
		next[k] = v
	}
	r := &tenantRow{}
	next[tenant] = r
	t.rows.Store(&next)
	return r
}

// addRequest counts a request that named tenant; authenticated says whether
// it passed authentication for it (reqctx.Info.Authenticated).
func (t *tenantTable) addRequest(tenant string, authenticated bool, code int, bytes int64) {
	r := t.anon
	if authenticated {
		r = t.row(tenant)
	}
	r.Requests.Add(1)
	switch {
	case code >= 500:
		r.ServerErrors.Add(1)
	case code >= 400:
		r.ClientErrors.Add(1)
	}
	if bytes > 0 {
		r.ResponseBytes.Add(bytes)
	}
}

func (t *tenantTable) addIngest(tenant string, c IngestCounts) {
	r := t.row(tenant)
	r.IngestRecords.Add(c.Records)
	r.IngestBytes.Add(c.Bytes)
	r.IngestSkipped.Add(c.Malformed + c.Oversize + c.InvalidKey)
}

// TenantStats is one row of the tenant table as served by
// [Telemetry.TenantStatsHandler].
type TenantStats struct {
	Requests      int64 `json:"requests"`
	ClientErrors  int64 `json:"client_errors"`
	ServerErrors  int64 `json:"server_errors"`
	ResponseBytes int64 `json:"response_bytes"`
	IngestRecords int64 `json:"ingest_records"`
	IngestBytes   int64 `json:"ingest_bytes"`
	IngestSkipped int64 `json:"ingest_skipped"`
}

// TenantTable is the tenant table's JSON document.
type TenantTable struct {
	// Limit is the number of tenants with a row of their own.
	Limit int `json:"limit"`
	// Tenants maps a tenant id to its counters; "_other" holds the tenants
	// that came after the table was full, "_unauthenticated" the requests
	// that did not authenticate for the tenant they named.
	Tenants map[string]TenantStats `json:"tenants"`
}

func (r *tenantRow) snapshot() TenantStats {
	return TenantStats{
		Requests:      r.Requests.Load(),
		ClientErrors:  r.ClientErrors.Load(),
		ServerErrors:  r.ServerErrors.Load(),
		ResponseBytes: r.ResponseBytes.Load(),
		IngestRecords: r.IngestRecords.Load(),
		IngestBytes:   r.IngestBytes.Load(),
		IngestSkipped: r.IngestSkipped.Load(),
	}
}

// Tenants returns a snapshot of the tenant table. Counters are read one by
// one, so a snapshot under load is not atomic as a whole.
func (m *Metrics) Tenants() TenantTable {
	t := m.tenants
	out := TenantTable{Limit: t.max, Tenants: make(map[string]TenantStats)}
	for k, r := range *t.rows.Load() {
		out.Tenants[k] = r.snapshot()
	}
	if s := t.of.snapshot(); s != (TenantStats{}) {
		out.Tenants[OverflowTenant] = s
	}
	if s := t.anon.snapshot(); s != (TenantStats{}) {
		out.Tenants[unauthenticatedTenant] = s
	}
	return out
}

// TenantStatsHandler serves the tenant table as JSON (keys sorted). Mount it
// on the admin listener only: it names every tenant.
func (m *Metrics) TenantStatsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(m.Tenants()) // a failed write is the client's problem
	})
}
