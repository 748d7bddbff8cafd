package chaosrun

import (
	"strings"
	"testing"
	"time"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func put(client int, key, v string, call, ret int) Op {
	return Op{Client: client, Kind: 'p', Key: key, Value: v, OK: true, Status: 200, Call: ms(call), Return: ms(ret)}
}

func get(client int, key, v string, call, ret int) Op {
	return Op{Client: client, Kind: 'g', Key: key, Value: v, Found: v != "", OK: true, Status: 200, Call: ms(call), Return: ms(ret)}
}

// wantOne fails unless got holds exactly one anomaly of check about key.
func wantOne(t *testing.T, got []Anomaly, check, key string) {
	t.Helper()
	if len(got) != 1 || got[0].Check != check || got[0].Key != key {
		t.Fatalf("got %v, want one %s anomaly on %q", got, check, key)
	}
}

func TestLostWrites(t *testing.T) {
	h := []Op{
		put(1, "a", "a1", 0, 10), put(1, "a", "a2", 20, 30), // a2 acknowledged last
		put(1, "b", "b1", 0, 10), put(2, "b", "b2", 5, 15), // concurrent: either may win
		put(1, "c", "c1", 0, 10), {Kind: 'p', Key: "c", Value: "c2", Unknown: true, Call: ms(20), Return: ms(25)},
		put(1, "d", "d1", 0, 10), {Kind: 'd', Key: "d", OK: true, Found: true, Status: 204, Call: ms(20), Return: ms(30)},
	}
	ok := map[string]string{"a": "a2", "b": "b1", "c": "c2", "d": ""}
	if got := LostWrites(h, ok); len(got) != 0 {
		t.Fatalf("clean history: %v", got)
	}
	ok["c"] = "c1" // the unknown write may not have happened
	if got := LostWrites(h, ok); len(got) != 0 {
		t.Fatalf("unknown write not applied: %v", got)
	}
	planted := map[string]string{"a": "a1", "b": "b2", "c": "c1", "d": ""} // a2 lost
	wantOne(t, LostWrites(h, planted), "lost-write", "a")
	planted = map[string]string{"a": "a2", "b": "b2", "c": "c1", "d": "d1"} // the delete undone
	wantOne(t, LostWrites(h, planted), "lost-write", "d")

	// A put acknowledged before a delete was called loses to it, whichever
	// node it went to and however close: the report names both writes.
	near := func(node int, ret time.Duration) []Op {
		return []Op{
			{Node: node, Kind: 'p', Key: "e", Value: "e1", OK: true, Status: 201, Call: ret - time.Millisecond, Return: ret},
			{Node: 0, Kind: 'd', Key: "e", OK: true, Found: true, Status: 204, Call: 100 * time.Millisecond, Return: 101 * time.Millisecond},
		}
	}
	final := map[string]string{"e": "e1"}
	for _, h := range [][]Op{near(1, 99_700*time.Microsecond), near(0, 99_700*time.Microsecond), near(1, 98_900*time.Microsecond)} {
		got := LostWrites(h, final)
		wantOne(t, got, "lost-write", "e")
		if d := got[0].Detail; !strings.Contains(d, "p to node") || !strings.Contains(d, `d "" to node0`) {
			t.Errorf("the report does not name both writes: %s", d)
		}
	}

	// A delete answered 404 found no live version on its node and wrote
	// nothing: a put acknowledged by another node just before (not yet
	// replicated there) is rightly the final value. The partition scenario
	// met exactly this (part-022, seed 1): put to node1 returned 7.981 s,
	// delete to node0 called 7.988 s, answered 404.
	notFound := Op{Node: 0, Kind: 'd', Key: "e", OK: true, Status: 404, RequestID: "r", Call: ms(7988), Return: ms(8000)}
	h = []Op{{Node: 1, Kind: 'p', Key: "e", Value: "e1", OK: true, Status: 201, Call: ms(7959), Return: ms(7981)}, notFound}
	if got := LostWrites(h, final); len(got) != 0 {
		t.Fatalf("a 404 delete counted as a write: %v", got)
	}
	// It cannot explain a missing document either: the put was lost.
	wantOne(t, LostWrites(h, map[string]string{}), "lost-write", "e")
	// A key whose only writes are 404 deletes has nothing to lose.
	if got := LostWrites([]Op{notFound}, map[string]string{"e": "e1"}); len(got) != 0 {
		t.Fatalf("404 deletes alone: %v", got)
	}
}

func TestDivergence(t *testing.T) {
	r0 := map[string]string{"a": "1", "b": "2"}
	if got := Divergence([]map[string]string{r0, {"a": "1", "b": "2"}}); len(got) != 0 {
		t.Fatalf("equal replicas: %v", got)
	}
	wantOne(t, Divergence([]map[string]string{r0, {"a": "1", "b": "3"}}), "divergence", "b")
	wantOne(t, Divergence([]map[string]string{r0, {"a": "1"}}), "divergence", "b")
	wantOne(t, Divergence([]map[string]string{r0, {"a": "1", "b": "2", "c": "4"}}), "divergence", "c")
}

// TestUnsettled: replicas that answer the same body under different
// versions (one holds a last-writer-wins resolution, the other still the
// winner it carries the body of) have not converged: the second still
// downloads the resolution.
func TestUnsettled(t *testing.T) {
	r0 := map[string]string{"a": `"v1"`, "b": `"v2"`}
	if got := Unsettled([]map[string]string{r0, {"a": `"v1"`, "b": `"v2"`}}); len(got) != 0 {
		t.Fatalf("equal versions: %v", got)
	}
	vals := []map[string]string{{"a": `{"n":1}`}, {"a": `{"n":1}`}}
	tags := []map[string]string{{"a": `"winner"`}, {"a": `"resolution"`}}
	if got := Divergence(vals); len(got) != 0 {
		t.Fatalf("equal values: %v", got)
	}
	wantOne(t, Unsettled(tags), "unsettled", "a")
	wantOne(t, Unsettled([]map[string]string{r0, {"a": `"v1"`}}), "unsettled", "b")
}

func TestPingPong(t *testing.T) {
	fine := map[string][]string{"a": {"x", "x", "y", "y", "y"}, "b": {"z"}}
	if got := PingPong(fine); len(got) != 0 {
		t.Fatalf("one resolution: %v", got)
	}
	wantOne(t, PingPong(map[string][]string{"a": {"x", "y", "x"}, "b": {"z"}}), "ping-pong", "a")
	wantOne(t, PingPong(map[string][]string{"a": {"x", "y", "y", "z", "y"}}), "ping-pong", "a")
}

func TestCorruptServed(t *testing.T) {
	h := []Op{put(1, "a", `{"v":1}`, 0, 10), get(2, "a", `{"v":1}`, 20, 30), get(2, "a", "", 40, 50)}
	if got := CorruptServed(h); len(got) != 0 {
		t.Fatalf("clean reads: %v", got)
	}
	h = append(h, get(3, "a", `{"v":3}`, 60, 70)) // a flipped bit: 1 → 3
	wantOne(t, CorruptServed(h), "corrupt-served", "a")
}

// TestErrorRate: the rate is what the clients saw. Shed requests (429,
// 503), 408s and transport errors count; a 404 for an absent key, a 412
// for a lost compare-and-set and a 409 for siblings do not; a request that
// succeeded after retries counts as a success, and its retried attempts are
// reported by cause.
func TestErrorRate(t *testing.T) {
	var h []Op
	for range 2000 {
		h = append(h, Op{OK: true, Status: 200})
	}
	h = append(h,
		Op{Kind: 'p', Status: 412}, Op{Kind: 'p', Status: 409}, Op{Kind: 'g', OK: true, Status: 404}, // answers
		Op{OK: true, Status: 200, Retried: []string{"503", "connection refused"}}, // absorbed
		Op{Status: 429, Retried: []string{"429"}})                                 // shed, after a retry
	c := CountErrors(h)
	if c.Total != 2005 || c.Errors != 1 || c.Shed != 1 || c.Absorbed != 1 || c.RetriedTotal() != 3 {
		t.Fatalf("counts %+v", c)
	}
	if got, want := c.RetriedString(), "429 ×1, 503 ×1, connection refused ×1"; got != want {
		t.Errorf("retried %q, want %q", got, want)
	}
	if got := ErrorRate(c, 0.001); len(got) != 0 {
		t.Fatalf("1 in 2005: %v", got)
	}
	// A shed request is an error the client saw: two of them, with a 408
	// and a timeout, are 4 in 2008, above 0.1%; without the sheds 0.1%.
	h = append(h, Op{Status: 503}, Op{Status: 408}, Op{Status: 0, Cause: "timeout"})
	c = CountErrors(h)
	if c.Errors != 4 || c.Shed != 2 {
		t.Fatalf("counts %+v", c)
	}
	if got := ErrorRate(c, 0.001); len(got) != 1 || !strings.Contains(got[0].Detail, "4 of 2008") {
		t.Fatalf("4 in 2008: %v", got)
	}
	if got, want := byCause(c.Causes), "408 ×1, 429 ×1, 503 ×1, timeout ×1"; got != want {
		t.Errorf("errors by cause %q, want %q", got, want)
	}
	if got, want := c.RateWithoutShed(), 2.0/2008; got != want {
		t.Errorf("rate without sheds %v, want %v", got, want)
	}
}

func TestFaultsVisible(t *testing.T) {
	fs := []Fault{
		{Kind: "latency", Metric: "m", TraceID: "t"},
		{Kind: "kill"}, {Kind: "kill", Metric: "m", TraceID: "t"}, // one visible kill is enough
	}
	if got := FaultsVisible(fs); len(got) != 0 {
		t.Fatalf("visible faults: %v", got)
	}
	got := FaultsVisible(append(fs, Fault{Kind: "reset_peer", Metric: "m"}))
	if len(got) != 1 || !strings.Contains(got[0].Detail, "reset_peer left no trace") {
		t.Fatalf("planted invisible fault: %v", got)
	}
}

func TestLinearizable(t *testing.T) {
	h := []Op{
		put(1, "a", "1", 0, 10), get(2, "a", "1", 5, 15), put(1, "a", "2", 20, 30),
		get(2, "a", "2", 40, 50), put(3, "b", "x", 0, 100), get(2, "b", "", 10, 20), // concurrent: may read nothing
		{Client: 4, Kind: 'p', Key: "b", Value: "y", Unknown: true, Call: ms(110), Return: ms(120)},
		get(2, "b", "y", 200, 210), // the unknown write took effect
	}
	if got := Linearizable(h, 0, 5*time.Second); len(got) != 0 {
		t.Fatalf("linearizable history: %v", got)
	}
	stale := append(h, get(2, "a", "1", 60, 70)) // reads the overwritten value after the ack
	wantOne(t, Linearizable(stale, 0, 5*time.Second), "linearizable", "a")
	other := append(h, Op{Node: 1, Kind: 'g', Key: "a", Value: "1", Found: true, OK: true, Call: ms(60), Return: ms(70)})
	if got := Linearizable(other, 0, 5*time.Second); len(got) != 0 {
		t.Fatalf("another node's reads are not node 0's history: %v", got)
	}
}

func TestScheduleReplays(t *testing.T) {
	a := Schedule(42, time.Minute, 3, NetKinds)
	b := Schedule(42, time.Minute, 3, NetKinds)
	if len(a) < len(NetKinds) {
		t.Fatalf("a minute holds %d faults, want every kind: %v", len(a), a)
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("seed 42 twice: event %d is %v then %v", i, a[i], b[i])
		}
	}
	for i, k := range NetKinds {
		if a[i].Kind != k {
			t.Errorf("event %d is %s, want %s (every kind first)", i, a[i].Kind, k)
		}
	}
	for i := 1; i < len(a); i++ {
		if a[i].At < a[i-1].At+a[i-1].For || a[i].At+a[i].For > time.Minute {
			t.Fatalf("event %d %v overlaps %v or ends after the run", i, a[i], a[i-1])
		}
	}
	if c := Schedule(43, time.Minute, 3, NetKinds); c[0] == a[0] && c[1] == a[1] {
		t.Errorf("seeds 42 and 43 give the same start: %v", c[:2])
	}
	// The load scenario's short form: every kind fits in 10s.
	all := append(append([]string{}, NetKinds...), SimKinds...)
	for seed := range uint64(50) {
		if s := Schedule(seed, 10*time.Second, 2, all); len(s) < len(all) {
			t.Fatalf("seed %d: %d faults in 10s, want every one of %v: %v", seed, len(s), all, s)
		}
	}
}

func TestMoved(t *testing.T) {
	before := Metrics{
		`cairn_backend_operations_total{backend=s3,op=backend.put,outcome=ok}`:        10,
		`cairn_backend_operations_total{backend=s3,op=backend.put,outcome=transient}`: 1,
		`cairn_replication_lag_seconds{backend=s3}`:                                   5,
	}
	after := Metrics{
		`cairn_backend_operations_total{backend=s3,op=backend.put,outcome=ok}`:        500, // successes are not a fault
		`cairn_backend_operations_total{backend=s3,op=backend.put,outcome=transient}`: 4,
		`cairn_backend_operations_total{backend=s3,op=backend.get,outcome=not_found}`: 9, // nor absent objects
		`cairn_replication_lag_seconds{backend=s3}`:                                   7,
	}
	if got, want := Moved(before, after), `cairn_backend_operations_total{backend=s3,op=backend.put,outcome=transient} +3`; got != want {
		t.Errorf("Moved = %q, want %q (a failed call outranks the lag)", got, want)
	}
	delete(after, `cairn_backend_operations_total{backend=s3,op=backend.put,outcome=transient}`)
	if got, want := Moved(before, after), `cairn_replication_lag_seconds{backend=s3} +2`; got != want {
		t.Errorf("Moved = %q, want %q", got, want)
	}
	after[`cairn_replication_lag_seconds{backend=s3}`] = 1 // the lag fell
	if got := Moved(before, after); got != "" {
		t.Errorf("only successes moved and the lag fell: Moved = %q, want none", got)
	}
}

// A write lost on any node is reported with that node, even when the first
// node has it.
func TestLostOnAny(t *testing.T) {
	h := []Op{put(1, "a", "a1", 0, 10), put(1, "a", "a2", 20, 30)}
	got := lostOnAny(h, []map[string]string{{"a": "a2"}, {"a": "a2"}, {"a": "a1"}})
	wantOne(t, got, "lost-write", "a")
	if !strings.HasPrefix(got[0].Detail, "on node2: ") {
		t.Errorf("the report does not name the node: %s", got[0].Detail)
	}
	if got := lostOnAny(h, []map[string]string{{"a": "a2"}, {"a": "a2"}}); len(got) != 0 {
		t.Fatalf("no node lost a write: %v", got)
	}
}
