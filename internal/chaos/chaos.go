package chaos

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

var _ backend.Backend = (*Backend)(nil)

// Backend wraps a backend and injects the faults of its current [Profile].
// The zero profile passes every call straight through, after one atomic
// load. Safe for concurrent use.
type Backend struct {
	inner backend.Backend
	name  string
	seed  uint64
	obs   Observer
	now   func() time.Time // stale-listing clock; tests replace it

	cur atomic.Pointer[state] // nil: no profile

	mu       sync.Mutex           // guards the following
	counts   map[opKey]uint64     // calls per (op, tenant, key) since the profile was set
	recent   map[string]time.Time // tenant\x00key → last write through the wrapper (stale_list only)
	log      []Injection          // the schedule, in injection order, at most maxLog
	dropped  int                  // injections not kept in log
	injected map[string]int64     // fault → count, over the wrapper's life
}

// state is one profile in force; healed is closed when it is replaced, to
// release the calls a "hang" partition holds.
type state struct {
	p      Profile
	seed   uint64
	healed chan struct{}
}

type opKey struct{ op, tenant, key string }

// maxLog bounds the schedule kept in memory; later injections are counted
// (Dropped) but not kept.
const maxLog = 100_000

// Wrap returns b with fault injection, initially without a profile. seed
// drives every decision of profiles that do not name their own. obs, if
// not nil, hears of every injected fault.
func Wrap(b backend.Backend, seed uint64, obs Observer) *Backend {
	return &Backend{
		inner: b, name: b.Name(), seed: seed, obs: obs, now: time.Now,
		counts: map[opKey]uint64{}, recent: map[string]time.Time{}, injected: map[string]int64{},
	}
}

// Name implements backend.Backend: the wrapped backend's name.
func (b *Backend) Name() string { return b.name }

// Unwrap returns the wrapped backend.
func (b *Backend) Unwrap() backend.Backend { return b.inner }

// SetProfile validates p and puts it in force. It restarts the schedule:
// the per-(op, key) counters start again from zero, so setting the same
// profile and seed and then making the same calls injects the same faults.
// Calls held by a "hang" partition are released to run under p. The zero
// profile heals every fault.
func (b *Backend) SetProfile(p Profile) error {
	if err := p.Validate(); err != nil {
		return err
	}
	var next *state
	if !p.IsZero() {
		next = &state{p: p, seed: b.seed, healed: make(chan struct{})}
		if p.Seed != 0 {
			next.seed = p.Seed
		}
	}
	b.mu.Lock()
	clear(b.counts)
	clear(b.recent)
	old := b.cur.Swap(next)
	b.mu.Unlock()
	if old != nil {
		close(old.healed)
	}
	return nil
}

// Heal clears the profile: SetProfile(Profile{}).
func (b *Backend) Heal() { _ = b.SetProfile(Profile{}) }

// Profile returns the profile in force (the zero profile when healed).
func (b *Backend) Profile() Profile {
	if s := b.cur.Load(); s != nil {
		return s.p
	}
	return Profile{}
}

// call is one operation's draw: the profile it runs under and its ordinal.
type call struct {
	st              *state
	op, tenant, key string
	n               uint64
}

// roll returns the uniform number in [0, 1) of fault f for this call.
func (c *call) roll(f string) float64 {
	return unit(draw(c.st.seed, c.op, c.tenant, c.key, c.n, f))
}

// begin draws the call's number and injects the faults that come before
// the backend is reached: partition, throttling, fail_before, latency. It
// returns a nil call when no profile applies to op.
func (b *Backend) begin(ctx context.Context, op, tenant, key string) (*call, error) {
	for {
		st := b.cur.Load()
		if st == nil || !st.p.appliesTo(op) {
			return nil, nil
		}
		c := &call{st: st, op: op, tenant: tenant, key: key}
		b.mu.Lock()
		k := opKey{op, tenant, key}
		c.n = b.counts[k]
		b.counts[k] = c.n + 1
		b.mu.Unlock()
		switch st.p.Partition {
		case PartitionFail:
			b.inject(ctx, c, "partition", "fail")
			return nil, b.err(c, fault.Transient, fmt.Errorf("chaos: partitioned from %s: %w", b.name, syscall.EHOSTUNREACH))
		case PartitionHang:
			b.inject(ctx, c, "partition", "hang")
			select {
			case <-ctx.Done():
				return nil, b.err(c, fault.Unknown, fmt.Errorf("chaos: partitioned from %s (hang): %w", b.name, ctx.Err()))
			case <-st.healed:
				continue // run under the profile that replaced this one
			}
		}
		if c.roll("throttle") < st.p.Throttle {
			b.inject(ctx, c, "throttle", "")
			err := fault.Throttled(b.err(c, fault.Transient, fmt.Errorf("chaos: s3 SlowDown (503)")))
			return nil, fault.WithRetryAfter(err, st.p.retryAfter())
		}
		if c.roll("fail_before") < st.p.FailBefore {
			b.inject(ctx, c, "fail_before", "")
			return nil, b.err(c, fault.Transient, fmt.Errorf("chaos: connection reset before the request was sent: %w", syscall.ECONNRESET))
		}
		if l := &st.p.Latency; c.roll("latency") < l.P {
			d := l.delay(c.roll("latency.delay"))
			b.inject(ctx, c, "latency", d.String())
			if err := sleep(ctx, d); err != nil {
				return nil, b.err(c, fault.Unknown, fmt.Errorf("chaos: delayed %v: %w", d, err))
			}
		}
		return c, nil
	}
}

// end injects fail_after: the operation succeeded (err is nil) but the
// caller is told it failed. A genuine failure is returned as is.
func (b *Backend) end(ctx context.Context, c *call, err error) error {
	if c == nil || err != nil || c.roll("fail_after") >= c.st.p.FailAfter {
		return err
	}
	b.inject(ctx, c, "fail_after", "")
	return b.err(c, fault.Transient, fmt.Errorf("chaos: connection reset after the request was applied: %w", syscall.ECONNRESET))
}

func (b *Backend) err(c *call, class fault.Class, cause error) error {
	key := c.key
	if c.op == backend.OpList || c.op == backend.OpListBlobs {
		key = "" // as the backends report a listing's errors
	}
	return fault.E(class, backend.Ctx(c.op, b.name, c.tenant, key), cause)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// List implements backend.Backend. A stale listing omits the keys written
// through the wrapper within the profile's stale window.
func (b *Backend) List(ctx context.Context, tenant string, opts backend.ListOptions) (backend.Page, error) {
	c, err := b.begin(ctx, backend.OpList, tenant, listKey(opts))
	if err != nil {
		return backend.Page{}, err
	}
	p, err := b.inner.List(ctx, tenant, opts)
	if err == nil && c != nil && c.roll("stale_list") < c.st.p.StaleList {
		omitted := b.omitRecent(tenant, &p, c.st.p.staleWindow())
		// How many entries go missing depends on timing, so it is a note
		// for the log, not part of the schedule.
		b.injectNote(ctx, c, "stale_list", "", fmt.Sprintf("omitted %d recent writes", omitted))
	}
	if err = b.end(ctx, c, err); err != nil {
		return backend.Page{}, err
	}
	return p, nil
}

// listKey is what a listing's draws and counters are keyed by: the page
// it asks for.
func listKey(opts backend.ListOptions) string {
	if opts.Prefix == "" {
		return opts.StartAfter
	}
	return opts.Prefix + "\x00" + opts.StartAfter
}

// omitRecent drops from p the entries written within window; it returns
// how many it dropped.
func (b *Backend) omitRecent(tenant string, p *backend.Page, window time.Duration) int {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	kept := p.Entries[:0:0]
	for _, e := range p.Entries {
		if t, ok := b.recent[tenant+"\x00"+e.Key]; ok && now.Sub(t) < window {
			continue
		}
		kept = append(kept, e)
	}
	n := len(p.Entries) - len(kept)
	p.Entries = kept
	return n
}

// wrote records a write for stale listings, when a profile wants them.
func (b *Backend) wrote(c *call) {
	if c == nil || c.st.p.StaleList == 0 {
		return
	}
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.recent) >= 1<<16 { // keep it bounded: forget what no window still covers
		for k, t := range b.recent {
			if now.Sub(t) >= c.st.p.staleWindow() {
				delete(b.recent, k)
			}
		}
	}
	b.recent[c.tenant+"\x00"+c.key] = now
}

// Get implements backend.Backend. A corrupted read damages the object's
// bytes as read, then verifies them as every backend does, so the caller
// gets the fault.Corruption that a damaged object really produces.
func (b *Backend) Get(ctx context.Context, tenant, key string) (*backend.Object, error) {
	c, err := b.begin(ctx, backend.OpGet, tenant, key)
	if err != nil {
		return nil, err
	}
	o, err := b.inner.Get(ctx, tenant, key)
	if err == nil && c != nil {
		if damaged := b.corrupt(ctx, c, o); damaged != nil {
			return nil, damaged
		}
	}
	if err = b.end(ctx, c, err); err != nil {
		return nil, err
	}
	return o, nil
}

// corrupt damages o's stored form if the call draws corrupt_flip or
// corrupt_truncate, and returns the verification error (nil if neither).
func (b *Backend) corrupt(ctx context.Context, c *call, o *backend.Object) error {
	flip, cut := c.roll("corrupt_flip") < c.st.p.CorruptFlip, c.roll("corrupt_truncate") < c.st.p.CorruptTruncate
	if !flip && !cut {
		return nil
	}
	raw := backend.EncodeObject(c.tenant, c.key, &o.Version, o.Body)
	pos := draw(c.st.seed, c.op, c.tenant, c.key, c.n, "corrupt.pos")
	var what, detail string
	if flip {
		i := int(pos % uint64(len(raw)))
		raw[i] ^= 1 << (pos >> 32 % 8)
		what, detail = "corrupt_flip", fmt.Sprintf("byte %d of %d", i, len(raw))
	} else {
		i := int(pos % uint64(len(raw))) // < len: at least one byte is lost
		what, detail = "corrupt_truncate", fmt.Sprintf("%d of %d bytes", i, len(raw))
		raw = raw[:i]
	}
	_, verr := backend.VerifyObject(raw, c.tenant, c.key, o.ETag)
	if verr == nil {
		return nil // SHA-256 missed a one-bit change: not in this universe
	}
	b.inject(ctx, c, what, detail)
	return b.err(c, fault.Unknown, fmt.Errorf("chaos %s (%s): %w", what, detail, verr))
}

// Stat implements backend.Backend.
func (b *Backend) Stat(ctx context.Context, tenant, key string) (backend.Entry, error) {
	c, err := b.begin(ctx, backend.OpStat, tenant, key)
	if err != nil {
		return backend.Entry{}, err
	}
	e, err := b.inner.Stat(ctx, tenant, key)
	if err = b.end(ctx, c, err); err != nil {
		return backend.Entry{}, err
	}
	return e, nil
}

// Put implements backend.Backend. Under fail_after the object is stored
// and the caller still gets an error.
func (b *Backend) Put(ctx context.Context, tenant, key string, v doc.Version, body []byte, pre backend.Precondition) (string, error) {
	c, err := b.begin(ctx, backend.OpPut, tenant, key)
	if err != nil {
		return "", err
	}
	etag, err := b.inner.Put(ctx, tenant, key, v, body, pre)
	if err == nil {
		b.wrote(c)
	}
	if err = b.end(ctx, c, err); err != nil {
		return "", err
	}
	return etag, nil
}

// Delete implements backend.Backend.
func (b *Backend) Delete(ctx context.Context, tenant, key string, pre backend.Precondition) error {
	c, err := b.begin(ctx, backend.OpDelete, tenant, key)
	if err != nil {
		return err
	}
	err = b.inner.Delete(ctx, tenant, key, pre)
	return b.end(ctx, c, err)
}
