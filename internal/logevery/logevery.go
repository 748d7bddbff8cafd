// Package logevery thins a log line that repeats for one cause: it lets
// the line through at most once a period per key, and the next line let
// through says how many were not ("suppressed"). A failure that lasts (a
// backend refusing credentials, a disk that stays full) would otherwise
// write a line per attempt, thousands an hour, burying everything else.
//
// A Limiter is safe for concurrent use; its zero value lets a key's line
// through once a minute (DefaultPeriod).
package logevery

import (
	"sync"
	"time"
)

// DefaultPeriod is a Limiter's period when none is set: a lasting failure
// still shows in the log, once a minute.
const DefaultPeriod = time.Minute

// Limiter remembers when each key's line was last let through.
type Limiter struct {
	Period time.Duration // DefaultPeriod when 0

	mu   sync.Mutex
	last map[string]seen // guarded by mu
}

type seen struct {
	at         time.Time
	suppressed int // lines not let through since at
}

// Allow reports whether key's line is to be written at now, and, when it
// is, how many of its lines were not since the last one written.
func (l *Limiter) Allow(key string, now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last = map[string]seen{}
	}
	prev, found := l.last[key]
	period := l.Period
	if period <= 0 {
		period = DefaultPeriod
	}
	if found && now.Sub(prev.at) < period {
		prev.suppressed++
		l.last[key] = prev
		return false, 0
	}
	l.last[key] = seen{at: now}
	return true, prev.suppressed
}
