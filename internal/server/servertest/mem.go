// Package servertest provides an in-memory [server.Docs] for tests and
// examples: [Mem] stores documents in maps, follows the Docs contract
// (preconditions, NotFound, sorted listings) and records every call, so a
// test can assert that a rejected request stored nothing.
package servertest

import (
	"context"
	"iter"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/server"
)

var _ server.Docs = (*Mem)(nil)

// Call is one recorded call.
type Call struct {
	Op          string // "get", "put", "delete", "list", "conflicts", "conflict"
	Tenant, Key string // Key is the prefix for "list"
}

// Mem is an in-memory Docs. The zero value is empty and ready to use.
type Mem struct {
	mu    sync.Mutex                       // guards following
	docs  map[string]map[string]server.Doc // tenant → key → live document
	seq   int                              // last ETag number handed out
	calls []Call
	// conflicts: tenant → key → open siblings (conflicts.go); the key's
	// entry in docs is then the sibling set.
	conflicts map[string]map[string]server.Conflict
	history   map[string][]server.Lost // tenant 0 key → conflict history
}

func (m *Mem) record(c Call) {
	m.calls = append(m.calls, c)
}

// Calls returns a copy of the calls so far.
func (m *Mem) Calls() []Call {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.calls)
}

// Writes counts the Put and Delete calls that reached Mem, successful or not.
func (m *Mem) Writes() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, c := range m.calls {
		if c.Op == "put" || c.Op == "delete" {
			n++
		}
	}
	return n
}

// Len is the number of live documents of tenant.
func (m *Mem) Len(tenant string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.docs[tenant])
}

func notFound(op, tenant, key string) error {
	return fault.New(fault.NotFound, fault.Context{Op: op, Tenant: tenant, Key: key}, "no document "+strconv.Quote(key))
}

// Get implements server.Docs.
func (m *Mem) Get(ctx context.Context, tenant, key string) (server.Doc, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.record(Call{"get", tenant, key})
	if cf, ok := m.conflicts[tenant][key]; ok {
		return server.Doc{}, conflictErr("mem.get", tenant, &cf)
	}
	d, ok := m.docs[tenant][key]
	if !ok {
		return server.Doc{}, notFound("mem.get", tenant, key)
	}
	return d, nil
}

// Put implements server.Docs. ETags are "1", "2", … in write order.
func (m *Mem) Put(ctx context.Context, tenant, key string, body []byte, pre doc.Precondition) (string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.record(Call{"put", tenant, key})
	cur, live := m.docs[tenant][key]
	pre, err := m.conflictPreLocked("mem.put", tenant, key, pre)
	if err != nil {
		return "", false, err
	}
	if err := pre.Check(cur.ETag, live); err != nil {
		return "", false, fault.E(fault.Unknown, fault.Context{Op: "mem.put", Tenant: tenant, Key: key}, err)
	}
	if m.docs == nil {
		m.docs = make(map[string]map[string]server.Doc)
	}
	if m.docs[tenant] == nil {
		m.docs[tenant] = make(map[string]server.Doc)
	}
	m.seq++
	etag := `"` + strconv.Itoa(m.seq) + `"`
	m.docs[tenant][key] = server.Doc{ETag: etag, Body: body}
	delete(m.conflicts[tenant], key)
	return etag, !live, nil
}

// Delete implements server.Docs.
func (m *Mem) Delete(ctx context.Context, tenant, key string, pre doc.Precondition) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.record(Call{"delete", tenant, key})
	cur, live := m.docs[tenant][key]
	pre, err := m.conflictPreLocked("mem.delete", tenant, key, pre)
	if err != nil {
		return err
	}
	if err := pre.Check(cur.ETag, live); err != nil { // before the 404, as the store
		return fault.E(fault.Unknown, fault.Context{Op: "mem.delete", Tenant: tenant, Key: key}, err)
	}
	if !live {
		return notFound("mem.delete", tenant, key)
	}
	delete(m.docs[tenant], key)
	delete(m.conflicts[tenant], key)
	return nil
}

// List implements server.Docs over a snapshot taken when iteration starts.
func (m *Mem) List(ctx context.Context, tenant, prefix, after string, limit int) iter.Seq2[server.Item, error] {
	return func(yield func(server.Item, error) bool) {
		m.mu.Lock()
		m.record(Call{"list", tenant, prefix})
		var items []server.Item
		for k, d := range m.docs[tenant] {
			if strings.HasPrefix(k, prefix) && k > after {
				_, conflict := m.conflicts[tenant][k]
				items = append(items, server.Item{Key: k, ETag: d.ETag, Size: len(d.Body), Conflict: conflict})
			}
		}
		m.mu.Unlock()
		slices.SortFunc(items, func(a, b server.Item) int { return strings.Compare(a.Key, b.Key) })
		for i, it := range items {
			if i == limit {
				return
			}
			if err := ctx.Err(); err != nil {
				yield(server.Item{}, fault.E(fault.Unknown, fault.Context{Op: "mem.list"}, err))
				return
			}
			if !yield(it, nil) {
				return
			}
		}
	}
}
