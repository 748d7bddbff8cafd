package reconcile

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/backend/mem"
	"github.com/cairnstore/cairn/internal/chaos"
	"github.com/cairnstore/cairn/internal/fault"
)

// TestNeverAppliesCorruptObject runs rounds over a chaos-wrapped backend
// whose reads come back damaged (a flipped bit or a cut-short object). The
// engine must skip and count every damaged read and install nothing that
// differs from what the writer wrote; once the damage stops, it converges.
func TestNeverAppliesCorruptObject(t *testing.T) {
	for _, p := range []chaos.Profile{{CorruptFlip: 1}, {CorruptTruncate: 1}, {CorruptFlip: 0.3, CorruptTruncate: 0.2, Seed: 4}} {
		t.Run(fmt.Sprintf("flip%v-truncate%v", p.CorruptFlip, p.CorruptTruncate), func(t *testing.T) {
			m := mem.New("b")
			writer, reader := openStore(t, "w"), openStore(t, "r")
			ew := newEngine(t, writer, m, nil)
			bodies := map[string]string{}
			for i := range 30 {
				k, body := fmt.Sprintf("k%02d", i), fmt.Sprintf(`{"i":%d}`, i)
				put(t, writer, k, body)
				bodies[k] = body
			}
			runRound(t, ew)

			cb := chaos.Wrap(m, 1, nil)
			if err := cb.SetProfile(p); err != nil {
				t.Fatal(err)
			}
			er := newEngine(t, reader, cb, nil)
			st := runRound(t, er)
			injected := cb.Injected()["corrupt_flip"] + cb.Injected()["corrupt_truncate"]
			if injected == 0 || int64(st.Corrupt) != injected {
				t.Fatalf("round: %d corrupt skipped, %d injected (stats %+v)", st.Corrupt, injected, st)
			}
			if st.Actions[Download]+st.Corrupt != 30 {
				t.Fatalf("round: %d downloads + %d corrupt, want 30", st.Actions[Download], st.Corrupt)
			}
			check := func() int {
				n := 0
				for k, body := range bodies {
					l, ok := localState(t, reader, k)
					if !ok {
						continue
					}
					n++
					if l.body != body || l.tomb {
						t.Fatalf("%s installed as %+v, want %s", k, l, body)
					}
				}
				return n
			}
			if got := check(); got != st.Actions[Download] {
				t.Fatalf("%d keys installed, %d downloads", got, st.Actions[Download])
			}

			cb.Heal()
			converge(t, 3, er)
			if got := check(); got != 30 {
				t.Fatalf("after the heal: %d of 30 keys", got)
			}
		})
	}
}

// TestAmbiguousUploadsConverge: uploads that were applied although the
// engine was told they failed (fail_after) are found on the next round and
// recorded, not written again as something else.
func TestAmbiguousUploadsConverge(t *testing.T) {
	m := mem.New("b")
	s := openStore(t, "a")
	cb := chaos.Wrap(m, 9, nil)
	if err := cb.SetProfile(chaos.Profile{FailAfter: 1, Ops: []string{"put"}}); err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, s, cb, nil)
	for i := range 5 {
		put(t, s, fmt.Sprintf("k%d", i), fmt.Sprintf(`{"i":%d}`, i))
	}
	for range 5 { // each round fails at its upload, which did land
		if _, err := e.Round(bg, tenant); err == nil {
			t.Fatal("a round with every upload failing succeeded")
		}
	}
	for i := range 5 {
		k := fmt.Sprintf("k%d", i)
		l, _ := localState(t, s, k)
		r, ok := remoteState(t, m, k)
		if !ok || r != l {
			t.Fatalf("%s: backend %+v (present %v), local %+v: the failed upload was applied", k, r, ok, l)
		}
	}
	cb.Heal()
	st := runRound(t, e)
	if st.Actions[Upload] != 0 {
		t.Fatalf("after the heal: %+v, want no upload (all were applied)", st)
	}
	converge(t, 2, e)
}

// TestFailpointHook: the hook brackets each applied action, and a round
// that applies nothing does not hit it.
func TestFailpointHook(t *testing.T) {
	var hits []string
	s := openStore(t, "a")
	e := newEngine(t, s, mem.New("b"), func(c *Config) { c.Failpoint = func(name string) { hits = append(hits, name) } })
	put(t, s, "k1", `{}`)
	put(t, s, "k2", `{}`)
	runRound(t, e)
	want := []string{chaos.ReconcileApplyBefore, chaos.ReconcileApplyAfter, chaos.ReconcileApplyBefore, chaos.ReconcileApplyAfter}
	if fmt.Sprint(hits) != fmt.Sprint(want) {
		t.Fatalf("hits %v, want %v", hits, want)
	}
	hits = nil
	runRound(t, e)
	if len(hits) != 0 {
		t.Fatalf("a round in sync hit %v", hits)
	}
}

// TestRoundLogs: a skipped corrupt object and a failed round each leave a
// warning an operator can search for.
func TestRoundLogs(t *testing.T) {
	var logs bytes.Buffer
	m := mem.New("b")
	writer, reader := openStore(t, "w"), openStore(t, "r")
	put(t, writer, "k1", `{}`)
	runRound(t, newEngine(t, writer, m, nil))
	cb := chaos.Wrap(m, 1, nil)
	cb.SetProfile(chaos.Profile{CorruptFlip: 1})
	e := newEngine(t, reader, cb, func(c *Config) { c.Logger = slog.New(slog.NewJSONHandler(&logs, nil)) })
	runRound(t, e)
	if !strings.Contains(logs.String(), `"msg":"reconcile: corrupt remote object","backend":"b","tenant":"t1","key":"k1","repair":false`) {
		t.Fatalf("no corrupt-object warning in %s", logs.String())
	}
	// Met again at every round until a node with the key repairs it: its
	// line is not repeated within the minute.
	runRound(t, e)
	if n := strings.Count(logs.String(), `"msg":"reconcile: corrupt remote object"`); n != 1 {
		t.Fatalf("%d corrupt-object warnings after two rounds, want 1: %s", n, logs.String())
	}
	cb.SetProfile(chaos.Profile{FailBefore: 1})
	if _, err := e.Round(bg, tenant); err == nil {
		t.Fatal("a round with every call failing succeeded")
	}
	if !strings.Contains(logs.String(), `"msg":"reconcile: round failed","backend":"b","tenant":"t1"`) ||
		!strings.Contains(logs.String(), `"class":"transient"`) {
		t.Fatalf("no round-failed warning in %s", logs.String())
	}
	// A new write whose upload fails says so, once a minute, not at
	// every retry of the uploader.
	put(t, reader, "k2", `{}`)
	for range 2 {
		if _, err := e.Upload(bg, tenant); err == nil {
			t.Fatal("an upload with every call failing succeeded")
		}
	}
	if n := strings.Count(logs.String(), `"msg":"reconcile: upload failed","backend":"b","tenant":"t1","class":"transient"`); n != 1 {
		t.Fatalf("%d upload-failed warnings after two failed uploads, want 1: %s", n, logs.String())
	}
}

// actionObserver records ReconcileAction calls, and the outcomes rounds
// name for themselves (the guard's "held").
type actionObserver struct {
	mu      sync.Mutex
	actions map[string]int
}

func (o *actionObserver) ReconcileRound(_ string, err error, _ time.Duration) {
	var named interface{ Outcome() string }
	if errors.As(err, &named) {
		o.ReconcileAction("", "round:"+named.Outcome())
	}
}
func (o *actionObserver) ReconcileKeys(string, int)           {}
func (o *actionObserver) ReconcileConflict(string, string)    {}
func (o *actionObserver) ReconcileBytes(string, int64, int64) {}
func (o *actionObserver) ReconcileAction(_, action string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.actions[action]++
}

func (o *actionObserver) count(action string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.actions[action]
}

// TestCorruptAndGuardStopAreCounted: both are actions an alert can see.
func TestCorruptAndGuardStopAreCounted(t *testing.T) {
	var logs bytes.Buffer
	obs := &actionObserver{actions: map[string]int{}}
	m := mem.New("b")
	writer, reader := openStore(t, "w"), openStore(t, "r")
	for i := range 10 {
		put(t, writer, fmt.Sprintf("k%d", i), `{}`)
	}
	ew := newEngine(t, writer, m, func(c *Config) {
		c.Observer, c.Guard = obs, Guard{MaxShare: 0.1, Floor: 1}
		c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	runRound(t, ew)
	for i := range 5 {
		del(t, writer, fmt.Sprintf("k%d", i))
	}
	if _, err := ew.Round(bg, tenant); !errors.Is(err, ErrNeedsConfirm) {
		t.Fatalf("round deleting half the tenant: %v, want ErrNeedsConfirm", err)
	}
	if obs.count(ActionGuardStop) != 1 || !strings.Contains(logs.String(), `"msg":"reconcile: round stopped by the mass-deletion guard"`) {
		t.Fatalf("guard stop: counted %d, logs %s", obs.count(ActionGuardStop), logs.String())
	}
	// The rounds' outcome metric counts it as held, not as an unclassified
	// failure (which runbook 1 reads as the backend's).
	if n := obs.count("round:held"); n != 1 {
		t.Fatalf("rounds reported held: %d, want 1", n)
	}
	cb := chaos.Wrap(m, 1, nil)
	cb.SetProfile(chaos.Profile{CorruptTruncate: 1})
	st := runRound(t, newEngine(t, reader, cb, func(c *Config) { c.Observer = obs }))
	if st.Corrupt == 0 || obs.count(ActionCorrupt) != st.Corrupt {
		t.Fatalf("corrupt: %d skipped, %d counted", st.Corrupt, obs.count(ActionCorrupt))
	}
}

// TestStaleListingIsRaced: a listing that omits a key the backend holds
// makes the engine upload it create-only, which fails: the key is counted
// as raced and left, never overwritten blindly, and the next round after
// the listing catches up uploads it.
func TestStaleListingIsRaced(t *testing.T) {
	obs := &actionObserver{actions: map[string]int{}}
	m := mem.New("b")
	s := openStore(t, "a")
	cb := chaos.Wrap(m, 1, nil)
	cb.SetProfile(chaos.Profile{StaleList: 1, StaleMS: 3_600_000})
	e := newEngine(t, s, cb, func(c *Config) { c.Observer = obs })
	put(t, s, "k1", `{"v":1}`)
	runRound(t, e)
	v2 := put(t, s, "k1", `{"v":2}`)
	st := runRound(t, e)
	if st.Raced != 1 || obs.count(ActionRaced) != 1 {
		t.Fatalf("round over a stale listing: %+v, %d raced counted; want 1", st, obs.count(ActionRaced))
	}
	if r, _ := remoteState(t, m, "k1"); r.body != `{"v":1}` {
		t.Fatalf("the backend holds %+v after the stale round, want v1", r)
	}
	cb.Heal()
	runRound(t, e)
	if r, _ := remoteState(t, m, "k1"); r.id != v2.Version.ID() {
		t.Fatalf("after the heal the backend holds %+v, want v2", r)
	}
}

// TestRoundFailingAtItsFirstCall: a round whose first backend call (a
// restarted node's first round reads the digests' layout, or lists) fails,
// as with wrong credentials or an outage, is counted and logged as a
// failed round, like one that fails later: the rounds' outcomes are what
// an operator's alert watches.
func TestRoundFailingAtItsFirstCall(t *testing.T) {
	var logs bytes.Buffer
	m := mem.New("b")
	s := openStore(t, "w")
	put(t, s, "k1", `{}`)
	runRound(t, digestEngine(t, s, m)) // caught up: a round now compares digests first
	// A new engine (a restarted node) reads the digests' layout first.
	var outcomes []error
	e := newEngine(t, s, m, func(c *Config) {
		c.Digests = true
		c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
		c.Observer = &roundObserver{onRound: func(err error) { outcomes = append(outcomes, err) }}
	})
	var calls []string
	m.SetFault(func(op, tenant, key string) error {
		calls = append(calls, op+" "+key)
		return fault.New(fault.Unauthorized, fault.Context{}, "SignatureDoesNotMatch")
	})
	if _, err := e.Round(bg, tenant); err == nil {
		t.Fatal("a round with every call refused succeeded")
	}
	if len(calls) != 1 || !strings.Contains(calls[0], "layout") {
		t.Fatalf("calls before the round gave up: %v; want the layout's only", calls)
	}
	if len(outcomes) != 1 || fault.ClassOf(outcomes[0]) != fault.Unauthorized {
		t.Fatalf("rounds observed: %v; want one, unauthorized", outcomes)
	}
	if !strings.Contains(logs.String(), `"msg":"reconcile: round failed","backend":"b","tenant":"t1"`) ||
		!strings.Contains(logs.String(), `"class":"unauthorized"`) {
		t.Fatalf("no round-failed warning in %s", logs.String())
	}
}

// TestRepeatedWarningsThinned: a warning that repeats for one cause is
// written at most once a minute, the next line saying how many were not;
// another cause (another tenant) is written at once.
func TestRepeatedWarningsThinned(t *testing.T) {
	var logs bytes.Buffer
	now := time.Unix(1_700_000_000, 0)
	e := newEngine(t, openStore(t, "w"), mem.New("b"), func(c *Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
		c.Now = func() time.Time { return now }
	})
	for range 5 {
		e.warnRepeated(bg, "scrub t1", "reconcile: scrub of a tenant failed", "tenant", "t1")
		now = now.Add(time.Second)
	}
	e.warnRepeated(bg, "scrub t2", "reconcile: scrub of a tenant failed", "tenant", "t2")
	now = now.Add(warnEvery)
	e.warnRepeated(bg, "scrub t1", "reconcile: scrub of a tenant failed", "tenant", "t1")
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], `"tenant":"t1"`) || strings.Contains(lines[0], "suppressed") ||
		!strings.Contains(lines[1], `"tenant":"t2"`) || !strings.Contains(lines[2], `"suppressed":4`) {
		t.Fatalf("log lines:\n%s\nwant t1, t2, then t1 with suppressed 4", logs.String())
	}
}
