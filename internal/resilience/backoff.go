package resilience

import "time"

// fullJitter returns the delay before retry number n (n ≥ 1): uniform in
// [0, min(maxDelay, base·2^(n-1))), "full jitter" in the terms of the AWS
// Architecture Blog's "Exponential Backoff and Jitter". rnd returns a value
// in [0, 1).
//
// Why not failsafe-go's own jitter: WithBackoff + WithJitterFactor(f)
// draws from [d(1-f), d(1+f)], centred on the exponential curve. With f = 1
// that is [0, 2d] — twice the cap at the top — and with f < 1 it keeps a
// floor under every delay, so callers that failed together retry together.
// Full jitter spreads them over the whole interval; it has the lowest total
// work in the AWS measurements. So the delay is computed here and handed to
// failsafe through WithDelayFunc.
func fullJitter(n int, base, maxDelay time.Duration, rnd func() float64) time.Duration {
	ceil := base
	for i := 1; i < n && ceil < maxDelay; i++ {
		ceil *= 2
	}
	ceil = min(ceil, maxDelay)
	return time.Duration(rnd() * float64(ceil))
}
