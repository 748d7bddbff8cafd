package chaosrun

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Event is one fault in a schedule: Kind on Target from At for For.
type Event struct {
	At     time.Duration `json:"at"`
	For    time.Duration `json:"for"`
	Kind   string        `json:"kind"`
	Target int           `json:"target"` // node index (its S3 link for network faults)
	// Param is the fault's size: latency ms, bandwidth KB/s, timeout ms.
	Param int `json:"param,omitempty"`
}

func (e Event) String() string {
	return fmt.Sprintf("%v+%v %s node%d %d", e.At, e.For, e.Kind, e.Target, e.Param)
}

// NetKinds are the network faults toxiproxy injects on a node→S3 link.
var NetKinds = []string{"latency", "timeout", "reset_peer", "bandwidth"}

// Schedule returns the fault schedule for seed: faults of the given kinds,
// on targets 0..targets-1, over total, one at a time per target with
// quiet gaps between them. It is a pure function of its arguments: the
// same seed replays the same faults at the same offsets.
func Schedule(seed uint64, total time.Duration, targets int, kinds []string) []Event {
	rng := rand.New(rand.NewPCG(seed, 0x63616972_6e636861)) // "cairncha"
	var out []Event
	// Each fault lasts 5–10% of the run and is followed by a gap of
	// 2.5–5%, so a short run still sees every kind and a long one many.
	unit := total / 20
	if unit < 100*time.Millisecond {
		unit = 100 * time.Millisecond
	}
	at := unit // let the load start first
	for i := 0; at+unit < total-unit; i++ {
		e := Event{
			At:     at,
			For:    unit + time.Duration(rng.Int64N(int64(unit))),
			Kind:   kinds[i%len(kinds)], // every kind early, in order
			Target: rng.IntN(targets),
		}
		if i >= len(kinds) {
			e.Kind = kinds[rng.IntN(len(kinds))]
		}
		switch e.Kind {
		case "latency":
			e.Param = 50 + rng.IntN(250)
		case "bandwidth":
			e.Param = 16 + rng.IntN(112)
		case "timeout":
			e.Param = 0 // hold the data until the toxic goes
		}
		if end := total - unit; e.At+e.For > end {
			e.For = end - e.At
		}
		out = append(out, e)
		at += e.For + unit/2 + time.Duration(rng.Int64N(int64(unit/2)))
	}
	return out
}
