package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cairnstore/cairn/api"
	"github.com/cairnstore/cairn/api/chaosapi"
	"github.com/cairnstore/cairn/internal/chaos"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/server"
	"github.com/cairnstore/cairn/internal/telemetry"
)

// The JSON endpoints the pages poll. Each reads the node through the
// interfaces the API and admin routes use; bad input is a 400 naming it.

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func invalid(op, msg string) error {
	return fault.New(fault.Invalid, fault.Context{Op: op}, msg)
}

// tenantKey reads and checks the tenant (and, with needKey, key) query
// parameters, refusing any other than those and more (as the API's
// routes do), and a tenant the node does not serve (Options.Serves), so a
// mistyped name is not shown as an empty tenant.
func (c *Console) tenantKey(r *http.Request, op string, needKey bool, more ...string) (tenant, key string, err error) {
	q := r.URL.Query()
	for name := range q {
		if name != "tenant" && (name != "key" || !needKey) && !slices.Contains(more, name) {
			return "", "", invalid(op, fmt.Sprintf("unknown query parameter %q", name))
		}
	}
	tenant, key = q.Get("tenant"), q.Get("key")
	if err := doc.ValidateTenant(tenant); err != nil {
		return "", "", invalid(op, fault.MessageOf(err)) // it names the tenant
	}
	if c.o.Serves != nil && !c.o.Serves(r.Context(), tenant) {
		return "", "", fault.New(fault.NotFound, fault.Context{Op: op, Tenant: tenant}, fmt.Sprintf("no tenant %q on this node", tenant))
	}
	if needKey {
		if err := doc.ValidateKey(key); err != nil {
			return "", "", invalid(op, fmt.Sprintf("key %q: %s", key, fault.MessageOf(err)))
		}
	}
	return tenant, key, nil
}

// pageLimit is the rows per page of the console's listings.
const pageLimit = 50

// TenantsBody is the body of GET /console/api/tenants.
type TenantsBody struct {
	Tenants []TenantRow `json:"tenants"`
	Limits  Limits      `json:"limits"`
	// OtherRequests are the requests of the tenants the node's tenant
	// table had no row left for (its "_other" row), if any.
	OtherRequests *int64 `json:"other_requests_total,omitempty"`
}

// TenantRow is a tenant with its requests so far: null when the tenant
// table has no row of its own for it and its requests are among
// OtherRequests.
type TenantRow struct {
	Tenant
	Requests *int64 `json:"requests_total"`
}

// tenantsTTL is how long the tenant list and its document counts are
// reused: counting costs a scan of up to MaxCount keys per tenant, which
// every open tenants page would otherwise pay every poll.
const tenantsTTL = 10 * time.Second

// tenantRows caches Node.Tenants for tenantsTTL.
type tenantRows struct {
	mu   sync.Mutex // guards at and rows; held across the Node call, so concurrent polls count once
	at   time.Time
	rows []Tenant
}

func (c *Console) tenantList(r *http.Request) ([]Tenant, error) {
	tc := &c.tenantRows
	tc.mu.Lock()
	defer tc.mu.Unlock()
	now := c.o.Now()
	if tc.rows != nil && now.Sub(tc.at) < tenantsTTL {
		return tc.rows, nil
	}
	ts, err := c.o.Node.Tenants(r.Context())
	if err != nil {
		return nil, err
	}
	tc.at, tc.rows = now, ts
	return ts, nil
}

func (c *Console) tenants(w http.ResponseWriter, r *http.Request, _ *session) {
	ts, err := c.tenantList(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	var reqs map[string]int64
	if c.o.TenantRequests != nil {
		reqs = c.o.TenantRequests()
	}
	out := TenantsBody{Tenants: []TenantRow{}, Limits: c.o.Limits}
	other, overflow := reqs[telemetry.OverflowTenant]
	if overflow {
		out.OtherRequests = &other
	}
	for _, t := range ts {
		row := TenantRow{Tenant: t}
		if n, ok := reqs[t.Name]; ok || !overflow {
			row.Requests = &n // absent from a table with room: none yet
		}
		out.Tenants = append(out.Tenants, row)
	}
	writeJSON(w, out)
}

// DocsBody is the body of GET /console/api/docs.
type DocsBody struct {
	Items []ItemRow `json:"items"`
	Next  string    `json:"next"` // the after of the next page; "" on the last
}

func (c *Console) listDocs(w http.ResponseWriter, r *http.Request, _ *session) {
	const op = "console.docs"
	tenant, _, err := c.tenantKey(r, op, false, "prefix", "after")
	if err != nil {
		c.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	items, next, err := collectPage(c.o.Docs.List(r.Context(), tenant, q.Get("prefix"), q.Get("after"), pageLimit+1),
		func(it *server.Item) ItemRow {
			return ItemRow{Key: it.Key, ETag: it.ETag, Size: it.Size, Conflict: it.Conflict}
		}, func(row *ItemRow) string { return row.Key })
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, DocsBody{Items: items, Next: next})
}

// collectPage takes one page of rows from seq, which was asked for
// pageLimit+1 items: the extra one only says that another page follows,
// which starts after the last row kept (next; "" on the last page).
func collectPage[T, R any](seq iter.Seq2[T, error], row func(*T) R, key func(*R) string) (rows []R, next string, err error) {
	rows = []R{}
	for it, err := range seq {
		if err != nil {
			return nil, "", err
		}
		if len(rows) == pageLimit {
			return rows, key(&rows[pageLimit-1]), nil
		}
		rows = append(rows, row(&it))
	}
	return rows, "", nil
}

// ItemRow is a row of the documents listing.
type ItemRow struct {
	Key      string `json:"key"`
	ETag     string `json:"etag"`
	Size     int    `json:"size"`
	Conflict bool   `json:"conflict"`
}

// DocBody is the body of GET /console/api/doc.
type DocBody struct {
	Document
	Body    json.RawMessage `json:"body"` // null for a delete or a sibling set
	History []LostRow       `json:"history"`
}

// LostRow is a version a conflict resolution discarded.
type LostRow struct {
	SiblingRow
	Winner string `json:"winner"`
	Reason string `json:"reason"`
}

func (c *Console) getDoc(w http.ResponseWriter, r *http.Request, _ *session) {
	const op = "console.doc"
	tenant, key, err := c.tenantKey(r, op, true)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d, err := c.o.Node.Document(r.Context(), tenant, key)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	out := DocBody{Document: d, Body: json.RawMessage("null"), History: []LostRow{}}
	if !d.Deleted && !d.Siblings && len(d.Body) > 0 {
		out.Body = d.Body
	}
	if cf, ok := c.o.Docs.(server.Conflicts); ok {
		for l, err := range cf.History(r.Context(), tenant, key) {
			if err != nil {
				c.fail(w, r, err)
				return
			}
			out.History = append(out.History, LostRow{SiblingRow: siblingRow(&l.Sibling), Winner: l.Winner, Reason: l.Reason})
		}
	}
	writeJSON(w, out)
}

// SiblingRow is a sibling as JSON.
type SiblingRow struct {
	ETag    string          `json:"etag"`
	Deleted bool            `json:"deleted"`
	Writer  string          `json:"writer"`
	Time    time.Time       `json:"time"`
	Size    int             `json:"size"`
	Body    json.RawMessage `json:"body,omitempty"`
}

func siblingRow(s *server.Sibling) SiblingRow {
	row := SiblingRow{ETag: s.ETag, Deleted: s.Deleted, Writer: strconv.FormatUint(s.Writer, 16), Time: s.Time, Size: s.Size}
	if s.Body != nil && !s.Deleted {
		row.Body = s.Body
	}
	return row
}

// ConflictRow is a conflict as JSON.
type ConflictRow struct {
	Key      string       `json:"key"`
	ETag     string       `json:"etag"`
	Siblings []SiblingRow `json:"siblings"`
}

func conflictRow(cf *server.Conflict) ConflictRow {
	row := ConflictRow{Key: cf.Key, ETag: cf.ETag, Siblings: []SiblingRow{}}
	for i := range cf.Siblings {
		row.Siblings = append(row.Siblings, siblingRow(&cf.Siblings[i]))
	}
	return row
}

// ConflictsBody is the body of GET /console/api/conflicts.
type ConflictsBody struct {
	Items []ConflictRow `json:"items"`
	Next  string        `json:"next"`
}

func (c *Console) conflictsOf(op string) (server.Conflicts, error) {
	cf, ok := c.o.Docs.(server.Conflicts)
	if !ok {
		return nil, fault.New(fault.NotFound, fault.Context{Op: op}, "this node keeps no conflicts")
	}
	return cf, nil
}

func (c *Console) listConflicts(w http.ResponseWriter, r *http.Request, _ *session) {
	const op = "console.conflicts"
	tenant, _, err := c.tenantKey(r, op, false, "prefix", "after")
	var cs server.Conflicts
	if err == nil {
		cs, err = c.conflictsOf(op)
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	items, next, err := collectPage(cs.Conflicts(r.Context(), tenant, q.Get("prefix"), q.Get("after"), pageLimit+1),
		conflictRow, func(row *ConflictRow) string { return row.Key })
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, ConflictsBody{Items: items, Next: next})
}

func (c *Console) getConflict(w http.ResponseWriter, r *http.Request, _ *session) {
	const op = "console.conflict"
	tenant, key, err := c.tenantKey(r, op, true)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	cs, err := c.conflictsOf(op)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	cf, err := cs.Conflict(r.Context(), tenant, key)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	out, err := c.conflictBody(r, tenant, &cf)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, out)
}

// ConflictBody is the body of GET /console/api/conflict: the conflict
// and, when the node knows a common ancestor of its siblings, the
// ancestor and each sibling's changes against it (a three-way view).
type ConflictBody struct {
	ConflictRow
	Ancestor *AncestorRow `json:"ancestor"` // null: no common ancestor known
	// Changes holds each sibling's changes against the ancestor, in the
	// order of Siblings; null without an ancestor.
	Changes [][]Change `json:"changes"`
}

// AncestorRow is a conflict's common ancestor as JSON.
type AncestorRow struct {
	ETag   string          `json:"etag"`
	Writer string          `json:"writer"`
	Time   time.Time       `json:"time"`
	Source string          `json:"source"`
	Body   json.RawMessage `json:"body"`
}

// conflictBody adds the common ancestor to cf, when the node knows one
// for exactly the set cf shows (a set that changed in between gets none:
// the page reads it again on its next look).
func (c *Console) conflictBody(r *http.Request, tenant string, cf *server.Conflict) (ConflictBody, error) {
	out := ConflictBody{ConflictRow: conflictRow(cf)}
	a, ok, err := c.o.Node.Ancestor(r.Context(), tenant, cf.Key)
	if fault.ClassOf(err) == fault.NotFound || (err == nil && (!ok || a.SetETag != cf.ETag)) {
		return out, nil
	}
	if err != nil {
		return out, err
	}
	changes := make([][]Change, len(cf.Siblings))
	for i := range cf.Siblings {
		s := &cf.Siblings[i]
		var body []byte
		if !s.Deleted {
			body = s.Body
		}
		if changes[i], err = Diff(a.Body, body); err != nil {
			return out, fault.E(fault.Corruption, fault.Context{Op: "console.conflict", Tenant: tenant, Key: cf.Key}, err)
		}
	}
	out.Ancestor = &AncestorRow{ETag: a.ETag, Writer: strconv.FormatUint(a.Writer, 16), Time: a.Time, Source: a.Source, Body: a.Body}
	out.Changes = changes
	return out, nil
}

// resolve serves POST /console/api/resolve?tenant=&key= with the API's
// resolution body ({"choose"}, {"body"} or {"delete"}) and If-Match the
// sibling set's ETag the page showed: the API's resolve path, which
// answers 412 when the siblings changed since.
func (c *Console) resolve(w http.ResponseWriter, r *http.Request, _ *session) {
	const op = "console.resolve"
	tenant, key, err := c.tenantKey(r, op, true)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	req, err := c.o.API.ReadResolve(w, r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	etag, err := c.o.API.Resolve(r.Context(), tenant, key, req, r.Header.Get("If-Match"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.logAction(r, "console: conflict resolved", slog.String("tenant", tenant), slog.String("key", key),
		slog.String("etag", etag))
	writeJSON(w, map[string]any{"key": key, "etag": etag, "deleted": etag == ""})
}

// ReplicationBody is the body of GET /console/api/replication.
type ReplicationBody struct {
	Configured  bool                `json:"configured"`
	Status      api.ReconcileStatus `json:"status"`
	Quarantined []api.QuarantineRow `json:"quarantined"`
	// QuarantinedMore is set when more objects are quarantined than the
	// page lists (maxQuarantineRows), so it can say the list is cut.
	QuarantinedMore bool `json:"quarantined_more"`
}

// maxQuarantineRows bounds the quarantined objects the page lists.
const maxQuarantineRows = 100

func (c *Console) replication(w http.ResponseWriter, r *http.Request, _ *session) {
	out := ReplicationBody{Quarantined: []api.QuarantineRow{}}
	if c.o.Reconciler != nil {
		out.Status = c.o.Reconciler.ReconcileStatus()
		out.Configured = len(out.Status.Backends) > 0
	}
	if c.o.Quarantine != nil {
		for row, err := range c.o.Quarantine.QuarantineRows(r.Context(), "", "", "") {
			if err != nil {
				c.fail(w, r, err)
				return
			}
			if len(out.Quarantined) == maxQuarantineRows {
				out.QuarantinedMore = true
				break
			}
			out.Quarantined = append(out.Quarantined, row)
		}
	}
	writeJSON(w, out)
}

// reconcile serves POST /console/api/reconcile?backend=&tenant=&confirm=1:
// it triggers the rounds, as POST /v1/admin/reconcile/run does without
// wait=1, and answers 202; the replication page shows their progress.
func (c *Console) reconcile(w http.ResponseWriter, r *http.Request, _ *session) {
	const op = "console.reconcile"
	q := r.URL.Query()
	// As the admin route does: a misspelt tenant= or backend= would run
	// rounds of every tenant on every backend, confirmed deletions
	// included.
	for name, vs := range q {
		if name != "backend" && name != "tenant" && name != "confirm" {
			c.fail(w, r, invalid(op, fmt.Sprintf("unknown query parameter %q (want backend, tenant, confirm)", name)))
			return
		}
		if len(vs) > 1 {
			c.fail(w, r, invalid(op, fmt.Sprintf("query parameter %q given more than once", name)))
			return
		}
	}
	if c.o.Reconciler == nil {
		c.fail(w, r, fault.New(fault.Conflict, fault.Context{Op: op}, "no backend is configured"))
		return
	}
	req := server.ReconcileRequest{Backend: q.Get("backend"), Tenant: q.Get("tenant")}
	var err error
	if req.Confirm, err = server.QueryFlag(q, "confirm"); err != nil {
		c.fail(w, r, invalid(op, err.Error()))
		return
	}
	if req.Tenant != "" {
		if err := doc.ValidateTenant(req.Tenant); err != nil {
			c.fail(w, r, invalid(op, fault.MessageOf(err))) // it names the tenant
			return
		}
	}
	c.logAction(r, "console: reconciliation run requested", slog.String("backend", req.Backend),
		slog.String("tenant", req.Tenant), slog.Bool("confirm", req.Confirm))
	out, err := c.o.Reconciler.RunReconcile(r.Context(), req)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	json.NewEncoder(w).Encode(out)
}

// ChaosBody is the body of GET /console/api/chaos.
type ChaosBody struct {
	Enabled bool `json:"enabled"`
	// Controllable is false on a node without an admin token, whose
	// simulator cannot be driven (the API refuses it too).
	Controllable bool             `json:"controllable"`
	Status       *chaosapi.Status `json:"status,omitempty"`
	// Seed is Status.Seed in decimal: a JavaScript number holds integers
	// exactly only up to 2^53, and a seed is there to reproduce a run.
	Seed string `json:"seed,omitempty"`
}

func (c *Console) chaosStatus(w http.ResponseWriter, r *http.Request, _ *session) {
	out := ChaosBody{Enabled: c.o.Chaos != nil, Controllable: c.o.Chaos != nil && !c.o.Open}
	if c.o.Chaos != nil {
		st := c.o.Chaos.ChaosStatus()
		out.Status, out.Seed = &st, strconv.FormatUint(st.Seed, 10)
	}
	writeJSON(w, out)
}

// maxProfile bounds a chaos profile's body, as the admin route does.
const maxProfile = 64 << 10

// chaosSet serves POST /console/api/chaos?backend=B with a chaos profile
// (as PUT /v1/admin/chaos/B), or with heal=1 and no body (as its DELETE).
func (c *Console) chaosSet(w http.ResponseWriter, r *http.Request, _ *session) {
	const op = "console.chaos"
	if c.o.Chaos == nil {
		c.fail(w, r, fault.New(fault.NotFound, fault.Context{Op: op}, "chaos is off: start the node with --enable-chaos"))
		return
	}
	if c.o.Open {
		c.fail(w, r, fault.New(fault.Forbidden, fault.Context{Op: op}, "chaos control needs an admin token: start the node with --admin-token-sha256"))
		return
	}
	q := r.URL.Query()
	for name := range q { // a misspelt heal= would set the body's profile instead
		if name != "backend" && name != "heal" {
			c.fail(w, r, invalid(op, fmt.Sprintf("unknown query parameter %q (want backend, heal)", name)))
			return
		}
	}
	heal, err := server.QueryFlag(q, "heal")
	if err != nil {
		c.fail(w, r, invalid(op, err.Error()))
		return
	}
	name := q.Get("backend")
	cb, names := c.o.Chaos.ChaosBackend(name)
	if cb == nil {
		c.fail(w, r, fault.New(fault.NotFound, fault.Context{Op: op}, fmt.Sprintf("no backend %q (configured: %s)", name, strings.Join(names, ", "))))
		return
	}
	if heal {
		cb.Heal()
		writeJSON(w, map[string]any{"backend": name, "profile": chaos.Profile{}})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxProfile))
	if err != nil {
		c.fail(w, r, invalid(op, fmt.Sprintf("profile: reading the body: %v (at most %d bytes)", err, maxProfile)))
		return
	}
	p, err := chaos.ParseProfile(bytes.TrimSpace(body))
	if err == nil {
		err = cb.SetProfile(p)
	}
	if err != nil {
		c.fail(w, r, invalid(op, "profile: "+fault.MessageOf(err)))
		return
	}
	writeJSON(w, map[string]any{"backend": name, "profile": p})
}
