package node

import "time"

// CollectorStatus is the tombstone collector's part of GET
// /v1/admin/reconcile: its settings and its last pass.
type CollectorStatus struct {
	Grace    string             `json:"grace"`    // --gc-grace, as a Go duration
	Interval string             `json:"interval"` // --gc-interval; "0s": no periodic pass
	LastPass *CollectPassResult `json:"last_pass,omitempty"`
}

// CollectPassResult is one collector pass (reconcile.CollectPass) as JSON.
// Waiting counts tombstones past the grace period that some backend does
// not hold yet: a number that stays up means that backend's rounds are
// not getting through.
type CollectPassResult struct {
	Started    time.Time `json:"started"`
	DurationMS float64   `json:"duration_ms"`
	Examined   int       `json:"examined"`
	Collected  int       `json:"collected"`
	Waiting    int       `json:"waiting"`
	Trimmed    int       `json:"trimmed"`
	Error      string    `json:"error,omitempty"`
}

func (n *Node) collectorStatus() *CollectorStatus {
	if n.repl == nil || n.repl.collector == nil {
		return nil
	}
	c := n.repl.collector
	out := &CollectorStatus{Grace: c.Grace().String(), Interval: c.Interval().String()}
	if p, ok := c.Last(); ok {
		out.LastPass = &CollectPassResult{
			Started: p.Started, DurationMS: float64(p.Duration) / float64(time.Millisecond),
			Examined: p.Stats.Examined, Collected: p.Stats.Collected, Waiting: p.Stats.Waiting, Trimmed: p.Stats.Trimmed,
		}
		if p.Err != nil {
			out.LastPass.Error = p.Err.Error()
		}
	}
	return out
}
