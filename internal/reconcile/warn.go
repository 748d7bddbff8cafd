package reconcile

import (
	"context"
	"time"
)

// warnEvery is how often a warning that repeats for the same cause is
// written: a failure that lasts (bad credentials, a foreign entry in the
// backend) would otherwise write one line per tick and tenant, thousands
// an hour, which buries everything else in the log.
const warnEvery = time.Minute

// warnRepeated writes the warning msg for key (its cause: the message and
// the tenant), unless it was written for key less than warnEvery ago; the
// next line written carries how many were not ("suppressed").
func (e *Engine) warnRepeated(ctx context.Context, key, msg string, args ...any) {
	l := e.cfg.Logger
	if l == nil {
		return
	}
	ok, suppressed := e.warns.Allow(key, e.cfg.Now())
	if !ok {
		return
	}
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	l.WarnContext(ctx, msg, args...)
}

// warnHeld tells that the feed or the scrub (by) of tenant stopped at a
// deletion the mass-deletion guard holds, as what it is rather than as a
// failure of that work.
func (e *Engine) warnHeld(ctx context.Context, tenant, by string, err error) {
	e.warnRepeated(ctx, "held "+tenant, "reconcile: the mass-deletion guard holds the tenant: its deletions wait for a confirmation",
		"backend", e.name, "tenant", tenant, "stopped", by, "err", err, "runbook", "Mass-deletion guard stop")
}
