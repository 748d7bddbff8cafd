package reconcile

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/backend/mem"
)

// BenchmarkSmallTenantDuringPass measures how long a 10-key tenant listed
// after a 20,000-key one waits for its round to end in a pass (all keys in
// sync, mem backend): with turns of 1000 keys (the default), and with one
// turn per round (what a pass did before turns).
//
//	go test -run '^$' -bench SmallTenantDuringPass -benchtime 5x ./internal/reconcile/
func BenchmarkSmallTenantDuringPass(b *testing.B) {
	const big, small = 20000, 10
	for _, turn := range []int{1000, 1 << 30} {
		name := "turn=" + strconv.Itoa(turn)
		if turn == 1<<30 {
			name = "turn=whole-round"
		}
		b.Run(name, func(b *testing.B) {
			a := openStore(b, "a")
			be := mem.New("b")
			for i := range big {
				putIn(b, a, "a-big", fmt.Sprintf("k%05d", i))
			}
			for i := range small {
				putIn(b, a, "b-small", fmt.Sprintf("k%d", i))
			}
			ended := make(chan time.Time, 2)
			e := newEngine(b, a, be, func(c *Config) {
				c.TurnKeys = turn
				c.Observer = &roundObserver{onRound: func(error) { ended <- time.Now() }}
			})
			for _, tn := range []string{"a-big", "b-small"} { // the pass finds everything in sync
				if _, err := e.Round(bg, tn); err != nil {
					b.Fatal(err)
				}
				<-ended
			}
			runEngineB(b, e)
			var firstSum, passSum time.Duration
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				e.Trigger()
				first := <-ended
				last := <-ended
				firstSum += first.Sub(start)
				passSum += last.Sub(start)
			}
			b.ReportMetric(float64(firstSum.Milliseconds())/float64(b.N), "first-round-ms")
			b.ReportMetric(float64(passSum.Milliseconds())/float64(b.N), "pass-ms")
		})
	}
}
