package cli

import (
	"crypto/rand"
	"encoding/binary"
	"flag"
	"fmt"

	"github.com/cairnstore/cairn/internal/node"
)

// chaosFlags are the fault simulator's settings of 'cairn serve'. Their
// environment twins are the names the chaos harness uses:
// CAIRN_ENABLE_CHAOS, CAIRN_CHAOS_SEED, CAIRN_FAILPOINTS,
// CAIRN_CHAOS_BALLAST.
type chaosFlags struct {
	enable     bool
	seed       uint64
	failpoints string
	ballast    byteSize
}

func (c *chaosFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&c.enable, "enable-chaos", false, "turn on the fault simulator: backends wrapped, PUT /v1/admin/chaos/{backend} on the admin listener (admin token required), failpoints; never in production")
	fs.Uint64Var(&c.seed, "chaos-seed", 0, "`seed` of every injected fault and probabilistic failpoint (0: random, printed at start)")
	fs.StringVar(&c.failpoints, "failpoints", "", "crash points to arm, `spec`: name=kill@N (SIGKILL on the N-th hit) or name=kill%P (each hit with probability P), comma-separated; names: store.commit.before-sync, store.commit.after-sync, reconcile.apply.before, reconcile.apply.after, reconcile.restore.part")
	fs.Var(&c.ballast, "chaos-ballast", "memory to allocate and hold at start, for memory-pressure runs with GOMEMLIMIT (`size`)")
}

// config sets cfg.Chaos. The chaos settings without --enable-chaos are an
// error rather than ignored: a crash test that forgot the flag would
// otherwise pass without crashing anything.
func (c *chaosFlags) config(cfg *node.Config) error {
	if !c.enable {
		switch {
		case c.failpoints != "":
			return fmt.Errorf("--failpoints (CAIRN_FAILPOINTS) %q needs --enable-chaos", c.failpoints)
		case c.ballast != 0:
			return fmt.Errorf("--chaos-ballast (CAIRN_CHAOS_BALLAST) needs --enable-chaos")
		case c.seed != 0:
			return fmt.Errorf("--chaos-seed (CAIRN_CHAOS_SEED) needs --enable-chaos")
		}
		return nil
	}
	seed := c.seed
	for seed == 0 {
		var b [8]byte
		rand.Read(b[:])
		seed = binary.LittleEndian.Uint64(b[:])
	}
	cfg.Chaos = &node.Chaos{Seed: seed, Failpoints: c.failpoints, Ballast: int64(c.ballast)}
	return nil
}
