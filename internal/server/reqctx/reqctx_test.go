package reqctx_test

import (
	"context"
	"testing"

	"github.com/cairnstore/cairn/internal/server/reqctx"
)

func TestFrom(t *testing.T) {
	ctx := context.Background()
	if reqctx.From(ctx) != nil || reqctx.RequestID(ctx) != "" {
		t.Error("empty context has an Info")
	}
	info := &reqctx.Info{ID: "r1", Tenant: "acme", Op: "doc.get"}
	ctx = reqctx.With(ctx, info)
	ctx = context.WithValue(ctx, struct{ k int }{1}, "other") // wrapped by someone else
	if got := reqctx.From(ctx); got != info || reqctx.RequestID(ctx) != "r1" {
		t.Errorf("From = %+v", got)
	}
}
