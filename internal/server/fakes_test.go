package server_test

import (
	"context"
	"iter"
	"time"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/server"
	"github.com/cairnstore/cairn/internal/server/reqctx"
	"github.com/cairnstore/cairn/internal/server/servertest"
)

// memDocs is a Mem whose methods can be overridden one by one.
type memDocs struct {
	servertest.Mem
	get  func(ctx context.Context, tenant, key string) (server.Doc, error)
	list func(ctx context.Context, tenant, prefix, after string, limit int) iter.Seq2[server.Item, error]
}

func (m *memDocs) Get(ctx context.Context, tenant, key string) (server.Doc, error) {
	if m.get != nil {
		return m.get(ctx, tenant, key)
	}
	return m.Mem.Get(ctx, tenant, key)
}

func (m *memDocs) List(ctx context.Context, tenant, prefix, after string, limit int) iter.Seq2[server.Item, error] {
	if m.list != nil {
		return m.list(ctx, tenant, prefix, after, limit)
	}
	return m.Mem.List(ctx, tenant, prefix, after, limit)
}

var _ server.Docs = (*memDocs)(nil)

// shed is an error a load shedder would return.
type shed struct{ after time.Duration }

func (s shed) Error() string             { return "shed" }
func (s shed) RetryAfter() time.Duration { return s.after }
func (s shed) Is(target error) bool      { return target == fault.ErrExhausted }
func exhausted(d time.Duration) error {
	return fault.E(fault.Exhausted, fault.Context{Op: "limit"}, shed{d})
}

var noPreValue doc.Precondition

func reqInfo(ctx context.Context) *reqctx.Info { return reqctx.From(ctx) }
