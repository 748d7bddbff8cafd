package cache

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// Random grants, redeems and invalidations over a few keys with a small
// cap: after every step the table's invariants hold. Every live generation
// has its record pending in q (or the cap could not drop it), head stays
// within q, and q stays proportional to the cap. The trim once left head
// beyond q after filtering, and the next grant panicked.
func TestLeaseTableInvariants(t *testing.T) {
	for _, max := range []int{1, 4, 16} {
		lt := &leaseTable{max: max}
		rng := rand.New(rand.NewPCG(uint64(max), 7))
		keys := make([]Key, 3*max+8)
		for i := range keys {
			keys[i] = Key{Tenant: "t", Key: fmt.Sprint(i)}
		}
		held := map[Key]uint64{} // the last token granted per key
		for step := range 200_000 {
			k := keys[rng.IntN(len(keys))]
			switch rng.IntN(4) {
			case 0, 1:
				tok, _ := lt.grant(k)
				held[k] = tok
			case 2:
				lt.redeem(k, held[k])
			default:
				lt.invalidate(k)
			}
			if lt.head > len(lt.q) {
				t.Fatalf("max %d, step %d: head %d beyond len(q) %d", max, step, lt.head, len(lt.q))
			}
			if len(lt.m) > max {
				t.Fatalf("max %d, step %d: %d live generations", max, step, len(lt.m))
			}
			if len(lt.q) > 4*max+40 {
				t.Fatalf("max %d, step %d: len(q) %d", max, step, len(lt.q))
			}
			pending := map[leaseRec]bool{}
			for _, r := range lt.q[lt.head:] {
				pending[r] = true
			}
			for k, tok := range lt.m {
				if !pending[leaseRec{k, tok}] {
					t.Fatalf("max %d, step %d: live generation %v/%d has no pending record", max, step, k, tok)
				}
			}
		}
	}
}
