package resilience

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/deadline"
)

//go:noinline
func direct(ctx context.Context) error { return ctx.Err() }

// directDone asks for Done, as a real backend does (net/http's Transport
// selects on it).
//
//go:noinline
func directDone(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	default:
		return nil
	}
}

func BenchmarkDirect(b *testing.B) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := direct(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// benchPolicy runs fn through a Policy made from cfg, with the caller's
// context ctx.
func benchPolicy(b *testing.B, cfg Config, ctx context.Context, fn func(context.Context) error) {
	cfg.Backend = "bench"
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	p, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := p.Run(ctx, "bench", fn); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPolicyDefault(b *testing.B) { benchPolicy(b, Config{}, context.Background(), direct) }

// BenchmarkPolicyDefaultDone: defaults, no caller deadline, and the callee
// asks for Done.
func BenchmarkPolicyDefaultDone(b *testing.B) {
	benchPolicy(b, Config{}, context.Background(), directDone)
}

// BenchmarkPolicyCancelableParent: defaults, the caller's context can be
// cancelled but has no deadline (a background loop's context).
func BenchmarkPolicyCancelableParent(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	benchPolicy(b, Config{}, ctx, direct)
}

func BenchmarkPolicyNoTimeout(b *testing.B) {
	benchPolicy(b, Config{AttemptTimeout: -1}, context.Background(), direct)
}

// BenchmarkPolicyCallerDeadline: the caller's deadline (5s) comes before the
// per-attempt timeout (10s).
func BenchmarkPolicyCallerDeadline(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	benchPolicy(b, Config{}, ctx, direct)
}

func BenchmarkPolicyParallel(b *testing.B) {
	p, err := New(Config{Backend: "bench", MaxConcurrent: -1})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := p.Run(ctx, "bench", direct); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRequestDeadline is what the server pays per write request for
// its deadline: the context, one check (the store's, when it takes the
// write) and the cancel at the end; "standard" with the timer made at once
// (Context), "carried" as the node serves writes (Carry, deadline.Err).
func BenchmarkRequestDeadline(b *testing.B) {
	r := httptest.NewRequest("PUT", "/", nil)
	d := Deadlines{Default: 5 * time.Second}
	for _, bc := range []struct {
		name string
		make func(*http.Request) (context.Context, context.CancelFunc)
	}{{"standard", d.Context}, {"carried", d.Carry}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ctx, cancel := bc.make(r)
				if err := deadline.Err(ctx); err != nil {
					b.Fatal(err)
				}
				cancel()
			}
		})
	}
}
