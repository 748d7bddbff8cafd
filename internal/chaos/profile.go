package chaos

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/fault"
)

// Profile says which faults a [Backend] injects, and how often. It is the
// body of PUT /v1/admin/chaos/{backend}. Every field is optional; the zero
// value injects nothing. Probabilities are per operation, in [0, 1].
type Profile struct {
	// Seed, when not 0, replaces the wrapper's seed for this profile.
	Seed uint64 `json:"seed,omitempty"`
	// FailBefore fails an operation before it reaches the backend: nothing
	// was applied (a connection reset on send).
	FailBefore float64 `json:"fail_before,omitempty"`
	// FailAfter fails an operation after the backend did it: a write was
	// applied but the caller sees an error, the ambiguous outcome of a
	// connection lost while the answer was on its way.
	FailAfter float64 `json:"fail_after,omitempty"`
	// Latency delays operations before they reach the backend.
	Latency Latency `json:"latency,omitzero"`
	// Partition cuts the backend off: "fail" fails every call at once,
	// "hang" holds every call until the caller gives up or the profile is
	// replaced (healed); "" is no partition.
	Partition string `json:"partition,omitempty"`
	// Throttle answers S3's SlowDown (503) with a Retry-After of
	// RetryAfterS seconds (0: fault.SlowDownDelay); nothing was applied.
	Throttle    float64 `json:"throttle,omitempty"`
	RetryAfterS float64 `json:"retry_after_s,omitempty"`
	// CorruptFlip flips one bit, CorruptTruncate cuts the object short, of
	// an object read by Get; backend verification rejects it as
	// fault.Corruption. The stored object is not touched.
	CorruptFlip     float64 `json:"corrupt_flip,omitempty"`
	CorruptTruncate float64 `json:"corrupt_truncate,omitempty"`
	// StaleList makes a listing omit the keys written through this wrapper
	// in the last StaleMS milliseconds (0: 1000), as an eventually
	// consistent object store's listing does.
	StaleList float64 `json:"stale_list,omitempty"`
	StaleMS   int     `json:"stale_ms,omitempty"`
	// Ops limits the faults to these operations: list, get, stat, put,
	// delete, and the blob operations put_blob, get_blob, list_blobs,
	// delete_blob. Empty means all.
	Ops []string `json:"ops,omitempty"`
}

// Latency is a delay distribution: with probability P an operation waits
// an exponentially distributed time with mean MeanMS, capped at MaxMS (0:
// no cap beyond the distribution's own tail).
type Latency struct {
	P      float64 `json:"p"`
	MeanMS float64 `json:"mean_ms"`
	MaxMS  float64 `json:"max_ms,omitempty"`
}

// Partition modes.
const (
	PartitionFail = "fail"
	PartitionHang = "hang"
)

// DefaultStale is the window of a stale listing when StaleMS is 0.
const DefaultStale = time.Second

// opNames maps Profile.Ops names to backend operations.
var opNames = map[string]string{
	"list": backend.OpList, "get": backend.OpGet, "stat": backend.OpStat,
	"put": backend.OpPut, "delete": backend.OpDelete,
	"put_blob": backend.OpPutBlob, "get_blob": backend.OpGetBlob,
	"list_blobs": backend.OpListBlobs, "delete_blob": backend.OpDeleteBlob,
}

// IsZero reports whether p injects nothing.
func (p Profile) IsZero() bool {
	return p.FailBefore == 0 && p.FailAfter == 0 && p.Latency.P == 0 && p.Partition == "" &&
		p.Throttle == 0 && p.CorruptFlip == 0 && p.CorruptTruncate == 0 && p.StaleList == 0
}

// Validate checks p; the error is fault.Invalid and its message starts
// with the JSON name of the field at fault.
func (p *Profile) Validate() error {
	probs := []struct {
		name string
		v    float64
	}{
		{"fail_before", p.FailBefore}, {"fail_after", p.FailAfter}, {"latency.p", p.Latency.P},
		{"throttle", p.Throttle}, {"corrupt_flip", p.CorruptFlip},
		{"corrupt_truncate", p.CorruptTruncate}, {"stale_list", p.StaleList},
	}
	for _, f := range probs {
		if !(f.v >= 0 && f.v <= 1) { // also catches NaN
			return invalid("%s: %v is not a probability (want 0 to 1)", f.name, f.v)
		}
	}
	l := p.Latency
	switch {
	case !(l.MeanMS >= 0 && l.MeanMS <= 600_000):
		return invalid("latency.mean_ms: %v (want 0 to 600000)", l.MeanMS)
	case !(l.MaxMS >= 0 && l.MaxMS <= 600_000):
		return invalid("latency.max_ms: %v (want 0 to 600000)", l.MaxMS)
	case l.P > 0 && l.MeanMS == 0:
		return invalid("latency.mean_ms: want more than 0 when latency.p is set")
	case l.MaxMS > 0 && l.MaxMS < l.MeanMS:
		return invalid("latency.max_ms: %v is below latency.mean_ms %v", l.MaxMS, l.MeanMS)
	}
	switch p.Partition {
	case "", PartitionFail, PartitionHang:
	default:
		return invalid("partition: %q (want \"fail\", \"hang\" or \"\")", p.Partition)
	}
	if !(p.RetryAfterS >= 0 && p.RetryAfterS <= 3600) {
		return invalid("retry_after_s: %v (want 0 to 3600)", p.RetryAfterS)
	}
	if p.StaleMS < 0 || p.StaleMS > 3_600_000 {
		return invalid("stale_ms: %d (want 0 to 3600000)", p.StaleMS)
	}
	for _, op := range p.Ops {
		if _, ok := opNames[op]; !ok {
			return invalid("ops: %q (want list, get, stat, put, delete, put_blob, get_blob, list_blobs or delete_blob)", op)
		}
	}
	return nil
}

func invalid(format string, a ...any) error {
	return fault.New(fault.Invalid, fault.Context{Op: "chaos.profile"}, fmt.Sprintf(format, a...))
}

// ParseProfile decodes and validates a profile from JSON. Unknown fields
// are an error naming the field, so a typo ("fail_befor") does not quietly
// inject nothing. Errors are fault.Invalid.
func ParseProfile(b []byte) (Profile, error) {
	var p Profile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Profile{}, invalid("%s", jsonProblem(err))
	}
	if dec.More() {
		return Profile{}, invalid("the body holds more than one JSON value")
	}
	if err := p.Validate(); err != nil {
		return Profile{}, err
	}
	return p, nil
}

// jsonProblem turns a decoding error into a message naming the field.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return fmt.Sprintf("%s: want a %s, not %s", te.Field, te.Type, te.Value)
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, se)
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Sprintf("%s: unknown field", strings.Trim(f, `"`))
	}
	switch {
	case errors.Is(err, io.EOF):
		return "empty body: want a profile object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "invalid JSON: the body ends inside a value"
	}
	return err.Error()
}

// appliesTo reports whether p's faults apply to op.
func (p *Profile) appliesTo(op string) bool {
	if len(p.Ops) == 0 {
		return true
	}
	return slices.ContainsFunc(p.Ops, func(name string) bool { return opNames[name] == op })
}

// delay is the latency for the uniform number u: exponential with mean
// MeanMS, capped at MaxMS.
func (l *Latency) delay(u float64) time.Duration {
	ms := -l.MeanMS * math.Log1p(-u)
	if l.MaxMS > 0 {
		ms = min(ms, l.MaxMS)
	}
	return time.Duration(ms * float64(time.Millisecond))
}

func (p *Profile) staleWindow() time.Duration {
	if p.StaleMS == 0 {
		return DefaultStale
	}
	return time.Duration(p.StaleMS) * time.Millisecond
}

func (p *Profile) retryAfter() time.Duration {
	if p.RetryAfterS == 0 {
		return fault.SlowDownDelay
	}
	return time.Duration(p.RetryAfterS * float64(time.Second))
}
