package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// Histogram records durations in log-linear buckets, as HdrHistogram does
// with two significant digits: values below 256ns are exact, and above that
// each power of two is split into 128 equal buckets, so a reported
// percentile is at most 1/128 (0.8%) above the recorded value it stands for.
// It covers every non-negative time.Duration in 7,296 counters (57 KiB).
//
// A Histogram is not safe for concurrent use: give each goroutine its own
// and [Histogram.Merge] them afterwards.
type Histogram struct {
	counts   [numBuckets]uint64
	n        uint64
	sum      float64 // nanoseconds, for the mean
	min, max int64
}

const (
	subBits    = 7
	subCount   = 1 << subBits // linear buckets per power of two
	exactBelow = 2 * subCount // values below this have a bucket each
	// numBuckets: the exact range, then one row of subCount buckets for
	// each shift from 1 to 55 (bits.Len64 of a positive int64 is at most 63,
	// and a shift keeps subBits+1 of them).
	numBuckets = exactBelow + (63-subBits-1)*subCount
)

// bucket is the index of v's bucket.
func bucket(v int64) int {
	if v < exactBelow {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - (subBits + 1) // ≥ 1
	top := int(v >> shift)                         // in [subCount, 2*subCount)
	return exactBelow + (shift-1)*subCount + top - subCount
}

// highest is the largest value that falls in bucket i.
func highest(i int) int64 {
	if i < exactBelow {
		return int64(i)
	}
	shift := (i-exactBelow)/subCount + 1
	top := uint64((i-exactBelow)%subCount + subCount)
	return int64((top+1)<<shift - 1) // uint64: the last bucket ends at 1<<63 - 1
}

// Record adds one observation; negative durations count as 0.
func (h *Histogram) Record(d time.Duration) {
	v := max(int64(d), 0)
	h.counts[bucket(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
}

// Merge adds every observation of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Count is the number of observations.
func (h *Histogram) Count() uint64 { return h.n }

// Min and Max are the exact extremes; 0 when empty.
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Max is the largest observation; 0 when empty.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean is the exact mean; 0 when empty.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// Quantile returns the q-quantile (q in [0, 1]) by the nearest-rank method:
// the smallest recorded value v such that at least q of the observations
// are ≤ v, reported as the top of v's bucket (never above Max). Outcomes:
// 0 for an empty histogram; Min for q ≤ 0; Max for q ≥ 1.
func (h *Histogram) Quantile(q float64) time.Duration {
	switch {
	case h.n == 0:
		return 0
	case q <= 0:
		return time.Duration(h.min)
	case q >= 1:
		return time.Duration(h.max)
	}
	rank := max(uint64(math.Ceil(q*float64(h.n))), 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(highest(i), h.max))
		}
	}
	return time.Duration(h.max) // unreachable: the counts add up to n
}
