package resilience

import (
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/cairnstore/cairn/internal/fault"
)

// Config configures the policies around one backend. The zero value of each
// field means its default (listed in the package doc and in Defaults); -1
// disables the limits that can be disabled (MaxConcurrent, RatePerSecond
// already defaults to off).
type Config struct {
	Backend string // names the backend in errors, logs and observer calls; required

	// Retry.
	MaxAttempts    int           // attempts including the first; 1 = no retries
	BaseDelay      time.Duration // ceiling of the first backoff delay
	MaxDelay       time.Duration // cap of the backoff ceiling
	MaxElapsed     time.Duration // no retry starts after this much time since the first attempt
	AttemptTimeout time.Duration // per attempt; -1 = none (the caller's context only)
	MaxRetryAfter  time.Duration // a Retry-After longer than this is not waited for: the error is returned

	// Retry budget: retries ≤ BudgetShare × first attempts + BudgetMinRetries per BudgetWindow.
	BudgetShare      float64
	BudgetMinRetries int // -1 = none
	BudgetWindow     time.Duration

	// Circuit breaker: opens on ConsecutiveFailures in a row, or on a
	// failure rate ≥ FailureRate over FailureWindow once MinCalls were made.
	ConsecutiveFailures uint
	FailureRate         float64
	MinCalls            uint
	FailureWindow       time.Duration
	OpenDelay           time.Duration // open → half-open
	HalfOpenProbes      uint          // successes in a row that close a half-open breaker

	// Bulkhead and rate limit.
	MaxConcurrent int           // calls in flight; -1 = unlimited
	QueueWait     time.Duration // how long a call may wait for a bulkhead or rate permit; 0 = not at all
	RatePerSecond uint          // attempts per second, smoothed; 0 = unlimited

	Observer Observer         // breaker state changes; nil = none
	Logger   *slog.Logger     // nil = slog.Default()
	Rand     func() float64   // jitter source in [0, 1), safe for concurrent use; nil = math/rand/v2
	Now      func() time.Time // clock of the retry budget; nil = time.Now
}

// Defaults returns the configuration New uses for every zero field.
func Defaults() Config {
	return Config{
		MaxAttempts:         4,
		BaseDelay:           50 * time.Millisecond,
		MaxDelay:            5 * time.Second,
		MaxElapsed:          30 * time.Second,
		AttemptTimeout:      10 * time.Second,
		MaxRetryAfter:       30 * time.Second,
		BudgetShare:         0.2,
		BudgetMinRetries:    10,
		BudgetWindow:        10 * time.Second,
		ConsecutiveFailures: 5,
		FailureRate:         0.5,
		MinCalls:            20,
		FailureWindow:       30 * time.Second,
		OpenDelay:           10 * time.Second,
		HalfOpenProbes:      3,
		MaxConcurrent:       64,
	}
}

// withDefaults fills the zero fields from Defaults.
func (c Config) withDefaults() Config {
	d := Defaults()
	orDefault(&c.BaseDelay, d.BaseDelay)
	orDefault(&c.MaxDelay, d.MaxDelay)
	orDefault(&c.MaxElapsed, d.MaxElapsed)
	orDefault(&c.AttemptTimeout, d.AttemptTimeout)
	orDefault(&c.MaxRetryAfter, d.MaxRetryAfter)
	orDefault(&c.BudgetWindow, d.BudgetWindow)
	orDefault(&c.FailureWindow, d.FailureWindow)
	orDefault(&c.OpenDelay, d.OpenDelay)
	orDefault(&c.MaxAttempts, d.MaxAttempts)
	orDefault(&c.BudgetShare, d.BudgetShare)
	orDefault(&c.BudgetMinRetries, d.BudgetMinRetries)
	orDefault(&c.ConsecutiveFailures, d.ConsecutiveFailures)
	orDefault(&c.FailureRate, d.FailureRate)
	orDefault(&c.MinCalls, d.MinCalls)
	orDefault(&c.HalfOpenProbes, d.HalfOpenProbes)
	orDefault(&c.MaxConcurrent, d.MaxConcurrent)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// validate names the first bad setting, as a Config-class error: a policy
// that cannot be built must stop the process at startup, not misbehave later.
func (c Config) validate() error {
	bad := func(setting, why string) error {
		return fault.New(fault.Config, fault.Context{Op: "resilience.new", Backend: c.Backend},
			"resilience: "+setting+" "+why)
	}
	switch {
	case c.Backend == "":
		return bad("Backend", "must name the backend")
	case c.MaxAttempts < 1:
		return bad("MaxAttempts", "must be ≥ 1")
	case c.BaseDelay < 0 || c.MaxDelay < c.BaseDelay:
		return bad("BaseDelay/MaxDelay", "must satisfy 0 < BaseDelay ≤ MaxDelay")
	case c.MaxElapsed < 0 || c.MaxRetryAfter < 0 || c.QueueWait < 0:
		return bad("MaxElapsed/MaxRetryAfter/QueueWait", "must not be negative")
	case c.AttemptTimeout < -1:
		return bad("AttemptTimeout", "must be positive, or -1 for none")
	case c.BudgetShare < 0 || c.BudgetShare > 1 || c.BudgetMinRetries < -1:
		return bad("BudgetShare/BudgetMinRetries", "share must be in (0, 1] and min retries ≥ 0, or -1 for none")
	case c.BudgetWindow < 0 || c.FailureWindow < 0 || c.OpenDelay < 0:
		return bad("BudgetWindow/FailureWindow/OpenDelay", "must not be negative")
	case c.FailureRate < 0 || c.FailureRate > 1:
		return bad("FailureRate", "must be in (0, 1]")
	case c.MaxConcurrent < -1:
		return bad("MaxConcurrent", "must be positive, or -1 for unlimited")
	}
	return nil
}

// orDefault sets *dst to def when it holds its type's zero value: a zero
// setting means "the default" throughout this package's configs.
func orDefault[T comparable](dst *T, def T) {
	var zero T
	if *dst == zero {
		*dst = def
	}
}
