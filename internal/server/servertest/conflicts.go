package servertest

import (
	"context"
	"iter"
	"slices"
	"strings"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/server"
)

var _ server.Conflicts = (*Mem)(nil)

// SetConflict makes cf.Key of tenant a document with open siblings, as the
// node's manual conflict policy would: Get answers fault.Conflict naming
// them, and Put or Delete must name cf.ETag or a sibling in If-Match, which
// resolves the conflict. The siblings' bodies are kept as given.
func (m *Mem) SetConflict(tenant string, cf server.Conflict) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.conflicts == nil {
		m.conflicts = make(map[string]map[string]server.Conflict)
	}
	if m.conflicts[tenant] == nil {
		m.conflicts[tenant] = make(map[string]server.Conflict)
	}
	m.conflicts[tenant][cf.Key] = cf
	if m.docs == nil {
		m.docs = make(map[string]map[string]server.Doc)
	}
	if m.docs[tenant] == nil {
		m.docs[tenant] = make(map[string]server.Doc)
	}
	m.docs[tenant][cf.Key] = server.Doc{ETag: cf.ETag}
}

func conflictErr(op, tenant string, cf *server.Conflict) error {
	se := &doc.SiblingsError{ETag: cf.ETag}
	for _, s := range cf.Siblings {
		se.Siblings = append(se.Siblings, s.ETag)
	}
	return &fault.Error{Class: fault.Conflict, Context: fault.Context{Op: op, Tenant: tenant, Key: cf.Key}, Err: se,
		Msg: "the document has siblings " + strings.Join(se.Siblings, ", ")}
}

// conflictPreLocked is the precondition a write over key must meet: pre
// itself without open siblings; with them, pre must name the set or a
// sibling (then the write resolves them), as the store requires.
func (m *Mem) conflictPreLocked(op, tenant, key string, pre doc.Precondition) (doc.Precondition, error) {
	cf, ok := m.conflicts[tenant][key]
	if !ok {
		return pre, nil
	}
	for _, t := range pre.IfMatch {
		if t == cf.ETag || slices.ContainsFunc(cf.Siblings, func(s server.Sibling) bool { return s.ETag == t }) {
			pre.IfMatch = nil
			return pre, nil
		}
	}
	if len(pre.IfMatch) == 0 || slices.Equal(pre.IfMatch, []string{"*"}) {
		return pre, conflictErr(op, tenant, &cf)
	}
	return pre, nil
}

// Conflicts implements server.Conflicts.
func (m *Mem) Conflicts(ctx context.Context, tenant, prefix, after string, limit int) iter.Seq2[server.Conflict, error] {
	return func(yield func(server.Conflict, error) bool) {
		m.mu.Lock()
		m.record(Call{"conflicts", tenant, prefix})
		var out []server.Conflict
		for k, cf := range m.conflicts[tenant] {
			if strings.HasPrefix(k, prefix) && k > after {
				cf.Siblings = slices.Clone(cf.Siblings)
				for i := range cf.Siblings {
					cf.Siblings[i].Body = nil
				}
				out = append(out, cf)
			}
		}
		m.mu.Unlock()
		slices.SortFunc(out, func(a, b server.Conflict) int { return strings.Compare(a.Key, b.Key) })
		for i, cf := range out {
			if i == limit || !yield(cf, nil) {
				return
			}
		}
	}
}

// Conflict implements server.Conflicts.
func (m *Mem) Conflict(ctx context.Context, tenant, key string) (server.Conflict, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.record(Call{"conflict", tenant, key})
	cf, ok := m.conflicts[tenant][key]
	if !ok {
		return server.Conflict{}, fault.New(fault.NotFound, fault.Context{Op: "mem.conflict", Tenant: tenant, Key: key}, "no open siblings")
	}
	return cf, nil
}

// AddHistory adds l to the conflict history of tenant's key.
func (m *Mem) AddHistory(tenant, key string, l server.Lost) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.history == nil {
		m.history = make(map[string][]server.Lost)
	}
	m.history[tenant+"\x00"+key] = append(m.history[tenant+"\x00"+key], l)
}

// History implements server.Conflicts.
func (m *Mem) History(ctx context.Context, tenant, key string) iter.Seq2[server.Lost, error] {
	return func(yield func(server.Lost, error) bool) {
		m.mu.Lock()
		m.record(Call{"history", tenant, key})
		h := slices.Clone(m.history[tenant+"\x00"+key])
		m.mu.Unlock()
		for _, l := range h {
			if !yield(l, nil) {
				return
			}
		}
	}
}
