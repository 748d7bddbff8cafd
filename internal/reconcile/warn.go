package reconcile

import (
	"context"
	"sync"
	"time"
)

// warnEvery is how often a warning that repeats for the same cause is
// written: a failure that lasts (bad credentials, a foreign entry in the
// backend) would otherwise write one line per tick and tenant, thousands
// an hour, which buries everything else in the log.
const warnEvery = time.Minute

// warnings remembers when each repeating warning was last written.
type warnings struct {
	mu   sync.Mutex
	last map[string]warned
}

type warned struct {
	at         time.Time
	suppressed int // lines not written since
}

// warnRepeated writes the warning msg for key (its cause: the message and
// the tenant), unless it was written for key less than warnEvery ago; the
// next line written carries how many were not ("suppressed").
func (e *Engine) warnRepeated(ctx context.Context, key, msg string, args ...any) {
	l := e.cfg.Logger
	if l == nil {
		return
	}
	now := e.cfg.Now()
	w := &e.warns
	w.mu.Lock()
	if w.last == nil {
		w.last = map[string]warned{}
	}
	prev, seen := w.last[key]
	if seen && now.Sub(prev.at) < warnEvery {
		prev.suppressed++
		w.last[key] = prev
		w.mu.Unlock()
		return
	}
	w.last[key] = warned{at: now}
	w.mu.Unlock()
	if prev.suppressed > 0 {
		args = append(args, "suppressed", prev.suppressed)
	}
	l.WarnContext(ctx, msg, args...)
}
