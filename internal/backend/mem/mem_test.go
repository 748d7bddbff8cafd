package mem_test

import (
	"context"
	"errors"
	"testing"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/backend/backendtest"
	"github.com/cairnstore/cairn/internal/backend/mem"
	"github.com/cairnstore/cairn/internal/fault"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend { return mem.New("mem") })
}

func TestFault(t *testing.T) {
	m := mem.New("m1")
	boom := fault.New(fault.Transient, fault.Context{}, "injected")
	m.SetFault(func(op, tenant, key string) error {
		if op == backend.OpGet && key == "bad" {
			return boom
		}
		return nil
	})
	ctx := context.Background()
	_, err := m.Get(ctx, "t", "bad")
	if !errors.Is(err, fault.ErrTransient) {
		t.Fatalf("Get with an injected fault: %v, want transient", err)
	}
	if c := fault.ContextOf(err); c.Backend != "m1" || c.Tenant != "t" || c.Key != "bad" || c.Op != backend.OpGet {
		t.Fatalf("context = %+v", c)
	}
	if _, err := m.Get(ctx, "t", "good"); fault.ClassOf(err) != fault.NotFound {
		t.Fatalf("Get without a fault: %v, want not found", err)
	}
	m.SetFault(nil)
	if _, err := m.Get(ctx, "t", "bad"); fault.ClassOf(err) != fault.NotFound {
		t.Fatalf("Get after removing the fault: %v, want not found", err)
	}
}
