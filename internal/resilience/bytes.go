package resilience

import "sync/atomic"

// ByteBudget bounds the memory that requests in flight hold by their size,
// where counting requests (Limiter) is blind to it: a few dozen PUTs of
// 1 MiB documents, or MGETs of many, take more than a small node's heap,
// and the node would be killed for its memory where it should shed them.
// A request takes its bytes before it holds them and gives them back when
// done; one that cannot take them is shed. A nil *ByteBudget admits all.
// It is safe for concurrent use.
type ByteBudget struct {
	limit   int64
	used    atomic.Int64
	refused atomic.Int64
}

// NewByteBudget returns a budget of limit bytes, or nil (no bound) for a
// limit of 0 or less.
func NewByteBudget(limit int64) *ByteBudget {
	if limit <= 0 {
		return nil
	}
	return &ByteBudget{limit: limit}
}

// Take charges n more bytes to a request that holds held bytes of the
// budget already (0 for its first take), or reports false, charging
// nothing, when that would go over the limit. A request is admitted
// whatever its size while nothing else is charged, so a limit below one
// request's need slows such requests, never stops them.
func (b *ByteBudget) Take(n, held int64) bool {
	if b == nil {
		return true
	}
	if now := b.used.Add(n); now > b.limit && now != n+held {
		b.used.Add(-n)
		b.refused.Add(1)
		return false
	}
	return true
}

// Refused counts the takes refused; 0 for a nil budget.
func (b *ByteBudget) Refused() int64 {
	if b == nil {
		return 0
	}
	return b.refused.Load()
}

// Give returns n bytes taken.
func (b *ByteBudget) Give(n int64) {
	if b != nil {
		b.used.Add(-n)
	}
}

// Limit is the budget's size; 0 for a nil budget.
func (b *ByteBudget) Limit() int64 {
	if b == nil {
		return 0
	}
	return b.limit
}
