package resilience

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// ByteBudget bounds the memory that requests in flight hold by their size,
// where counting requests (Limiter) is blind to it: a few dozen PUTs of
// 1 MiB documents, or MGETs of many, take more than a small node's heap,
// and the node would be killed for its memory where it should shed them.
// A request takes its bytes as it comes to hold them and gives them back
// when done; one that cannot take them is shed. One tenant holds at most
// half of the budget, so that a tenant sending many large requests at once
// sheds its own before the others'. A nil *ByteBudget admits all. It is
// safe for concurrent use.
type ByteBudget struct {
	limit   int64
	refused atomic.Int64

	mu       sync.Mutex // guards the following
	used     int64
	byTenant map[string]int64
}

// NewByteBudget returns a budget of limit bytes, or nil (no bound) for a
// limit of 0 or less.
func NewByteBudget(limit int64) *ByteBudget {
	if limit <= 0 {
		return nil
	}
	return &ByteBudget{limit: limit, byTenant: map[string]int64{}}
}

// Take charges n more bytes to a request of tenant that holds held bytes
// of the budget already (0 for its first take), or reports false,
// charging nothing, when that would go over the limit or over the tenant's
// half of it. A request is admitted whatever its size while nothing else
// is charged (to the node, or to its tenant for the tenant's share), so a
// limit below one request's need slows such requests, never stops them.
func (b *ByteBudget) Take(tenant string, n, held int64) bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	mine := b.byTenant[tenant]
	if (b.used+n > b.limit && b.used != held) || (mine+n > b.limit/2 && mine != held) {
		b.refused.Add(1)
		return false
	}
	b.used += n
	b.byTenant[tenant] = mine + n
	return true
}

// Give returns n bytes tenant took.
func (b *ByteBudget) Give(tenant string, n int64) {
	if b == nil || n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	if left := b.byTenant[tenant] - n; left > 0 {
		b.byTenant[tenant] = left
	} else {
		delete(b.byTenant, tenant)
	}
}

// Refused counts the takes refused; 0 for a nil budget.
func (b *ByteBudget) Refused() int64 {
	if b == nil {
		return 0
	}
	return b.refused.Load()
}

// Busy is the message of a request shed for the budget, what naming what
// holds it ("the documents of the requests in flight").
func (b *ByteBudget) Busy(what string) string {
	return fmt.Sprintf("server busy: %s hold the memory the node keeps for them (%d MiB of its --memory-limit, half of it at most for one tenant)",
		what, b.Limit()>>20)
}

// Limit is the budget's size; 0 for a nil budget.
func (b *ByteBudget) Limit() int64 {
	if b == nil {
		return 0
	}
	return b.limit
}
