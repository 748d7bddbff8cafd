package node

import (
	"time"

	"github.com/cairnstore/cairn/api"
)

func (n *Node) collectorStatus() *api.CollectorStatus {
	if n.repl == nil || n.repl.collector == nil {
		return nil
	}
	c := n.repl.collector
	out := &api.CollectorStatus{Grace: c.Grace().String(), Interval: c.Interval().String()}
	if p, ok := c.Last(); ok {
		out.LastPass = &api.CollectPassResult{
			Started: p.Started, DurationMS: float64(p.Duration) / float64(time.Millisecond),
			Examined: p.Stats.Examined, Collected: p.Stats.Collected, Waiting: p.Stats.Waiting, Trimmed: p.Stats.Trimmed,
		}
		if p.Err != nil {
			out.LastPass.Error = p.Err.Error()
		}
	}
	return out
}
