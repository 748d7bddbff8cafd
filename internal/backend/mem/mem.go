// Package mem is an in-memory backend for tests. It stores the same
// self-describing objects as the durable backends (so corruption can be
// injected and is detected the same way) and has a fault-injection seam,
// [Mem.SetFault], that fails chosen operations.
package mem

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

var (
	_ backend.Backend      = (*Mem)(nil)
	_ backend.Corrupter    = (*Mem)(nil)
	_ backend.TenantLister = (*Mem)(nil)
	_ backend.Blobs        = (*Mem)(nil)
)

// Fault decides whether an operation fails: a non-nil error is returned
// (wrapped with the operation's context) instead of doing it. op is one of
// the backend.Op* names; key is "" for List.
type Fault func(op, tenant, key string) error

// Mem is an in-memory backend. The zero value is not usable; call New.
type Mem struct {
	name string

	mu      sync.Mutex                   // guards the following
	tenants map[string]map[string][]byte // tenant → key → stored object
	sorted  map[string][]string          // tenant → keys, ascending
	blobs   map[string][]byte            // name → data
	names   []string                     // blob names, ascending
	fault   Fault
}

// New returns an empty backend called name.
func New(name string) *Mem {
	return &Mem{name: name, tenants: map[string]map[string][]byte{}, sorted: map[string][]string{}, blobs: map[string][]byte{}}
}

// Name implements backend.Backend.
func (m *Mem) Name() string { return m.name }

// SetFault installs f (nil removes it). It is consulted at the start of
// every operation, under no lock, so f may block to hold an operation.
func (m *Mem) SetFault(f Fault) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fault = f
}

// begin validates names (those op takes) and consults the fault hook.
func (m *Mem) begin(ctx context.Context, op, tenant, key string) error {
	var check error
	switch op {
	case backend.OpTenants:
	case backend.OpList:
		check = backend.CheckTenant(tenant)
	case backend.OpListBlobs:
		check = backend.ValidateBlobPrefix(key)
	case backend.OpPutBlob, backend.OpGetBlob, backend.OpDeleteBlob:
		check = backend.ValidateBlobName(key)
	default:
		check = backend.CheckNames(tenant, key)
	}
	if check != nil {
		return check
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	f := m.fault
	m.mu.Unlock()
	if f != nil {
		return f(op, tenant, key)
	}
	return nil
}

func (m *Mem) wrap(op, tenant, key string, err error) error {
	return fault.E(fault.Unknown, backend.Ctx(op, m.name, tenant, key), err)
}

// List implements backend.Backend.
func (m *Mem) List(ctx context.Context, tenant string, opts backend.ListOptions) (backend.Page, error) {
	if err := m.begin(ctx, backend.OpList, tenant, ""); err != nil {
		return backend.Page{}, m.wrap(backend.OpList, tenant, "", err)
	}
	limit := opts.Limit
	if limit <= 0 {
		limit = backend.DefaultLimit
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	keys := m.sorted[tenant]
	from := max(opts.Prefix, opts.StartAfter)
	i, found := slices.BinarySearch(keys, from)
	if found && from == opts.StartAfter {
		i++
	}
	var p backend.Page
	for ; i < len(keys) && strings.HasPrefix(keys[i], opts.Prefix); i++ {
		if len(p.Entries) == limit {
			p.More = true
			break
		}
		raw := m.tenants[tenant][keys[i]]
		p.Entries = append(p.Entries, backend.Entry{Key: keys[i], ETag: etagOf(raw), Size: int64(len(raw))})
	}
	return p, nil
}

// Tenants implements backend.TenantLister: the tenants holding objects.
func (m *Mem) Tenants(ctx context.Context) ([]string, error) {
	if err := m.begin(ctx, backend.OpTenants, "", ""); err != nil {
		return nil, m.wrap(backend.OpTenants, "", "", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var ts []string
	for t, objs := range m.tenants {
		if len(objs) > 0 {
			ts = append(ts, t)
		}
	}
	slices.Sort(ts)
	return ts, nil
}

func etagOf(raw []byte) string { return backend.ETagOf(raw) }

// Get implements backend.Backend.
func (m *Mem) Get(ctx context.Context, tenant, key string) (*backend.Object, error) {
	if err := m.begin(ctx, backend.OpGet, tenant, key); err != nil {
		return nil, m.wrap(backend.OpGet, tenant, key, err)
	}
	m.mu.Lock()
	raw, ok := m.tenants[tenant][key]
	m.mu.Unlock()
	if !ok {
		return nil, fault.New(fault.NotFound, backend.Ctx(backend.OpGet, m.name, tenant, key), "no object")
	}
	// raw is never modified in place (Put and Corrupt store new slices), so
	// it is read outside the lock and the body is returned without copying.
	o, err := backend.VerifyObject(raw, tenant, key, etagOf(raw))
	if err != nil {
		return nil, m.wrap(backend.OpGet, tenant, key, err)
	}
	return o, nil
}

// Stat implements backend.Backend.
func (m *Mem) Stat(ctx context.Context, tenant, key string) (backend.Entry, error) {
	if err := m.begin(ctx, backend.OpStat, tenant, key); err != nil {
		return backend.Entry{}, m.wrap(backend.OpStat, tenant, key, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	raw, ok := m.tenants[tenant][key]
	if !ok {
		return backend.Entry{}, fault.New(fault.NotFound, backend.Ctx(backend.OpStat, m.name, tenant, key), "no object")
	}
	return backend.Entry{Key: key, ETag: etagOf(raw), Size: int64(len(raw))}, nil
}

// Put implements backend.Backend.
func (m *Mem) Put(ctx context.Context, tenant, key string, v doc.Version, body []byte, pre backend.Precondition) (string, error) {
	if err := backend.CheckPut(tenant, key, &v, body); err != nil {
		return "", m.wrap(backend.OpPut, tenant, key, err)
	}
	if err := m.begin(ctx, backend.OpPut, tenant, key); err != nil {
		return "", m.wrap(backend.OpPut, tenant, key, err)
	}
	raw := backend.EncodeObject(tenant, key, &v, body)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkLocked(tenant, key, pre); err != nil {
		return "", m.wrap(backend.OpPut, tenant, key, err)
	}
	m.storeLocked(tenant, key, raw)
	return etagOf(raw), nil
}

func (m *Mem) checkLocked(tenant, key string, pre backend.Precondition) error {
	raw, ok := m.tenants[tenant][key]
	etag := ""
	if ok {
		etag = etagOf(raw)
	}
	return pre.Check(etag, ok)
}

func (m *Mem) storeLocked(tenant, key string, raw []byte) {
	objs := m.tenants[tenant]
	if objs == nil {
		objs = map[string][]byte{}
		m.tenants[tenant] = objs
	}
	if _, ok := objs[key]; !ok {
		keys := m.sorted[tenant]
		i, _ := slices.BinarySearch(keys, key)
		m.sorted[tenant] = slices.Insert(keys, i, key)
	}
	objs[key] = raw
}

// Delete implements backend.Backend.
func (m *Mem) Delete(ctx context.Context, tenant, key string, pre backend.Precondition) error {
	if err := m.begin(ctx, backend.OpDelete, tenant, key); err != nil {
		return m.wrap(backend.OpDelete, tenant, key, err)
	}
	if pre.IfNoneMatch {
		return fault.New(fault.Invalid, backend.Ctx(backend.OpDelete, m.name, tenant, key), "if-none-match on a delete")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkLocked(tenant, key, pre); err != nil {
		return m.wrap(backend.OpDelete, tenant, key, err)
	}
	if _, ok := m.tenants[tenant][key]; !ok {
		return nil
	}
	delete(m.tenants[tenant], key)
	keys := m.sorted[tenant]
	i, _ := slices.BinarySearch(keys, key)
	m.sorted[tenant] = slices.Delete(keys, i, i+1)
	return nil
}

// Corrupt implements backend.Corrupter.
func (m *Mem) Corrupt(ctx context.Context, tenant, key string, f func([]byte) []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	raw, ok := m.tenants[tenant][key]
	if !ok {
		return fault.New(fault.NotFound, backend.Ctx("backend.corrupt", m.name, tenant, key), "no object")
	}
	m.tenants[tenant][key] = f(slices.Clone(raw))
	return nil
}
