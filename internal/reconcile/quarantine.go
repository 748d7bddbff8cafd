package reconcile

import (
	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/store"
)

// QuarantineObserver is optionally implemented by a Config.Observer
// (*telemetry.Metrics does): it hears of each damaged object recorded in
// the quarantine. Optional so that observers written before quarantine
// keep compiling.
type QuarantineObserver interface {
	ReconcileQuarantined(backend string)
}

// quarantine records the damaged remote object of k (which failed
// verification with cause) in the store's quarantine, with its bytes when
// the backend handed them back (backend.Damaged; at most
// backend.MaxDamagedRaw of them). The row is keyed by the damaged ETag, so
// recording the same object again rewrites one row.
func (e *Engine) quarantine(k *keyState, cause error, st *Stats) error {
	r := store.QuarantineRecord{
		Backend: e.name, Tenant: k.tenant, Key: k.key, ETag: k.remote.ETag,
		Time: e.cfg.Now().UTC(), Reason: cause.Error(), Size: k.remote.Size,
	}
	if d := backend.DamagedOf(cause); d != nil {
		r.Raw, r.Size = d.Raw, d.Size
	}
	if err := e.st.PutQuarantine(r); err != nil {
		return err
	}
	st.Quarantined++
	if o, ok := e.cfg.Observer.(QuarantineObserver); ok {
		o.ReconcileQuarantined(e.name)
	}
	return nil
}
