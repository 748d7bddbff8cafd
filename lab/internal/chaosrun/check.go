package chaosrun

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/cairnstore/cairn/internal/register"
)

// Op is one client operation as the load driver saw it.
type Op struct {
	Client int    `json:"client"`
	Node   int    `json:"node"` // index of the node it was sent to
	Kind   byte   `json:"kind"` // 'p'ut, 'd'elete, 'g'et
	Key    string `json:"key"`
	// Value is the body written (put) or read (get; "" when absent).
	Value string `json:"value,omitempty"`
	// Found: the document existed (get, delete).
	Found bool `json:"found,omitempty"`
	// OK: the node answered and the answer is definite (2xx, or 404 for a
	// get or delete). A write with OK is acknowledged.
	OK bool `json:"ok"`
	// Unknown: a write whose outcome is not known (transport error,
	// timeout, 5xx): it may or may not have taken effect.
	Unknown bool `json:"unknown,omitempty"`
	// Status is the HTTP status; 0 for a transport error or timeout.
	Status int `json:"status"`
	// Retried names the cause of each attempt the client library made and
	// retried before the final one ("503", "connection refused", …).
	Retried []string `json:"retried,omitempty"`
	// Cause names a failure that has no status: "timeout", "connection
	// reset", "incomplete ingest", …
	Cause string `json:"cause,omitempty"`
	// Call and Return are offsets from the start of the run.
	Call   time.Duration `json:"call"`
	Return time.Duration `json:"return"`
	// RequestID names the request in the node's log; TraceID its trace.
	RequestID string `json:"request_id,omitempty"`
	TraceID   string `json:"trace_id,omitempty"`
}

func (o Op) write() bool { return o.Kind == 'p' || o.Kind == 'd' }

// noop reports a delete the node answered 404: the node held no live
// version of the key, so it wrote nothing (store.Delete's contract) and the
// answer is a read of absence. Between nodes that is normal: a put
// acknowledged by another node a few milliseconds earlier may not have
// reached this one yet, and when it does it is the newest version, rightly.
func (o Op) noop() bool { return o.Kind == 'd' && o.OK && !o.Found }

// Anomaly is one invariant violation a checker found.
type Anomaly struct {
	Check  string `json:"check"`
	Key    string `json:"key,omitempty"`
	Detail string `json:"detail"`
}

func (a Anomaly) String() string {
	if a.Key == "" {
		return a.Check + ": " + a.Detail
	}
	return fmt.Sprintf("%s: key %q: %s", a.Check, a.Key, a.Detail)
}

// LostWrites checks that no acknowledged write was lost: final maps each
// key to its value at the end ("" or absent: no document). For every key
// with an acknowledged write, let M be the acknowledged write called last;
// the final value must be M's, or that of a write that may have taken
// effect after M started (one that returned after M's call, or whose
// outcome is unknown). Anything else is an older value: M was lost. A
// delete answered 404 wrote nothing (see Op.noop) and is not a write here.
func LostWrites(history []Op, final map[string]string) []Anomaly {
	byKey := map[string][]Op{}
	for _, o := range history {
		if o.write() && (o.OK || o.Unknown) && !o.noop() {
			byKey[o.Key] = append(byKey[o.Key], o)
		}
	}
	var out []Anomaly
	for _, key := range sortedKeys(byKey) {
		ops := byKey[key]
		var last *Op
		for i := range ops {
			if ops[i].OK && (last == nil || ops[i].Call > last.Call) {
				last = &ops[i]
			}
		}
		if last == nil {
			continue
		}
		got := final[key]
		allowed := false
		for _, o := range ops {
			if o.OK && o.Call != last.Call && o.Return < last.Call {
				continue // acknowledged before M began: M must supersede it
			}
			if writtenValue(o) == got {
				allowed = true
				break
			}
		}
		if !allowed {
			// Say where the final value came from, so that a failure in CI
			// can be read without the history.
			from := "no write in the history"
			for _, o := range ops {
				if writtenValue(o) == got {
					from = fmt.Sprintf("%c to node%d, called %v, returned %v, %s", o.Kind, o.Node, o.Call, o.Return, opRef(o))
				}
			}
			out = append(out, Anomaly{Check: "lost-write", Key: key,
				Detail: fmt.Sprintf("final value %q (%s); the last acknowledged write (%c %q to node%d, called %v, returned %v, %s) is gone",
					got, from, last.Kind, writtenValue(*last), last.Node, last.Call, last.Return, opRef(*last))})
		}
	}
	return out
}

// opRef names what of o can be found in the node's log and traces: its
// request id (the client sees one only on an error answer), else its
// trace id.
func opRef(o Op) string {
	switch {
	case o.RequestID != "":
		return "request " + o.RequestID
	case o.TraceID != "":
		return "trace " + o.TraceID
	}
	return "no request or trace id"
}

// writtenValue is the value a write leaves: its body, or "" for a delete.
func writtenValue(o Op) string {
	if o.Kind == 'd' {
		return ""
	}
	return o.Value
}

// Divergence checks that every replica holds the same value for every key
// (a key missing from a replica counts as "").
func Divergence(replicas []map[string]string) []Anomaly {
	return differ("divergence", replicas)
}

// Unsettled checks that every replica answers the same version (its ETag)
// for every key. Equal values do not make replicas equal: a last-writer-
// wins resolution is a new version carrying the winner's body, so the node
// that wrote the winner shows that body under the old version until it
// downloads the resolution, which its next round does. Checks made after
// convergence (no transfer in later rounds) need both equal.
func Unsettled(etags []map[string]string) []Anomaly {
	return differ("unsettled", etags)
}

// differ reports, as check, each key whose entry differs between replicas.
func differ(check string, replicas []map[string]string) []Anomaly {
	keys := map[string]bool{}
	for _, r := range replicas {
		for k := range r {
			keys[k] = true
		}
	}
	var out []Anomaly
	for _, k := range sortedKeys(keys) {
		for i := 1; i < len(replicas); i++ {
			if replicas[i][k] != replicas[0][k] {
				out = append(out, Anomaly{Check: check, Key: k,
					Detail: fmt.Sprintf("replica 0 has %q, replica %d has %q", short(replicas[0][k]), i, short(replicas[i][k]))})
				break
			}
		}
	}
	return out
}

// PingPong checks the versions a key showed in successive observations
// after the heal (ETags, one per round): a version that comes back after
// another replaced it is conflict ping-pong. Repeats of the same version
// are fine; so is one change (the conflict being resolved).
func PingPong(seq map[string][]string) []Anomaly {
	var out []Anomaly
	for _, k := range sortedKeys(seq) {
		seen := map[string]int{}
		prev := ""
		for i, v := range seq[k] {
			if i > 0 && v == prev {
				continue
			}
			if j, ok := seen[v]; ok {
				out = append(out, Anomaly{Check: "ping-pong", Key: k,
					Detail: fmt.Sprintf("version %s came back at observation %d after being replaced (first at %d): %v", v, i, j, seq[k])})
				break
			}
			seen[v] = i
			prev = v
		}
	}
	return out
}

// CorruptServed checks that every successful read returned a body some
// client wrote: anything else is a damaged copy served as valid.
func CorruptServed(history []Op) []Anomaly {
	written := map[string]bool{}
	for _, o := range history {
		if o.Kind == 'p' {
			written[o.Value] = true
		}
	}
	var out []Anomaly
	for _, o := range history {
		if o.Kind == 'g' && o.OK && o.Found && !written[o.Value] {
			out = append(out, Anomaly{Check: "corrupt-served", Key: o.Key,
				Detail: fmt.Sprintf("node %d served %q, which no client wrote (request %s)", o.Node, short(o.Value), o.RequestID)})
		}
	}
	return out
}

// ErrorCounts are the client-visible outcomes of a run.
//
// An error is any answer a healthy node would not give: a 5xx, a 408, a
// 429, a timeout, a connection error, an incomplete ingest. Shed requests
// (429 and 503) are errors too: the client did not get what it asked for.
// A 404 for an absent key, a 412 for a lost compare-and-set and a 409 for
// siblings under the manual policy are answers, not errors. A request
// counts once, by its final outcome, after the client library's retries.
type ErrorCounts struct {
	Total  int `json:"total"`
	Errors int `json:"errors"` // every failure, shed included
	Shed   int `json:"shed"`   // of Errors: 429 and 503
	// Retried counts the attempts the client library retried, by cause
	// ("503", "429", "connection refused", …), over every request;
	// Absorbed the requests that succeeded after one or more of them.
	Retried  map[string]int `json:"retried,omitempty"`
	Absorbed int            `json:"absorbed"`
	// Causes counts the errors by cause: the status, or the kind of
	// transport failure.
	Causes map[string]int `json:"causes,omitempty"`
}

// Rate is the share of requests that failed, shed included.
func (c ErrorCounts) Rate() float64 {
	if c.Total == 0 {
		return 0
	}
	return float64(c.Errors) / float64(c.Total)
}

// RateWithoutShed is the share of requests that failed other than by
// being shed.
func (c ErrorCounts) RateWithoutShed() float64 {
	if c.Total == 0 {
		return 0
	}
	return float64(c.Errors-c.Shed) / float64(c.Total)
}

// RetriedTotal is the number of attempts retried.
func (c ErrorCounts) RetriedTotal() int {
	n := 0
	for _, v := range c.Retried {
		n += v
	}
	return n
}

// RetriedString lists the retried attempts by cause, most first:
// "503 ×12, connection refused ×3"; "none" when there were none.
func (c ErrorCounts) RetriedString() string { return byCause(c.Retried) }

// byCause lists counts by cause, most first, "none" when empty.
func byCause(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	causes := sortedKeys(m)
	sort.SliceStable(causes, func(i, j int) bool { return m[causes[i]] > m[causes[j]] })
	var b strings.Builder
	for i, k := range causes {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s ×%d", k, m[k])
	}
	return b.String()
}

// failed reports whether o's outcome is an error (see ErrorCounts).
func (o Op) failed() bool {
	switch {
	case o.OK:
		return false
	case o.Status == 404, o.Status == 409, o.Status == 412:
		return false
	}
	return true
}

func shed(status int) bool { return status == 429 || status == 503 }

// CountErrors classifies the outcomes in history.
func CountErrors(history []Op) ErrorCounts {
	var c ErrorCounts
	for _, o := range history {
		c.Total++
		if o.failed() {
			c.Errors++
			if shed(o.Status) {
				c.Shed++
			}
			cause := o.Cause
			if o.Status != 0 || cause == "" {
				cause = strconv.Itoa(o.Status)
			}
			if c.Causes == nil {
				c.Causes = map[string]int{}
			}
			c.Causes[cause]++
		}
		for _, cause := range o.Retried {
			if c.Retried == nil {
				c.Retried = map[string]int{}
			}
			c.Retried[cause]++
		}
		if len(o.Retried) > 0 && !o.failed() {
			c.Absorbed++
		}
	}
	return c
}

// ErrorRate checks the client-visible error rate, shed included, against
// max (e.g. 0.001).
func ErrorRate(c ErrorCounts, max float64) []Anomaly {
	if c.Errors == 0 || c.Rate() < max {
		return nil
	}
	return []Anomaly{{Check: "error-rate", Detail: fmt.Sprintf("%d of %d requests failed (%.3f%%, %d of them shed; %.3f%% without), not below %.3f%%",
		c.Errors, c.Total, 100*c.Rate(), c.Shed, 100*c.RateWithoutShed(), 100*max)}}
}

// errorRateDetail is the error-rate check's line when it holds.
func errorRateDetail(c ErrorCounts) string {
	return fmt.Sprintf("%d errors in %d requests (%.3f%%; by cause: %s), %d of them shed (without sheds %.3f%%); the client's retries absorbed %d requests' failures (attempts retried: %s)",
		c.Errors, c.Total, 100*c.Rate(), byCause(c.Causes), c.Shed, 100*c.RateWithoutShed(), c.Absorbed, c.RetriedString())
}

// Fault is one injected fault and what made it visible.
type Fault struct {
	Kind   string        `json:"kind"`   // latency, timeout, reset_peer, bandwidth, down, kill, corrupt, ballast…
	Target string        `json:"target"` // the link, node or object it hit
	At     time.Duration `json:"at"`     // offset from the start of the scenario
	For    time.Duration `json:"for,omitempty"`
	// Metric names the series that moved while the fault was on, and by
	// how much; TraceID is a trace the fault shows up in.
	Metric  string `json:"metric"`
	TraceID string `json:"trace_id"`
}

// FaultsVisible checks that every fault type injected moved a metric and
// left a trace. One fault of a type that shows both is enough for the type:
// a short fault can fall between two requests.
func FaultsVisible(faults []Fault) []Anomaly {
	type seen struct{ metric, trace bool }
	kinds := map[string]*seen{}
	for _, f := range faults {
		s := kinds[f.Kind]
		if s == nil {
			s = &seen{}
			kinds[f.Kind] = s
		}
		s.metric = s.metric || f.Metric != ""
		s.trace = s.trace || f.TraceID != ""
	}
	var out []Anomaly
	for _, k := range sortedKeys(kinds) {
		s := kinds[k]
		if !s.metric {
			out = append(out, Anomaly{Check: "fault-visible", Detail: fmt.Sprintf("fault %s moved no metric", k)})
		}
		if !s.trace {
			out = append(out, Anomaly{Check: "fault-visible", Detail: fmt.Sprintf("fault %s left no trace id", k)})
		}
	}
	return out
}

// Linearizable checks, with porcupine, that each key's history on node is
// linearizable as a register (put, get, delete). Failed reads are left
// out; a write with an unknown outcome may take effect at any point after
// its call. A check that exceeds timeout is reported as such.
func Linearizable(history []Op, node int, timeout time.Duration) []Anomaly {
	var ops []porcupine.Operation
	for _, o := range history {
		if o.Node != node || !(o.OK || (o.Unknown && o.write())) {
			continue
		}
		ret := int64(o.Return)
		if o.Unknown {
			ret = math.MaxInt64
		}
		ops = append(ops, porcupine.Operation{ClientId: o.Client, Input: register.Input{Op: o.Kind, Key: o.Key, Value: o.Value},
			Output: register.Output{Value: o.Value, Found: o.Found, Unknown: o.Unknown}, Call: int64(o.Call), Return: ret})
	}
	switch porcupine.CheckOperationsTimeout(register.Model, ops, timeout) {
	case porcupine.Ok:
		return nil
	case porcupine.Unknown:
		return []Anomaly{{Check: "linearizable", Detail: fmt.Sprintf("node %d: check did not finish within %v (%d ops)", node, timeout, len(ops))}}
	}
	// Name the keys whose histories fail, checking each alone (the model's
	// own partition, in key order).
	var out []Anomaly
	for _, part := range register.Model.Partition(ops) {
		if porcupine.CheckOperationsTimeout(register.Model, part, timeout) == porcupine.Illegal {
			k := part[0].Input.(register.Input).Key
			out = append(out, Anomaly{Check: "linearizable", Key: k, Detail: fmt.Sprintf("node %d: the key's %d operations have no linearization", node, len(part))})
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func short(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// percentile returns the p-th percentile (0..1) of ds, sorting it.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(math.Ceil(p*float64(len(ds)))) - 1
	return ds[max(0, min(i, len(ds)-1))]
}
