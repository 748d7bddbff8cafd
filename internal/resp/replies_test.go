package resp_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/resilience"
	"github.com/cairnstore/cairn/internal/resp"
	"github.com/cairnstore/cairn/internal/server"
	"github.com/cairnstore/cairn/internal/server/servertest"
)

// TestMGetRepliesBudget: an MGET whose documents, counted twice, would go
// over the budget of replies in flight beside another request's is
// answered -TRYAGAIN and gives back what it took; alone it is served.
func TestMGetRepliesBudget(t *testing.T) {
	docs := &servertest.Mem{}
	ctx := context.Background()
	body := `{"d":"` + strings.Repeat("x", 1000-8) + `"}`
	for _, k := range []string{"a", "b", "c"} {
		if _, _, err := docs.Put(ctx, "acme", k, []byte(body), doc.Precondition{}); err != nil {
			t.Fatal(err)
		}
	}
	auth, err := server.NewVerifier(server.Auth{Tenants: map[string][][32]byte{"acme": {server.HashToken(acmeToken)}}})
	if err != nil {
		t.Fatal(err)
	}
	budget := resilience.NewByteBudget(5000) // two of these documents, counted twice
	s, err := resp.New(resp.Options{Docs: docs, Auth: auth, Replies: budget})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	defer s.Shutdown(ctx)
	c := redis.NewClient(&redis.Options{Addr: ln.Addr().String(), Username: "acme", Password: acmeToken, MaxRetries: -1})
	defer c.Close()
	budget.Take("beta", 2500, 0) // another tenant's request
	if err := c.MGet(ctx, "a", "b", "c").Err(); err == nil || !strings.HasPrefix(err.Error(), "TRYAGAIN server busy") {
		t.Errorf("MGET of three beside another tenant's 2,500 bytes, in a budget of 5,000: %v; want TRYAGAIN", err)
	}
	if budget.Refused() != 1 {
		t.Errorf("refusals counted %d, want 1", budget.Refused())
	}
	budget.Give("beta", 2500)
	// Alone, an MGET over the budget is served: it must not wait for ever.
	if v, err := c.MGet(ctx, "a", "b", "c").Result(); err != nil || len(v) != 3 || v[0] != body {
		t.Errorf("MGET of three alone, the budget given back: %v, %v", v, err)
	}
	if !budget.Take("anyone", 5000, 0) {
		t.Error("the budget was not all given back")
	}
}
