package server_test

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/resilience"
	"github.com/cairnstore/cairn/internal/server"
	"github.com/cairnstore/cairn/internal/server/servertest"
)

// heldDocs holds every Put until release is closed, saying when one waits.
type heldDocs struct {
	*servertest.Mem
	waiting chan struct{}
	release chan struct{}
}

func (h *heldDocs) Put(ctx context.Context, tenant, key string, body []byte, pre doc.Precondition) (string, bool, error) {
	h.waiting <- struct{}{}
	<-h.release
	return h.Mem.Put(ctx, tenant, key, body, pre)
}

// TestBodyBudgetShedsWrites: document writes whose bodies, counted twice,
// would hold more than the budget are shed, 503 with Retry-After, and
// admitted again once the writes in flight end.
func TestBodyBudgetShedsWrites(t *testing.T) {
	held := &heldDocs{Mem: &servertest.Mem{}, waiting: make(chan struct{}), release: make(chan struct{})}
	e := newEnv(t, func(o *server.Options) { o.Docs, o.Bodies = held, resilience.NewByteBudget(4500) })
	body := `{"d":"` + strings.Repeat("x", 1000-8) + `"}` // 1,000 bytes, a charge of 2,000
	var wg sync.WaitGroup
	codes := make([]int, 2)
	// One write of each tenant: one tenant may hold at most half.
	for i, who := range []struct{ tenant, token string }{{tenantA, e.tokA}, {tenantB, e.tokB}} {
		wg.Go(func() {
			codes[i] = e.do(t, req{method: "PUT", path: docURL(who.tenant, "k"), token: who.token, body: body}).Code
		})
		<-held.waiting
	}
	w := e.do(t, req{method: "PUT", path: docURL(tenantA, "k2"), token: e.tokA, body: body})
	if w.Code != 503 || w.Header().Get("Retry-After") != "1" || decodeError(t, w).Error.Code != "exhausted" ||
		!strings.Contains(w.Body.String(), "--memory-limit") {
		t.Errorf("a third write over the budget: %d %s (Retry-After %q); want 503 exhausted naming the memory limit", w.Code, w.Body, w.Header().Get("Retry-After"))
	}
	close(held.release)
	wg.Wait()
	if codes[0] != 201 || codes[1] != 201 {
		t.Fatalf("the writes admitted: %v", codes)
	}
	go func() { <-held.waiting }()
	if w := e.do(t, req{method: "PUT", path: docURL(tenantA, "k2"), token: e.tokA, body: body}); w.Code != 201 {
		t.Errorf("a write once the others ended: %d %s", w.Code, w.Body)
	}
}

// fullDocs refuses every write as a node short of disk does.
type fullDocs struct{ *servertest.Mem }

func (fullDocs) Put(context.Context, string, string, []byte, doc.Precondition) (string, bool, error) {
	return "", false, fault.New(fault.Exhausted, fault.Context{Op: "store.put"}, "disk nearly full: about 1 MiB free")
}

// TestRefusalsForRoomThinned: the node's own exhausted 503s (a disk nearly
// full) are logged at Error once a period per tenant, the rest at Debug,
// as shed requests are at Info: a client retrying must not fill the disk
// with log lines.
func TestRefusalsForRoomThinned(t *testing.T) {
	e := newEnv(t, func(o *server.Options) { o.Docs = fullDocs{&servertest.Mem{}} })
	for range 5 {
		if w := e.do(t, req{method: "PUT", path: docURL(tenantA, "k"), token: e.tokA, body: `{}`}); w.Code != 503 {
			t.Fatalf("PUT on a full disk: %d %s", w.Code, w.Body)
		}
	}
	if n := strings.Count(e.logs.String(), `"level":"ERROR","msg":"request failed"`); n != 1 {
		t.Errorf("%d error lines for 5 refusals in a period, want 1:\n%s", n, e.logs.String())
	}
}

// TestBodyChargedAsItArrives: a write that declares a large body and sends
// little of it holds only what it sent, so declared sizes alone cannot take
// the budget from others; the budget is all given back once it fails.
func TestBodyChargedAsItArrives(t *testing.T) {
	budget := resilience.NewByteBudget(4500)
	e := newEnv(t, func(o *server.Options) { o.Bodies = budget })
	pr, pw := io.Pipe()
	done := make(chan int)
	go func() {
		r := httptest.NewRequest("PUT", docURL(tenantA, "slow"), pr)
		r.ContentLength = 1 << 20
		r.Header.Set("Authorization", "Bearer "+e.tokA)
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, r)
		done <- w.Code
	}()
	io.WriteString(pw, `{"d":"`) // sent: 6 of the 1 MiB declared
	body := `{"d":"` + strings.Repeat("x", 1000-8) + `"}`
	if w := e.do(t, req{method: "PUT", path: docURL(tenantA, "k"), token: e.tokA, body: body}); w.Code != 201 {
		t.Errorf("a write beside one declaring 1 MiB and sending 6 bytes: %d %s", w.Code, w.Body)
	}
	pw.CloseWithError(errors.New("client gone"))
	<-done
	if !budget.Take("anyone", 4500, 0) {
		t.Error("the budget was not all given back")
	}
}
