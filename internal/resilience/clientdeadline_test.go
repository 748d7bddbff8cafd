package resilience

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"
)

// TestClientDeadlineExceeded tells the client's deadline from the node's.
func TestClientDeadlineExceeded(t *testing.T) {
	past, cancelPast := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancelPast()
	for _, tc := range []struct {
		name   string
		d      Deadlines
		header string
		parent context.Context
		want   bool
	}{
		{name: "client's, passed", d: Deadlines{}, header: "1ns", want: true},
		{name: "client's, in time", d: Deadlines{}, header: "1h", want: false},
		{name: "default", d: Deadlines{Default: 1}, want: false},
		{name: "clamped to the maximum", d: Deadlines{Default: 1, Max: 1}, header: "1s", want: false},
		{name: "unparsable header", d: Deadlines{Default: 1}, header: "soon", want: false},
		{name: "parent's sooner", d: Deadlines{}, header: "1h", parent: past, want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("PUT", "/", nil)
			if tc.parent != nil {
				r = r.WithContext(tc.parent)
			}
			if tc.header != "" {
				r.Header.Set(TimeoutHeader, tc.header)
			}
			ctx, cancel := tc.d.Context(r)
			defer cancel()
			derived := context.WithValue(ctx, derivedKey{}, 1) // what handlers below see
			if tc.want {
				<-derived.Done() // the deadline's timer fires
			}
			if got := ClientDeadlineExceeded(derived); got != tc.want {
				t.Errorf("ClientDeadlineExceeded = %v, want %v (ctx err %v)", got, tc.want, ctx.Err())
			}
		})
	}
	if ClientDeadlineExceeded(context.Background()) {
		t.Error("a context without a deadline")
	}
}

type derivedKey struct{}
