package resilience

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newLimiter(t *testing.T, c LimiterConfig) (*Limiter, *time.Time) {
	t.Helper()
	now := time.Unix(1000, 0)
	c.Now = func() time.Time { return now }
	l, err := NewLimiter(c)
	if err != nil {
		t.Fatalf("NewLimiter: %v", err)
	}
	return l, &now
}

func TestLimiterDecisions(t *testing.T) {
	l, now := newLimiter(t, LimiterConfig{MaxInFlight: 3, TenantMaxInFlight: 2, TenantRate: 10, TenantBurst: 3})

	for i := range 2 {
		if d := l.Acquire("a"); !d.Admit {
			t.Fatalf("a #%d: %+v, want admitted", i, d)
		}
	}
	if d := l.Acquire("a"); d.Admit || d.Status != 429 || d.RetryAfter != time.Second {
		t.Errorf("a over its concurrency: %+v, want 429 with Retry-After 1s", d)
	}
	if d := l.Acquire("b"); !d.Admit {
		t.Errorf("b within limits: %+v, want admitted", d)
	}
	if d := l.Acquire("c"); d.Admit || d.Status != 503 {
		t.Errorf("node full: %+v, want 503", d)
	}
	l.Release("a")
	l.Release("a")
	l.Release("b")
	if n, _ := l.InFlight(); n != 0 {
		t.Errorf("in flight after releases = %d, want 0", n)
	}

	// Rate: burst 3 (one spent by b above is another tenant's); a has 1 left.
	if d := l.Acquire("a"); !d.Admit {
		t.Fatalf("a third token: %+v", d)
	}
	l.Release("a")
	d := l.Acquire("a")
	if d.Admit || d.Status != 429 || d.RetryAfter != 100*time.Millisecond {
		t.Errorf("a out of tokens: %+v, want 429 with Retry-After 100ms", d)
	}
	*now = now.Add(100 * time.Millisecond)
	if d := l.Acquire("a"); !d.Admit {
		t.Errorf("a after refill: %+v, want admitted", d)
	}
	// Shed above: one 503 (node full), two 429s (a's concurrency, a's rate).
	if busy, tenant := l.Shed(); busy != 1 || tenant != 2 {
		t.Errorf("Shed() = %d busy, %d tenant; want 1 and 2", busy, tenant)
	}
}

// TestLimiterAcquireN: a request on n documents is admitted on one token
// and owes the rest, so the tenant's next requests wait until the rate has
// paid; one larger than the burst is refused (413), taking nothing.
func TestLimiterAcquireN(t *testing.T) {
	l, now := newLimiter(t, LimiterConfig{TenantRate: 10, TenantBurst: 30})
	if l.MaxN() != 30 {
		t.Errorf("MaxN() = %d, want the burst, 30", l.MaxN())
	}
	if d := l.AcquireN("a", 31); d.Admit || d.Status != 413 || d.RetryAfter != 0 {
		t.Errorf("31 documents on a burst of 30: %+v, want 413 and no Retry-After", d)
	}
	for _, c := range []struct {
		n     int
		owed  time.Duration // how long the next request waits
		after string
	}{
		{30, 100 * time.Millisecond, "30 documents on a full burst of 30: one"},
	} {
		*now = now.Add(time.Hour) // the burst refilled
		if d := l.AcquireN("a", c.n); !d.Admit {
			t.Fatalf("%d documents with a full burst: %+v, want admitted", c.n, d)
		}
		l.Release("a")
		if d := l.AcquireN("a", 1); d.Admit || d.Status != 429 || d.RetryAfter != c.owed {
			t.Fatalf("after %s: %+v, want 429 with Retry-After %v", c.after, d, c.owed)
		}
		*now = now.Add(c.owed)
		if d := l.AcquireN("a", 1); !d.Admit {
			t.Fatalf("once the rate has paid for %s: %+v, want admitted", c.after, d)
		}
		l.Release("a")
	}
	// 30 documents with 25 of the burst left: admitted, 5 owed.
	*now = now.Add(time.Hour)
	if d := l.AcquireN("a", 5); !d.Admit {
		t.Fatalf("5 documents: %+v", d)
	}
	l.Release("a")
	if d := l.AcquireN("a", 30); !d.Admit {
		t.Fatalf("30 documents with 25 left: %+v, want admitted", d)
	}
	l.Release("a")
	if d := l.AcquireN("a", 1); d.Admit || d.RetryAfter != 600*time.Millisecond {
		t.Errorf("after 5 owed: %+v, want 429 with Retry-After 600ms", d)
	}
	if d := l.AcquireN("b", 0); !d.Admit {
		t.Fatalf("a request of no documents: %+v, want admitted as one", d)
	}
}

func TestLimiterMemoryBounded(t *testing.T) {
	l, _ := newLimiter(t, LimiterConfig{MaxInFlight: 10, MaxTenants: 100})
	if d := l.Acquire("busy"); !d.Admit {
		t.Fatal("busy not admitted")
	}
	for i := range 10000 {
		tenant := "t" + strconv.Itoa(i)
		if d := l.Acquire(tenant); d.Admit {
			l.Release(tenant)
		}
	}
	if _, n := l.InFlight(); n > 100 {
		t.Errorf("tenants tracked = %d, want ≤ MaxTenants 100", n)
	}
	// The busy tenant was never evicted: its release balances.
	l.Release("busy")
	if n, _ := l.InFlight(); n != 0 {
		t.Errorf("in flight = %d, want 0", n)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.tenants["busy"]; !ok || e.Value.(*tenantState).inFlight != 0 {
		t.Errorf("busy tenant evicted while in flight, or count wrong")
	}
}

func TestNewLimiterConfig(t *testing.T) {
	if _, err := NewLimiter(LimiterConfig{MaxInFlight: -1}); err == nil {
		t.Errorf("negative MaxInFlight accepted")
	}
}

// TestShedding overloads a real HTTP server: slow requests past every
// limit. The ones over the limits must come back at once (while the admitted
// ones are still held), with 429/503, Retry-After and the JSON body; the
// handler must never see more than MaxInFlight requests; the tenant within
// its limits keeps all of its requests.
func TestShedding(t *testing.T) {
	const maxInFlight, perTenant = 20, 8
	l, err := NewLimiter(LimiterConfig{MaxInFlight: maxInFlight, TenantMaxInFlight: perTenant,
		TenantRate: 1e6, TenantBurst: 1e6})
	if err != nil {
		t.Fatal(err)
	}
	hold := make(chan struct{})
	var inHandler, maxSeen atomic.Int64
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inHandler.Add(1)
		for m := maxSeen.Load(); n > m && !maxSeen.CompareAndSwap(m, n); m = maxSeen.Load() {
		}
		<-hold
		inHandler.Add(-1)
		w.WriteHeader(http.StatusNoContent)
	})
	srv := httptest.NewServer(l.Middleware(func(r *http.Request) string { return r.Header.Get("X-Tenant") }, handler))
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 400}}
	defer client.CloseIdleConnections()

	type result struct {
		tenant string
		status int
		ra     string
		body   errorBody
	}
	results := make(chan result, 400)
	var wg sync.WaitGroup
	send := func(tenant string, id int) {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(context.Background(), "GET", srv.URL, nil)
			req.Header.Set("X-Tenant", tenant)
			req.Header.Set("X-Request-ID", fmt.Sprintf("%s-%d", tenant, id))
			resp, err := client.Do(req)
			if err != nil {
				t.Errorf("request: %v", err)
				return
			}
			defer resp.Body.Close()
			r := result{tenant: tenant, status: resp.StatusCode, ra: resp.Header.Get("Retry-After")}
			if resp.StatusCode != http.StatusNoContent {
				_ = json.NewDecoder(resp.Body).Decode(&r.body)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			results <- r
		})
	}
	// In phases, so that which limit answers is deterministic: the
	// well-behaved tenant (6, within its limit), then the hog up to its
	// limit (8), then 142 more hog requests (429: the node has room, the
	// tenant has not), then 30 tenants × 4 (6 admitted, then 503: node full).
	for i := range 6 {
		send("good", i)
	}
	waitFor(t, func() bool { return inHandler.Load() == 6 })
	for i := range perTenant {
		send("hog", i)
	}
	waitFor(t, func() bool { return inHandler.Load() == 6+perTenant })
	counts := map[int]int{}
	// Every request over a limit is answered while the admitted ones are
	// still held: the limiter queues nothing.
	collectShed := func(n int) {
		for range n {
			r := <-results
			counts[r.status]++
			if r.status != 429 && r.status != 503 {
				t.Fatalf("while held: status %d for %s, want 429 or 503", r.status, r.tenant)
			}
			if r.tenant == "good" {
				t.Errorf("good tenant shed: %+v", r)
			}
			if r.ra == "" || r.body.Error.Code != "exhausted" || r.body.Error.RequestID == "" || r.body.Error.Message == "" {
				t.Errorf("shed response missing Retry-After or JSON fields: %+v", r)
			}
		}
	}
	for i := range 150 - perTenant {
		send("hog", perTenant+i)
	}
	collectShed(150 - perTenant)
	for tn := range 30 {
		for i := range 4 {
			send(fmt.Sprintf("t%d", tn), i)
		}
	}
	collectShed(120 - (maxInFlight - 6 - perTenant))
	if counts[429] != 150-perTenant || counts[503] != 120-(maxInFlight-6-perTenant) {
		t.Errorf("shed statuses %v, want %d×429 (hog over its limit) and %d×503 (node full)",
			counts, 150-perTenant, 120-(maxInFlight-6-perTenant))
	}
	if got := maxSeen.Load(); got > maxInFlight {
		t.Errorf("handler saw %d requests at once, want ≤ %d", got, maxInFlight)
	}
	close(hold)
	wg.Wait()
	close(results)
	good := 0
	for r := range results {
		if r.status != http.StatusNoContent {
			t.Errorf("admitted request answered %d", r.status)
		}
		if r.tenant == "good" {
			good++
		}
	}
	if good != 6 {
		t.Errorf("good tenant goodput %d of 6", good)
	}
	if n, _ := l.InFlight(); n != 0 {
		t.Errorf("in flight after the storm = %d, want 0", n)
	}
}

// waitFor polls cond across the HTTP server's goroutines, which are not in
// a synctest bubble (real sockets); it yields, it does not sleep.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		runtimeGosched()
	}
}

func TestDeadlines(t *testing.T) {
	tests := []struct {
		d      Deadlines
		header string
		want   time.Duration
	}{
		{Deadlines{}, "", 5 * time.Second},
		{Deadlines{Default: 2 * time.Second}, "", 2 * time.Second},
		{Deadlines{Default: 2 * time.Second}, "500ms", 500 * time.Millisecond},
		{Deadlines{Default: 2 * time.Second}, "1.5", 1500 * time.Millisecond},
		{Deadlines{Default: 2 * time.Second}, "1h", 2 * time.Second},
		{Deadlines{Default: 2 * time.Second, Max: 30 * time.Second}, "10s", 10 * time.Second},
		{Deadlines{Default: 2 * time.Second}, "garbage", 2 * time.Second},
		{Deadlines{Default: 2 * time.Second}, "-1s", 2 * time.Second},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		if tt.header != "" {
			r.Header.Set(TimeoutHeader, tt.header)
		}
		before := time.Now()
		ctx, cancel := tt.d.Context(r)
		dl, ok := ctx.Deadline()
		cancel()
		if got := dl.Sub(before); !ok || got < tt.want || got > tt.want+time.Second {
			t.Errorf("%+v with %q: deadline in %v, want ≈ %v", tt.d, tt.header, got, tt.want)
		}
	}
}

func FuzzParseTimeout(f *testing.F) {
	for _, s := range []string{"", "1s", "250ms", "1.5", "-1", "NaN", "Inf", "1e308", "24h", "24h1ns", "0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := ParseTimeout(s)
		if ok && (d <= 0 || d > 24*time.Hour) {
			t.Fatalf("ParseTimeout(%q) = %v, true; out of (0, 24h]", s, d)
		}
		if !ok && d != 0 {
			t.Fatalf("ParseTimeout(%q) = %v, false", s, d)
		}
	})
}

// TestLimiterAuthFailed: failed authentications have a node-wide token
// bucket of their own; no tenant's budget is touched.
func TestLimiterAuthFailed(t *testing.T) {
	l, now := newLimiter(t, LimiterConfig{TenantRate: 1, TenantBurst: 1, AuthFailureRate: 4, AuthFailureBurst: 2})
	for i := range 2 {
		if ok, _ := l.AuthFailed(); !ok {
			t.Fatalf("failure %d within the burst refused", i)
		}
	}
	if ok, wait := l.AuthFailed(); ok || wait != 250*time.Millisecond {
		t.Errorf("failure past the burst: ok %v, Retry-After %v; want refused, 250ms", ok, wait)
	}
	if d := l.Acquire("a"); !d.Admit {
		t.Errorf("tenant a after the failures: %+v, want admitted (budgets apart)", d)
	}
	*now = now.Add(250 * time.Millisecond)
	if ok, _ := l.AuthFailed(); !ok {
		t.Error("failure after the refill refused")
	}
}
