package chaos

import (
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
)

// Failpoint names: the crash points that the store and the reconciler
// call when a failpoint hook is installed.
const (
	// StoreCommitBeforeSync: a group commit is about to be written and
	// fsynced; nothing of it is durable or acknowledged.
	StoreCommitBeforeSync = "store.commit.before-sync"
	// StoreCommitAfterSync: a group commit is durable, and none of its
	// writers has been answered yet.
	StoreCommitAfterSync = "store.commit.after-sync"
	// ReconcileApplyBefore: the reconciler decided on a key and is about
	// to apply the decision (upload, download, resolve).
	ReconcileApplyBefore = "reconcile.apply.before"
	// ReconcileApplyAfter: the decision was applied to both sides, and the
	// round's checkpoint does not yet include the key.
	ReconcileApplyAfter = "reconcile.apply.after"
	// ReconcileRestorePart: a part of a catch-up pack was applied and the
	// restore's checkpoint records it; the parts after it are not applied.
	ReconcileRestorePart = "reconcile.restore.part"
)

// FailpointNames lists the failpoints cairn has.
var FailpointNames = []string{StoreCommitBeforeSync, StoreCommitAfterSync, ReconcileApplyBefore, ReconcileApplyAfter, ReconcileRestorePart}

// Failpoints are the armed crash points of a process, parsed from
// CAIRN_FAILPOINTS. Hit is safe for concurrent use.
type Failpoints struct {
	points map[string]*point // read-only after Parse
	seed   uint64
	log    *slog.Logger
	kill   func() // SIGKILL this process; tests replace it
}

type point struct {
	name  string
	at    int64   // kill@N: on the N-th hit; 0 if unused
	p     float64 // kill%P: on each hit with probability P
	hits  atomic.Int64
	fired atomic.Bool
}

// ParseFailpoints parses "name=action[,name=action]", where action is
// kill@N (SIGKILL on the N-th hit), kill%P (on each hit with probability
// P, drawn from seed and the hit's ordinal, so a seed replays the same
// crash) or kill (kill@1). An empty spec arms nothing. Errors name the bad
// part and are meant for a "CAIRN_FAILPOINTS: …" message.
func ParseFailpoints(spec string, seed uint64, log *slog.Logger) (*Failpoints, error) {
	if log == nil {
		log = slog.Default()
	}
	f := &Failpoints{points: map[string]*point{}, seed: seed, log: log, kill: killSelf}
	for part := range strings.SplitSeq(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, action, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want name=kill@N or name=kill%%P", part)
		}
		if !slices.Contains(FailpointNames, name) {
			return nil, fmt.Errorf("%q: unknown failpoint %q (want one of %s)", part, name, strings.Join(FailpointNames, ", "))
		}
		if f.points[name] != nil {
			return nil, fmt.Errorf("%q: failpoint %s armed twice", part, name)
		}
		pt := &point{name: name}
		switch {
		case action == "kill":
			pt.at = 1
		case strings.HasPrefix(action, "kill@"):
			n, err := strconv.ParseInt(action[len("kill@"):], 10, 64)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("%q: kill@N wants a hit count of 1 or more", part)
			}
			pt.at = n
		case strings.HasPrefix(action, "kill%"):
			p, err := strconv.ParseFloat(action[len("kill%"):], 64)
			if err != nil || !(p > 0 && p <= 1) {
				return nil, fmt.Errorf("%q: kill%%P wants a probability in (0, 1]", part)
			}
			pt.p = p
		default:
			return nil, fmt.Errorf("%q: unknown action %q (want kill, kill@N or kill%%P)", part, action)
		}
		f.points[name] = pt
	}
	return f, nil
}

// Armed reports whether any failpoint is armed.
func (f *Failpoints) Armed() bool { return f != nil && len(f.points) > 0 }

// String lists the armed failpoints, sorted, for the start-up log.
func (f *Failpoints) String() string {
	var s []string
	for _, pt := range f.points {
		if pt.at > 0 {
			s = append(s, fmt.Sprintf("%s=kill@%d", pt.name, pt.at))
		} else {
			s = append(s, fmt.Sprintf("%s=kill%%%v", pt.name, pt.p))
		}
	}
	slices.Sort(s)
	return strings.Join(s, ",")
}

// Hit is the failpoint hook: the store and the reconciler call it at each
// named point. An unarmed name costs one map lookup. An armed point whose
// time has come logs "chaos: failpoint kill" and kills the process with
// SIGKILL: no deferred function, no flush, no graceful anything.
func (f *Failpoints) Hit(name string) {
	pt := f.points[name]
	if pt == nil {
		return
	}
	n := pt.hits.Add(1)
	fire := n == pt.at
	if pt.p > 0 {
		fire = unit(draw(f.seed, "failpoint", name, "", uint64(n), "kill")) < pt.p
	}
	if !fire || pt.fired.Swap(true) {
		return
	}
	f.log.Error("chaos: failpoint kill", "failpoint", name, "hit", n, "pid", os.Getpid())
	f.kill()
}

func killSelf() {
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		_ = p.Kill() // SIGKILL on Unix
	}
	select {} // the signal is on its way; nothing after the failpoint may run
}
