package resilience

import (
	"io"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// advance moves a synctest bubble's fake clock forward by d. Inside a
// bubble time.Sleep does not wait for anything real: it returns as soon as
// every goroutine in the bubble is blocked and the fake clock reaches d.
// It is the only use of time.Sleep in these tests.
func advance(d time.Duration) { time.Sleep(d) }

// seeded returns a deterministic jitter source, safe for concurrent use as
// Config.Rand must be.
func seeded(seed uint64) func() float64 {
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(seed, seed))
	return func() float64 {
		mu.Lock()
		defer mu.Unlock()
		return r.Float64()
	}
}

// recorder is an Observer that keeps the transitions.
type recorder struct{ got []string }

func (r *recorder) OnStateChange(backend string, from, to State) {
	r.got = append(r.got, backend+":"+from.String()+"->"+to.String())
}

func runtimeGosched() { runtime.Gosched() }

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
