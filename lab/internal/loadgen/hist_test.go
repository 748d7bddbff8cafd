package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketBounds(t *testing.T) {
	for i := range numBuckets - 1 {
		hi := highest(i)
		if got := bucket(hi); got != i {
			t.Fatalf("bucket(highest(%d) = %d) = %d, want %d", i, hi, got, i)
		}
		if got := bucket(hi + 1); got != i+1 {
			t.Fatalf("bucket(highest(%d)+1 = %d) = %d, want %d", i, hi+1, got, i+1)
		}
	}
	if got, want := highest(numBuckets-1), int64(math.MaxInt64); got != want {
		t.Errorf("highest(last) = %d, want %d", got, want)
	}
	if got, want := bucket(math.MaxInt64), numBuckets-1; got != want {
		t.Errorf("bucket(MaxInt64) = %d, want %d", got, want)
	}
}

// TestQuantileOracle checks every reported percentile against the exact
// nearest-rank percentile of the sorted observations: never below it, and
// at most 1/128 above it.
func TestQuantileOracle(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	dists := map[string]func() int64{
		"exact range": func() int64 { return r.Int64N(256) },
		"uniform 1ms": func() int64 { return r.Int64N(int64(time.Millisecond)) },
		"lognormal":   func() int64 { return int64(math.Exp(r.NormFloat64()*1.5 + 13)) },
		"bimodal tail": func() int64 {
			if r.IntN(100) < 97 {
				return 500_000 + r.Int64N(1000)
			}
			return 80_000_000 + r.Int64N(1000)
		},
		"huge": func() int64 { return r.Int64N(math.MaxInt64) },
	}
	quantiles := []float64{0, 0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 1}
	for name, gen := range dists {
		for _, n := range []int{1, 7, 1000, 100_000} {
			var h Histogram
			vals := make([]int64, n)
			for i := range vals {
				vals[i] = gen()
				h.Record(time.Duration(vals[i]))
			}
			slices.Sort(vals)
			for _, q := range quantiles {
				rank := max(int(math.Ceil(q*float64(n))), 1)
				want := vals[rank-1]
				got := int64(h.Quantile(q))
				if got < want || float64(got-want) > float64(want)/subCount {
					t.Errorf("%s, n=%d: Quantile(%v) = %d, want %d (+ at most 1/%d)", name, n, q, got, want, subCount)
				}
			}
			if got, want := int64(h.Min()), vals[0]; got != want {
				t.Errorf("%s, n=%d: Min = %d, want %d", name, n, got, want)
			}
			if got, want := int64(h.Max()), vals[n-1]; got != want {
				t.Errorf("%s, n=%d: Max = %d, want %d", name, n, got, want)
			}
		}
	}
}

func TestMergeEqualsOneHistogram(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var all, a, b Histogram
	for i := range 10_000 {
		d := time.Duration(r.Int64N(int64(50 * time.Millisecond)))
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	var merged Histogram
	merged.Merge(&a)
	merged.Merge(&b)
	merged.Merge(&Histogram{}) // an empty one changes nothing
	if merged.counts != all.counts || merged.Count() != all.Count() || merged.Min() != all.Min() || merged.Max() != all.Max() {
		t.Errorf("merged = {n %d, min %v, max %v}, want {n %d, min %v, max %v} and equal counts",
			merged.Count(), merged.Min(), merged.Max(), all.Count(), all.Min(), all.Max())
	}
	if got, want := merged.Mean(), all.Mean(); got != want {
		t.Errorf("merged Mean = %v, want %v", got, want)
	}
}

func TestEmptyAndNegative(t *testing.T) {
	var h Histogram
	if got := h.Quantile(0.5); got != 0 {
		t.Errorf("empty Quantile(0.5) = %v, want 0", got)
	}
	if got := h.Mean(); got != 0 {
		t.Errorf("empty Mean = %v, want 0", got)
	}
	h.Record(-time.Second)
	if got := h.Quantile(0.5); got != 0 {
		t.Errorf("after Record(-1s): Quantile(0.5) = %v, want 0", got)
	}
}
