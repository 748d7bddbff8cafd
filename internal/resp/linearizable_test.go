package resp_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/redis/go-redis/v9"

	"github.com/cairnstore/cairn/internal/node"
	"github.com/cairnstore/cairn/internal/register"
)

// TestLinearizableOverRESPAndHTTP records one history of concurrent puts,
// gets and deletes made by clients over RESP (go-redis, RESP2 and RESP3)
// and over HTTP on the same keys of a real node, whose cache is small
// enough to evict constantly, and checks it with porcupine: the two fronts
// serve one linearizable store.
func TestLinearizableOverRESPAndHTTP(t *testing.T) {
	n := startNode(t, func(c *node.Config) { c.CacheBytes = 600 })
	const clients, opsPerClient, keys = 8, 150, 4
	// Each client's connection is made here, on the test's goroutine.
	do := make([]func(register.Input) register.Output, clients)
	for id := range clients {
		switch id % 3 {
		case 0, 1:
			c := client(t, n, "acme", acmeToken, 2+id%2)
			do[id] = func(in register.Input) register.Output { return overRESP(t, c, in) }
		default:
			do[id] = func(in register.Input) register.Output { return overHTTP(t, n, in) }
		}
	}
	history := register.Record(clients, opsPerClient, keys, "lin", 11, func(id int, in register.Input) register.Output {
		return do[id](in)
	})
	if res := porcupine.CheckOperationsTimeout(register.Model, history, time.Minute); res != porcupine.Ok {
		t.Fatalf("history of %d operations over RESP and HTTP is not linearizable (%v)", len(history), res)
	}
}

func overRESP(t *testing.T, c *redis.Client, in register.Input) register.Output {
	ctx := context.Background()
	switch in.Op {
	case 'p':
		if err := c.Set(ctx, in.Key, in.Value, 0).Err(); err != nil {
			t.Errorf("SET: %v", err)
		}
		return register.Output{Found: true}
	case 'd':
		n, err := c.Del(ctx, in.Key).Result()
		if err != nil {
			t.Errorf("DEL: %v", err)
		}
		return register.Output{Found: n == 1}
	}
	v, err := c.Get(ctx, in.Key).Result()
	if err == redis.Nil {
		return register.Output{}
	}
	if err != nil {
		t.Errorf("GET: %v", err)
	}
	return register.Output{Value: v, Found: true}
}

func overHTTP(t *testing.T, n *node.Node, in register.Input) register.Output {
	method := map[byte]string{'p': "PUT", 'd': "DELETE", 'g': "GET"}[in.Op]
	req, _ := http.NewRequest(method, "http://"+n.Addr()+"/v1/tenants/acme/docs/"+in.Key, strings.NewReader(in.Value))
	req.Header.Set("Authorization", "Bearer "+acmeToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("%s: %v", method, err)
		return register.Output{}
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	switch {
	case res.StatusCode == http.StatusNotFound:
		return register.Output{}
	case res.StatusCode >= 300:
		t.Errorf("%s %s: %d %s", method, in.Key, res.StatusCode, body)
	}
	return register.Output{Value: string(body), Found: true}
}
