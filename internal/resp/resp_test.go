package resp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/cairnstore/cairn/internal/node"
	"github.com/cairnstore/cairn/internal/proctest"
	"github.com/cairnstore/cairn/internal/resilience"
	"github.com/cairnstore/cairn/internal/server"
)

const (
	acmeToken  = "cairn_acme-token"
	betaToken  = "cairn_beta-token"
	adminToken = "cairn_admin-token"
)

// startNode runs a real node (Pebble, the cache, sync durability) with
// the RESP front on a loopback port and two tenants, acme and beta.
func startNode(t *testing.T, edit func(*node.Config)) *node.Node {
	t.Helper()
	n := startNodeOnly(t, edit)
	t.Cleanup(func() {
		if err := n.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return n
}

// startNodeOnly is startNode for a test that shuts the node down itself.
func startNodeOnly(t *testing.T, edit func(*node.Config)) *node.Node {
	t.Helper()
	cfg := node.Config{
		DataDir: t.TempDir(), Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0", RespListen: "127.0.0.1:0",
		Logger: slog.New(slog.DiscardHandler),
		Auth: server.Auth{
			Tenants: map[string][][32]byte{"acme": {server.HashToken(acmeToken)}, "beta": {server.HashToken(betaToken)}},
			Admin:   [][32]byte{server.HashToken(adminToken)},
		},
		Limits: resilience.LimiterConfig{MaxInFlight: 4096, TenantMaxInFlight: 1024, TenantRate: 1e6, TenantBurst: 2e6},
	}
	if edit != nil {
		edit(&cfg)
	}
	n, err := node.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// client is a go-redis client of tenant with token, speaking proto.
func client(t *testing.T, n *node.Node, tenant, token string, proto int) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: n.RESPAddr(), Username: tenant, Password: token, Protocol: proto,
		MaxRetries: -1, DisableIdentity: false})
	t.Cleanup(func() { c.Close() })
	return c
}

func TestCommands(t *testing.T) {
	n := startNode(t, nil)
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("RESP%d", proto), func(t *testing.T) {
			ctx := context.Background()
			c := client(t, n, "acme", acmeToken, proto)
			p := fmt.Sprintf("p%d:", proto)
			must(t, c.Ping(ctx).Err())
			if got := c.Set(ctx, p+"a", `{"n":1}`, 0).Val(); got != "OK" {
				t.Fatalf("SET: %q", got)
			}
			if got := c.Get(ctx, p+"a").Val(); got != `{"n":1}` {
				t.Fatalf("GET: %q", got)
			}
			if err := c.Get(ctx, p+"missing").Err(); err != redis.Nil {
				t.Fatalf("GET of an absent key: %v, want redis.Nil", err)
			}
			// NX and XX.
			if ok, err := c.SetNX(ctx, p+"a", `{"n":2}`, 0).Result(); ok || err != nil {
				t.Fatalf("SET NX on an existing key: %v %v", ok, err)
			}
			if ok, err := c.SetXX(ctx, p+"b", `{"n":2}`, 0).Result(); ok || err != nil {
				t.Fatalf("SET XX on an absent key: %v %v", ok, err)
			}
			if ok := c.SetNX(ctx, p+"b", `{"n":2}`, 0).Val(); !ok {
				t.Fatal("SET NX on an absent key failed")
			}
			if ok := c.SetXX(ctx, p+"b", `{"n":3}`, 0).Val(); !ok {
				t.Fatal("SET XX on an existing key failed")
			}
			// Compare-and-set.
			ge := c.Do(ctx, "GETETAG", p+"b")
			pair, err := ge.Slice()
			if err != nil || len(pair) != 2 || pair[0] != `{"n":3}` {
				t.Fatalf("GETETAG: %v %v", pair, err)
			}
			etag := pair[1].(string)
			if got, err := c.Do(ctx, "SET", p+"b", `{"n":4}`, "IFMATCH", etag).Result(); got != "OK" || err != nil {
				t.Fatalf("SET IFMATCH current: %v %v", got, err)
			}
			if err := c.Do(ctx, "SET", p+"b", `{"n":5}`, "IFMATCH", etag).Err(); err != redis.Nil {
				t.Fatalf("SET IFMATCH stale: %v, want redis.Nil", err)
			}
			if got := c.Get(ctx, p+"b").Val(); got != `{"n":4}` {
				t.Fatalf("after a failed CAS: %q", got)
			}
			if err := c.Do(ctx, "GETETAG", p+"missing").Err(); err != redis.Nil {
				t.Fatalf("GETETAG of an absent key: %v", err)
			}
			// EXISTS, TYPE, MGET, MSET, DEL.
			if got := c.Exists(ctx, p+"a", p+"b", p+"missing").Val(); got != 2 {
				t.Fatalf("EXISTS: %d", got)
			}
			if got := c.Type(ctx, p+"a").Val(); got != "string" {
				t.Fatalf("TYPE: %q", got)
			}
			if got := c.Type(ctx, p+"missing").Val(); got != "none" {
				t.Fatalf("TYPE of an absent key: %q", got)
			}
			must(t, c.MSet(ctx, p+"c", `[1]`, p+"d", `"s"`).Err())
			vals, err := c.MGet(ctx, p+"c", p+"missing", p+"d").Result()
			if err != nil || !slices.Equal(vals, []any{"[1]", nil, `"s"`}) {
				t.Fatalf("MGET: %#v %v", vals, err)
			}
			if got := c.Del(ctx, p+"c", p+"d", p+"missing").Val(); got != 2 {
				t.Fatalf("DEL: %d", got)
			}
			if got := c.Exists(ctx, p+"c").Val(); got != 0 {
				t.Fatalf("EXISTS after DEL: %d", got)
			}
			// JSON.GET and JSON.SET on the root.
			if got := c.Do(ctx, "JSON.SET", p+"j", "$", `{"x":[1,2]}`).Val(); got != "OK" {
				t.Fatalf("JSON.SET: %v", got)
			}
			if got := c.Do(ctx, "JSON.GET", p+"j").Val(); got != `{"x":[1,2]}` {
				t.Fatalf("JSON.GET: %v", got)
			}
			if got := c.Do(ctx, "JSON.GET", p+"j", "$").Val(); got != `[{"x":[1,2]}]` {
				t.Fatalf("JSON.GET $: %v", got)
			}
			if err := c.Do(ctx, "JSON.SET", p+"j", "$", `{}`, "NX").Err(); err != redis.Nil {
				t.Fatalf("JSON.SET NX on an existing key: %v", err)
			}
			if err := c.Do(ctx, "JSON.GET", p+"j", "$.x").Err(); err == nil || !strings.Contains(err.Error(), "root path") {
				t.Fatalf("JSON.GET of a sub-path: %v", err)
			}
			// CLIENT SETNAME, GETNAME, ID, INFO; INFO; HELLO; SELECT; ECHO.
			conn := c.Conn()
			defer conn.Close()
			must(t, conn.ClientSetName(ctx, "worker-1").Err())
			if got := conn.ClientGetName(ctx).Val(); got != "worker-1" {
				t.Fatalf("CLIENT GETNAME: %q", got)
			}
			if id := conn.ClientID(ctx).Val(); id <= 0 {
				t.Fatalf("CLIENT ID: %d", id)
			}
			if info := conn.Do(ctx, "CLIENT", "INFO").Val(); !strings.Contains(fmt.Sprint(info), "user=acme") {
				t.Fatalf("CLIENT INFO: %v", info)
			}
			// Parsed as go-redis parses it, and with every integer field
			// redis-py 4 reads without checking it is there.
			if ci, err := conn.ClientInfo(ctx).Result(); err != nil || ci.User != "acme" || ci.Name != "worker-1" {
				t.Fatalf("CLIENT INFO through go-redis: %+v, %v", ci, err)
			}
			info := fmt.Sprint(conn.Do(ctx, "CLIENT", "INFO").Val())
			for _, k := range []string{"id", "age", "idle", "db", "sub", "psub", "multi", "qbuf", "qbuf-free", "obl", "argv-mem", "oll", "omem", "tot-mem"} {
				if !regexp.MustCompile(`(^| )` + regexp.QuoteMeta(k) + `=-?[0-9]+( |\n|$)`).MatchString(info) {
					t.Errorf("CLIENT INFO %q lacks the integer field %s", info, k)
				}
			}
			if info := c.Info(ctx).Val(); !strings.Contains(info, "# Server") || !strings.Contains(info, "cairn_version:") {
				t.Fatalf("INFO: %q", info)
			}
			for _, tc := range []struct {
				sections []string
				want     []string // the sections' headers, in order
			}{
				{[]string{"server"}, []string{"# Server"}},
				{[]string{"keyspace"}, []string{"# Keyspace"}},
				{[]string{"replication"}, nil},
				{[]string{"server", "keyspace"}, []string{"# Server", "# Keyspace"}},
				{[]string{"all"}, []string{"# Server", "# Keyspace"}},
			} {
				got := c.Info(ctx, tc.sections...).Val()
				var headers []string
				for line := range strings.Lines(got) {
					if strings.HasPrefix(line, "#") {
						headers = append(headers, strings.TrimSpace(line))
					}
				}
				if !slices.Equal(headers, tc.want) {
					t.Errorf("INFO %v: sections %q, want %q:\n%s", tc.sections, headers, tc.want, got)
				}
			}
			hello, err := conn.Do(ctx, "HELLO", proto).Result()
			if err != nil || !strings.Contains(fmt.Sprint(hello), "cairn") {
				t.Fatalf("HELLO: %v %v", hello, err)
			}
			must(t, conn.Select(ctx, 0).Err())
			if got := c.Echo(ctx, "hi").Val(); got != "hi" {
				t.Fatalf("ECHO: %q", got)
			}
		})
	}
}

// TestCommandTable: COMMAND and its subcommands answer in Redis 7's form,
// which go-redis parses: what a cluster-aware client or redis-cli reads to
// find a command's keys and whether it writes.
func TestCommandTable(t *testing.T) {
	n := startNode(t, nil)
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("RESP%d", proto), func(t *testing.T) {
			ctx := context.Background()
			c := client(t, n, "acme", acmeToken, proto)
			infos, err := c.Command(ctx).Result()
			if err != nil {
				t.Fatalf("COMMAND: %v", err)
			}
			for name, want := range map[string]redis.CommandInfo{
				"get":      {Arity: 2, FirstKeyPos: 1, LastKeyPos: 1, StepCount: 1, ReadOnly: true},
				"set":      {Arity: -3, FirstKeyPos: 1, LastKeyPos: 1, StepCount: 1},
				"mset":     {Arity: -3, FirstKeyPos: 1, LastKeyPos: -1, StepCount: 2},
				"del":      {Arity: -2, FirstKeyPos: 1, LastKeyPos: -1, StepCount: 1},
				"json.get": {Arity: -2, FirstKeyPos: 1, LastKeyPos: 1, StepCount: 1, ReadOnly: true},
				"ping":     {Arity: -1},
			} {
				got := infos[name]
				if got == nil {
					t.Fatalf("COMMAND has no %q: %v", name, slices.Collect(maps.Keys(infos)))
				}
				if got.Arity != want.Arity || got.FirstKeyPos != want.FirstKeyPos || got.LastKeyPos != want.LastKeyPos ||
					got.StepCount != want.StepCount || got.ReadOnly != want.ReadOnly {
					t.Errorf("COMMAND %s: %+v, want arity, keys and read-only as %+v", name, got, want)
				}
			}
			if !slices.Contains(infos["set"].Flags, "write") || !slices.Contains(infos["set"].ACLFlags, "@write") {
				t.Errorf("SET is not flagged a write: %+v", infos["set"])
			}
			count, err := c.Do(ctx, "COMMAND", "COUNT").Int()
			if err != nil || count != len(infos) {
				t.Errorf("COMMAND COUNT: %d %v, want %d", count, err, len(infos))
			}
			names, err := c.CommandList(ctx, nil).Result()
			if err != nil || len(names) != len(infos) || !slices.Contains(names, "getetag") {
				t.Errorf("COMMAND LIST: %v %v", names, err)
			}
			one, err := c.Do(ctx, "COMMAND", "INFO", "GET", "nosuch").Slice()
			if err != nil || len(one) != 2 || one[1] != nil {
				t.Fatalf("COMMAND INFO GET nosuch: %#v %v", one, err)
			}
			if row, _ := one[0].([]any); len(row) != 10 || row[0] != "get" {
				t.Errorf("COMMAND INFO GET: %#v", one[0])
			}
			if err := c.Do(ctx, "COMMAND", "DOCS").Err(); err != nil {
				t.Errorf("COMMAND DOCS: %v", err)
			}
			for _, bad := range [][]any{{"COMMAND", "GETKEYS", "GET", "a"}, {"COMMAND", "COUNT", "x"}, {"COMMAND", "LIST", "FILTERBY", "ACLCAT", "read"}} {
				if err := c.Do(ctx, bad...).Err(); err == nil || !strings.HasPrefix(err.Error(), "ERR ") {
					t.Errorf("%v: %v, want an ERR reply", bad, err)
				}
			}
			must(t, c.Ping(ctx).Err()) // the connection survives the errors
		})
	}
}

func TestScan(t *testing.T) {
	n := startNode(t, nil)
	ctx := context.Background()
	c := client(t, n, "acme", acmeToken, 3)
	var want []string
	for i := range 25 {
		k := fmt.Sprintf("user:%02d", i)
		want = append(want, k)
		must(t, c.Set(ctx, k, `{}`, 0).Err())
	}
	must(t, c.Set(ctx, "other", `{}`, 0).Err())
	var got []string
	iter := c.Scan(ctx, 0, "user:*", 7).Iterator()
	for iter.Next(ctx) {
		got = append(got, iter.Val())
	}
	must(t, iter.Err())
	if !slices.Equal(got, want) {
		t.Fatalf("SCAN MATCH user:* got %v, want %v", got, want)
	}
	keys, cur, err := c.Scan(ctx, 0, "*", 1000).Result()
	if err != nil || cur != 0 || len(keys) != 26 {
		t.Fatalf("SCAN *: %d keys, cursor %d, %v", len(keys), cur, err)
	}
	for typ, n := range map[string]int{"string": 26, "hash": 0} { // every document is a string
		keys, cur, err := c.ScanType(ctx, 0, "*", 1000, typ).Result()
		if err != nil || cur != 0 || len(keys) != n {
			t.Fatalf("SCAN TYPE %s: %d keys, cursor %d, %v; want %d", typ, len(keys), cur, err, n)
		}
	}
	// A pattern without a glob character matches the one key it names, as
	// in Redis: not the keys it is a prefix of.
	for pat, want := range map[string][]string{"user:03": {"user:03"}, "user:1": {}, "nosuch": {}} {
		keys, cur, err := c.Scan(ctx, 0, pat, 10).Result()
		if err != nil || cur != 0 || !slices.Equal(keys, want) {
			t.Errorf("SCAN MATCH %q: %v, cursor %d, %v; want %v, cursor 0", pat, keys, cur, err, want)
		}
	}
	for _, bad := range []string{"user:?", "*user", "us*er*", "[a]*", `user\:01`} {
		if err := c.Scan(ctx, 0, bad, 10).Err(); err == nil || !strings.Contains(err.Error(), "prefix") {
			t.Errorf("SCAN MATCH %q: %v, want an error naming the prefix limit", bad, err)
		}
	}
	if err := c.Scan(ctx, 12345, "", 10).Err(); err == nil || !strings.Contains(err.Error(), "cursor") {
		t.Errorf("SCAN with an unknown cursor: %v", err)
	}
	// A cursor is its tenant's only.
	_, cur, err = c.Scan(ctx, 0, "user:*", 5).Result()
	must(t, err)
	beta := client(t, n, "beta", betaToken, 3)
	if err := beta.Scan(ctx, cur, "", 5).Err(); err == nil || !strings.Contains(err.Error(), "cursor") {
		t.Errorf("another tenant's cursor: %v", err)
	}
}

func TestAuth(t *testing.T) {
	n := startNode(t, nil)
	ctx := context.Background()

	// No AUTH: every data command is NOAUTH, and the connection stays.
	anon := redis.NewClient(&redis.Options{Addr: n.RESPAddr(), MaxRetries: -1, PoolSize: 1})
	defer anon.Close()
	for _, cmd := range [][]any{{"GET", "k"}, {"SET", "k", "{}"}, {"PING"}, {"SCAN", "0"}} {
		if err := anon.Do(ctx, cmd...).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOAUTH") {
			t.Errorf("%v without AUTH: %v, want NOAUTH", cmd, err)
		}
	}
	// The one-argument form says which form to use.
	if err := anon.Do(ctx, "AUTH", acmeToken).Err(); err == nil || !strings.Contains(err.Error(), "AUTH tenant token") {
		t.Errorf("AUTH token: %v", err)
	}
	for _, tc := range []struct{ tenant, token, want string }{
		{"acme", "wrong", "WRONGPASS"},
		{"acme", betaToken, "WRONGPASS"},
		{"nosuch", acmeToken, "WRONGPASS"},
		{"Bad Tenant", acmeToken, "WRONGPASS"},
		{"Bad!", adminToken, `"Bad!" is no tenant name`}, // the token is valid: the name is what is wrong
		// An admin token on a tenant the node does not serve: a typo must
		// not make a tenant.
		{"acmee", adminToken, `WRONGPASS no tenant "acmee" on this node`},
	} {
		c := client(t, n, tc.tenant, tc.token, 3)
		if err := c.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("AUTH %s %s: %v, want %s", tc.tenant, tc.token, err, tc.want)
		}
	}
	// An admin token acts on any tenant the node serves.
	admin := client(t, n, "beta", adminToken, 2)
	must(t, admin.Set(ctx, "k", `{"by":"admin"}`, 0).Err())
	// The connection survives errors and AUTH switches tenant.
	conn := anon.Conn()
	defer conn.Close()
	if err := conn.Do(ctx, "AUTH", "acme", "wrong").Err(); err == nil {
		t.Fatal("bad AUTH accepted")
	}
	must(t, conn.Do(ctx, "AUTH", "acme", acmeToken).Err())
	must(t, conn.Ping(ctx).Err())
}

// TestAuthFailureBudget: AUTHs refused past the node's budget of failed
// authentications answer TRYAGAIN, a valid token is still accepted, and
// every refused AUTH within the budget is logged with the client's address
// (those past it once a period), never with the token.
func TestAuthFailureBudget(t *testing.T) {
	var logs proctest.SyncBuffer
	n := startNode(t, func(c *node.Config) {
		c.Limits.AuthFailureRate, c.Limits.AuthFailureBurst = 1, 3
		c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: n.RESPAddr(), MaxRetries: -1, PoolSize: 1})
	defer c.Close()
	var last error
	// A client that swapped AUTH's arguments: its token is never logged.
	if err := c.Do(ctx, "AUTH", acmeToken, "acme").Err(); err == nil {
		t.Fatal("AUTH with its arguments swapped accepted")
	}
	for range 10 {
		last = c.Do(ctx, "AUTH", "acme", "wrong").Err()
	}
	if last == nil || !strings.HasPrefix(last.Error(), "TRYAGAIN") {
		t.Fatalf("AUTH failures past the budget: %v, want TRYAGAIN", last)
	}
	// A valid token is never refused because others failed.
	must(t, c.Do(ctx, "AUTH", "acme", acmeToken).Err())
	out := logs.String()
	if got := strings.Count(out, `"msg":"resp auth failed"`); got < 3 {
		t.Errorf("%d lines of refused AUTHs within the budget of 3, want 3 or more:\n%s", got, out)
	}
	if got := strings.Count(out, `"msg":"resp auth refused: the node's budget`); got != 1 {
		t.Errorf("%d lines of AUTHs refused past the budget, want 1 (thinned):\n%s", got, out)
	}
	if !strings.Contains(out, `"remote":"127.0.0.1:`) || strings.Contains(out, "wrong") || strings.Contains(out, acmeToken) || !strings.Contains(out, `"tenant":"acme"`) {
		t.Errorf("the lines of refused AUTHs lack the client's address, or repeat the token:\n%s", out)
	}
}

// TestScanCursorsPerTenant: one tenant's scans, however many, never
// expire another tenant's cursor; a tenant's own oldest cursors do expire.
func TestScanCursorsPerTenant(t *testing.T) {
	n := startNode(t, nil)
	ctx := context.Background()
	acme := client(t, n, "acme", acmeToken, 2)
	beta := client(t, n, "beta", betaToken, 2)
	for _, k := range []string{"a", "b", "c"} {
		must(t, acme.Set(ctx, k, `{}`, 0).Err())
		must(t, beta.Set(ctx, k, `{}`, 0).Err())
	}
	_, cur, err := acme.Scan(ctx, 0, "", 1).Result()
	must(t, err)
	var first uint64
	for i := range 4097 { // one more than a tenant's table holds
		_, c, err := beta.Scan(ctx, 0, "", 1).Result()
		must(t, err)
		if i == 0 {
			first = c
		}
	}
	keys, _, err := acme.Scan(ctx, cur, "", 1).Result()
	if err != nil || !slices.Equal(keys, []string{"b"}) {
		t.Fatalf("acme's scan after 4097 of beta's: %v, %v; want [b]", keys, err)
	}
	if err := beta.Scan(ctx, first, "", 1).Err(); err == nil || !strings.Contains(err.Error(), "expired cursor") {
		t.Fatalf("beta's oldest cursor after 4097 more: %v, want it expired", err)
	}
}

func TestTenantIsolation(t *testing.T) {
	n := startNode(t, nil)
	ctx := context.Background()
	acme := client(t, n, "acme", acmeToken, 3)
	beta := client(t, n, "beta", betaToken, 2)
	must(t, acme.Set(ctx, "shared", `{"owner":"acme"}`, 0).Err())
	if err := beta.Get(ctx, "shared").Err(); err != redis.Nil {
		t.Fatalf("beta reads acme's key: %v", err)
	}
	must(t, beta.Set(ctx, "shared", `{"owner":"beta"}`, 0).Err())
	if got := acme.Get(ctx, "shared").Val(); got != `{"owner":"acme"}` {
		t.Fatalf("acme's document after beta's write: %q", got)
	}
	if got := beta.Del(ctx, "shared").Val(); got != 1 {
		t.Fatal("beta's DEL")
	}
	if got := acme.Exists(ctx, "shared").Val(); got != 1 {
		t.Fatal("beta's DEL removed acme's document")
	}
	keys, _, err := beta.Scan(ctx, 0, "*", 100).Result()
	if err != nil || len(keys) != 0 {
		t.Fatalf("beta's SCAN: %v %v", keys, err)
	}
	// And over HTTP: the same tenants and documents.
	req, _ := http.NewRequest("GET", "http://"+n.Addr()+"/v1/tenants/acme/docs/shared", nil)
	req.Header.Set("Authorization", "Bearer "+acmeToken)
	res, err := http.DefaultClient.Do(req)
	must(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(body) != `{"owner":"acme"}` {
		t.Fatalf("HTTP GET of a RESP write: %d %q", res.StatusCode, body)
	}
}

func TestPipeline(t *testing.T) {
	n := startNode(t, nil)
	ctx := context.Background()
	c := client(t, n, "acme", acmeToken, 3)
	const count = 200
	cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range count {
			p.Set(ctx, fmt.Sprintf("k%03d", i), fmt.Sprintf(`{"i":%d}`, i), 0)
		}
		p.Set(ctx, "bad", "not json", 0) // an error in the middle does not end the pipeline
		for i := range count {
			p.Get(ctx, fmt.Sprintf("k%03d", i))
		}
		return nil
	})
	if err == nil {
		t.Fatal("the pipeline's bad SET did not fail")
	}
	if len(cmds) != 2*count+1 {
		t.Fatalf("%d replies, want %d", len(cmds), 2*count+1)
	}
	for i, cmd := range cmds {
		switch {
		case i < count:
			if cmd.Err() != nil {
				t.Fatalf("SET %d: %v", i, cmd.Err())
			}
		case i == count:
			if cmd.Err() == nil || !strings.Contains(cmd.Err().Error(), "JSON") {
				t.Fatalf("bad SET: %v", cmd.Err())
			}
		default:
			j := i - count - 1
			if got := cmd.(*redis.StringCmd).Val(); got != fmt.Sprintf(`{"i":%d}`, j) {
				t.Fatalf("GET %d: %q", j, got)
			}
		}
	}
}

func TestBadInput(t *testing.T) {
	n := startNode(t, func(c *node.Config) { c.MaxBodyBytes = 1024 })
	ctx := context.Background()
	c := client(t, n, "acme", acmeToken, 3)
	conn := c.Conn()
	defer conn.Close()
	for _, tc := range []struct {
		cmd  []any
		want string
	}{
		{[]any{"SET", "k", "not json"}, "ERR value is not a JSON document: invalid JSON at byte 0"},
		{[]any{"SET", "k", `{"a":1`}, "ERR value is not a JSON document"},
		{[]any{"SET", "k", `{"a":1} x`}, "ERR value is not a JSON document"},
		{[]any{"SET", "k", "\"\xff\""}, "ERR value is not a JSON document"},
		{[]any{"SET", "k", `{"a":"` + strings.Repeat("x", 1100) + `"}`}, "larger than the limit of 1024 bytes"},
		{[]any{"MSET", "k1", `{}`, "k2", `nope`}, "ERR value of key 'k2' is not a JSON document"},
		{[]any{"SET", "k", `{}`, "EX", "10"}, "do not expire"},
		{[]any{"SET", "k", `{}`, "NX", "XX"}, "one of NX, XX and IFMATCH"},
		{[]any{"SET", "k", `{}`, "IFMATCH"}, "IFMATCH needs"},
		{[]any{"SET", "k", `{}`, "IFMATCH", "*"}, "use XX"},
		{[]any{"SET", "k", `{}`, "BOGUS"}, "unknown SET option"},
		{[]any{"SET", "k"}, "wrong number of arguments for 'set'"},
		{[]any{"GET"}, "wrong number of arguments for 'get'"},
		{[]any{"GET", "a\x00b"}, "ERR key"},
		{[]any{"GET", strings.Repeat("k", 1025)}, "ERR key"},
		{[]any{"MSET", "k1", `{}`, "k2"}, "wrong number of arguments for 'mset'"},
		{[]any{"FLUSHALL"}, "ERR unknown command 'flushall'"},
		{[]any{"HSET", "h", "f", "v"}, "ERR unknown command 'hset'"},
		{[]any{"SCAN", "0", "COUNT", "zero"}, "COUNT must be"},
		{[]any{"SCAN", "0", "MATCH"}, "syntax error"},
		{[]any{"SCAN", "0", "MATCH", "\xff*"}, "keys are UTF-8"},
		{[]any{"SELECT", "1"}, "one database per tenant"},
		{[]any{"HELLO", "4"}, "NOPROTO"},
		{[]any{"CLIENT", "KILL", "x"}, "CLIENT subcommand"},
		{[]any{"CLIENT", "SETINFO", "bogus", "x"}, "Unrecognized option 'bogus'"},
		{[]any{"CLIENT", "SETINFO", "LIB-NAME", "my lib"}, "lib-name cannot contain spaces"},
		{[]any{"CLIENT", "SETNAME"}, "wrong number of arguments for 'client|setname'"},
		{[]any{"JSON.SET", "k", "$.a", `1`}, "root path"},
	} {
		err := conn.Do(ctx, tc.cmd...).Err()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.40q: %v, want an error containing %q", tc.cmd, err, tc.want)
		}
	}
	// Nothing was stored, and the connection still serves.
	if got := conn.Exists(ctx, "k", "k1", "k2").Val(); got != 0 {
		t.Fatalf("bad input stored %d documents", got)
	}
	must(t, conn.Ping(ctx).Err())
}

// TestCommandTooLarge: a command announcing more than the body limit (plus
// the slack for its framing) is refused with an error, before the server
// buffers it, and the connection is closed.
func TestCommandTooLarge(t *testing.T) {
	n := startNode(t, func(c *node.Config) { c.MaxBodyBytes = 1024 })
	nc, err := net.Dial("tcp", n.RESPAddr())
	must(t, err)
	defer nc.Close()
	fmt.Fprintf(nc, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n", 100<<20)
	chunk := []byte(strings.Repeat("x", 64<<10))
	var reply []byte
	buf := make([]byte, 512)
	for range 100 { // 6.4 MiB at most; the server stops reading after ~65 KiB
		if _, err := nc.Write(chunk); err != nil {
			break
		}
	}
	for {
		m, err := nc.Read(buf)
		reply = append(reply, buf[:m]...)
		if err != nil {
			break
		}
	}
	if !strings.HasPrefix(string(reply), "-ERR command larger than") {
		t.Fatalf("reply to an oversize command: %q", reply)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var _ = errors.New

// TestMSetMany: an MSET of many pairs stores every key's last value, a DEL
// of many keys counts each once, and the writes of both share group
// commits rather than taking one each.
func TestMSetMany(t *testing.T) {
	n := startNode(t, nil)
	ctx := context.Background()
	c := client(t, n, "acme", acmeToken, 2)
	const pairs = 2000
	var args []any
	var keys []string
	for i := range pairs {
		if i%20 == 0 { // one key repeated through the command: its last value stays
			args = append(args, "dup", fmt.Sprintf(`{"v":%d}`, i))
			continue
		}
		k := fmt.Sprintf("m%04d", i)
		keys = append(keys, k)
		args = append(args, k, fmt.Sprintf(`{"i":%d}`, i))
	}
	before := commits(t, n)
	must(t, c.MSet(ctx, args...).Err())
	groups := commits(t, n) - before
	if got := c.Get(ctx, "dup").Val(); got != fmt.Sprintf(`{"v":%d}`, pairs-20) {
		t.Errorf("GET dup after the MSET: %q, want the last value given", got)
	}
	vals, err := c.MGet(ctx, keys...).Result()
	must(t, err)
	for i, v := range vals {
		var want int
		fmt.Sscanf(keys[i], "m%d", &want)
		if v != fmt.Sprintf(`{"i":%d}`, want) {
			t.Fatalf("GET %s after the MSET: %v", keys[i], v)
		}
	}
	distinct := len(keys) + 1
	if groups <= 0 || groups > distinct/2 {
		t.Errorf("the MSET's %d writes took %d group commits; want them shared (at most %d)", distinct, groups, distinct/2)
	}

	// DEL counts each key once, however often it is named, and an absent
	// key not at all; its deletions share commits too.
	before = commits(t, n)
	del := append(slices.Clone(keys), "dup", "dup", "absent", keys[0])
	if got, err := c.Del(ctx, del...).Result(); err != nil || got != int64(distinct) {
		t.Errorf("DEL of the MSET's keys, dup twice and an absent key: %d, %v; want %d", got, err, distinct)
	}
	if groups := commits(t, n) - before; groups <= 0 || groups > distinct/2 {
		t.Errorf("the DEL's %d deletions took %d group commits; want them shared (at most %d)", distinct, groups, distinct/2)
	}
	if got := c.Exists(ctx, append(keys, "dup")...).Val(); got != 0 {
		t.Errorf("EXISTS after the DEL: %d, want 0", got)
	}
}

// commits is the node's group commits so far (the count of
// cairn_store_commit_batch_size).
func commits(t *testing.T, n *node.Node) int {
	t.Helper()
	res, err := http.Get("http://" + n.AdminAddr() + "/metrics")
	must(t, err)
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(line, "cairn_store_commit_batch_size_count "); ok {
			var c int
			fmt.Sscanf(strings.TrimSpace(v), "%d", &c)
			return c
		}
	}
	t.Fatal("/metrics has no cairn_store_commit_batch_size_count")
	return 0
}

// TestMultiRefused: a transaction is refused and none of its commands
// runs, whether it ends with EXEC or DISCARD, as the client library then
// reports every one of them failed.
func TestMultiRefused(t *testing.T) {
	n := startNode(t, nil)
	ctx := context.Background()
	c := client(t, n, "acme", acmeToken, 2)
	must(t, c.Set(ctx, "acct", `{"bal":100}`, 0).Err())
	cmds, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "acct", `{"bal":50}`, 0)
		p.Set(ctx, "other", `{"bal":50}`, 0)
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "does not run transactions") {
		t.Errorf("TxPipelined: %v; want the refusal", err)
	}
	for _, cmd := range cmds {
		if cmd.Err() == nil {
			t.Errorf("%v in a refused transaction reported no error", cmd.Args())
		}
	}
	if got := c.Get(ctx, "acct").Val(); got != `{"bal":100}` {
		t.Errorf("acct after the refused transaction: %q, want it unchanged", got)
	}
	if got := c.Exists(ctx, "other").Val(); got != 0 {
		t.Errorf("other exists after the refused transaction")
	}

	// By hand, on one connection: DISCARD ends it too, and the
	// connection then serves commands again.
	conn := c.Conn()
	defer conn.Close()
	for _, step := range []struct {
		args []any
		want string // a prefix of the error, "" for success
	}{
		{[]any{"EXEC"}, "ERR EXEC without MULTI"},
		{[]any{"DISCARD"}, "ERR DISCARD without MULTI"},
		{[]any{"MULTI"}, "ERR cairn does not run transactions"},
		{[]any{"MULTI"}, "ERR MULTI calls can not be nested"},
		{[]any{"SET", "tx", `1`}, "ERR not run"},
		{[]any{"NOSUCH"}, "ERR not run"},
		{[]any{"DISCARD"}, ""},
		{[]any{"GET", "tx"}, "redis: nil"},
		{[]any{"MULTI"}, "ERR cairn does not run transactions"},
		{[]any{"RESET"}, ""},
		{[]any{"AUTH", "acme", acmeToken}, ""},
		{[]any{"SET", "tx", `2`}, ""},
	} {
		err := conn.Do(ctx, step.args...).Err()
		if (step.want == "") != (err == nil) || (err != nil && !strings.HasPrefix(err.Error(), step.want)) {
			t.Errorf("%v: %v; want %q", step.args, err, step.want)
		}
	}
}

// TestTenantFigures: the commands of a signed-in connection count in its
// tenant's row of the admin listener's tenant table, as requests do:
// failures as the client's errors.
func TestTenantFigures(t *testing.T) {
	n := startNode(t, nil)
	ctx := context.Background()
	c := client(t, n, "beta", betaToken, 2)
	must(t, c.Set(ctx, "k", `{}`, 0).Err())
	must(t, c.Get(ctx, "k").Err())
	if c.Set(ctx, "k", `nope`, 0).Err() == nil {
		t.Fatal("SET of a value that is not JSON succeeded")
	}
	if c.Do(ctx, "NOSUCH").Err() == nil {
		t.Fatal("an unknown command succeeded")
	}
	// go-redis 9.24 asks for maintenance notifications on every new
	// connection: refused, as Redis 7 refuses it, but not the client's error.
	if err := c.Do(ctx, "CLIENT", "MAINT_NOTIFICATIONS", "on", "moving-endpoint-type", "internal-ip").Err(); err == nil ||
		!strings.Contains(err.Error(), "unknown subcommand 'MAINT_NOTIFICATIONS'") {
		t.Fatalf("CLIENT MAINT_NOTIFICATIONS: %v, want a refusal", err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+n.AdminAddr()+"/v1/admin/tenants", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	res, err := http.DefaultClient.Do(req)
	must(t, err)
	defer res.Body.Close()
	var table struct {
		Tenants map[string]struct {
			Requests     int64 `json:"requests"`
			ClientErrors int64 `json:"client_errors"`
			ServerErrors int64 `json:"server_errors"`
		} `json:"tenants"`
	}
	must(t, json.NewDecoder(res.Body).Decode(&table))
	// go-redis's connection setup (HELLO with AUTH, CLIENT SETINFO) counts
	// too: at least the four commands above.
	row := table.Tenants["beta"]
	if row.Requests < 4 || row.ClientErrors != 2 || row.ServerErrors != 0 {
		t.Errorf("beta's row after 2 good and 2 bad commands: %+v; want at least 4 requests, 2 client errors", row)
	}
}

// TestPipelinedSets: the SETs of a pipeline are answered in order, each as
// it would be alone (bad values, a SET with options and other commands
// between them included), a key written twice keeps its later value, a
// command after them sees them, and their writes share group commits.
func TestPipelinedSets(t *testing.T) {
	n := startNode(t, nil)
	ctx := context.Background()
	c := client(t, n, "acme", acmeToken, 2)
	const sets = 1000
	before := commits(t, n)
	p := c.Pipeline()
	var cmds []redis.Cmder
	for i := range sets {
		cmds = append(cmds, p.Set(ctx, fmt.Sprintf("ps%04d", i), fmt.Sprintf(`{"i":%d}`, i), 0))
	}
	cmds = append(cmds,
		p.Set(ctx, "ps0001", `{"again":1}`, 0), // the same key, later: its value stays
		p.Set(ctx, "psbad", `nope`, 0),         // refused in its place
		p.Set(ctx, "ps\x00", `{}`, 0),          // a bad key, likewise
		p.Get(ctx, "ps0001"),                   // sees the run before it
		p.SetNX(ctx, "ps0002", `{}`, 0),        // a SET with options, run alone
		p.Set(ctx, "psz1", `{"z":1}`, 0),
		p.Set(ctx, "psz2", `{"z":2}`, 0),
	)
	_, _ = p.Exec(ctx)
	groups := commits(t, n) - before
	for i, cmd := range cmds[:sets] {
		if cmd.Err() != nil {
			t.Fatalf("pipelined SET %d: %v", i, cmd.Err())
		}
	}
	rest := cmds[sets:]
	for i, want := range []string{"", "ERR value is not a JSON document", "ERR key", "", "", "", ""} {
		err := rest[i].Err()
		if (want == "") != (err == nil) || (err != nil && !strings.HasPrefix(err.Error(), want)) {
			t.Errorf("%v: %v; want %q", rest[i].Args(), err, want)
		}
	}
	if got := rest[3].(*redis.StringCmd).Val(); got != `{"again":1}` {
		t.Errorf("GET after the run: %q, want the later value", got)
	}
	if ok := rest[4].(*redis.BoolCmd).Val(); ok {
		t.Error("SET NX of a key the run wrote succeeded")
	}
	vals, err := c.MGet(ctx, "ps0000", "ps0999", "psz2").Result()
	if err != nil || fmt.Sprint(vals) != `[{"i":0} {"i":999} {"z":2}]` {
		t.Errorf("MGET after the pipeline: %v, %v", vals, err)
	}
	if c.Exists(ctx, "psbad").Val() != 0 {
		t.Error("the refused value was stored")
	}
	if groups <= 0 || groups > sets/2 {
		t.Errorf("the pipeline's %d SETs took %d group commits; want them shared (at most %d)", sets, groups, sets/2)
	}
}

// TestPipelinedSetsTakeOnePlace: a pipeline's SETs, written concurrently,
// take one of the tenant's in-flight places, as one SET at a time did: a
// tenant limited to a few is not refused its own pipeline.
func TestPipelinedSetsTakeOnePlace(t *testing.T) {
	n := startNode(t, func(c *node.Config) { c.Limits.TenantMaxInFlight = 2 })
	ctx := context.Background()
	c := client(t, n, "acme", acmeToken, 2)
	p := c.Pipeline()
	for i := range 50 {
		p.Set(ctx, fmt.Sprintf("pp%02d", i), `{}`, 0)
	}
	cmds, err := p.Exec(ctx)
	if err != nil {
		t.Fatalf("a pipeline of 50 SETs with 2 in-flight places: %v", err)
	}
	for _, cmd := range cmds {
		if cmd.Err() != nil {
			t.Fatalf("%v: %v", cmd.Args(), cmd.Err())
		}
	}
}

// TestValuesOwned: a command's arguments are slices of its connection's
// read buffer, which the next read reuses; every value the store keeps
// (SET, JSON.SET, MSET, pipelined SETs) must be its own copy. Each round
// writes values of one length, one command per read and pipelined, then
// overwrites the buffer with other commands of the same shape, and reads
// every value back from the cache. The values are larger than the cache
// copies (docs.packLimit), so that it keeps the store's.
func TestValuesOwned(t *testing.T) {
	n := startNode(t, nil)
	ctx := context.Background()
	c := client(t, n, "acme", acmeToken, 2)
	pad := strings.Repeat("x", 5000)
	val := func(i int) string { return fmt.Sprintf(`{"v":"%06d","pad":"%s"}`, i, pad) }
	want := map[string]string{}
	for i := range 20 {
		k := fmt.Sprintf("own-set-%d", i)
		if err := c.Set(ctx, k, val(i), 0).Err(); err != nil {
			t.Fatal(err)
		}
		want[k] = val(i)
	}
	for i := range 20 {
		k := fmt.Sprintf("own-json-%d", i)
		if err := c.Do(ctx, "JSON.SET", k, "$", val(100+i)).Err(); err != nil {
			t.Fatal(err)
		}
		want[k] = val(100 + i)
	}
	for i := range 10 {
		k1, k2 := fmt.Sprintf("own-mset-%d-a", i), fmt.Sprintf("own-mset-%d-b", i)
		if err := c.MSet(ctx, k1, val(200+2*i), k2, val(201+2*i)).Err(); err != nil {
			t.Fatal(err)
		}
		want[k1], want[k2] = val(200+2*i), val(201+2*i)
	}
	for round := range 3 {
		p := c.Pipeline()
		// A large value first grows the read buffer, so that the reads
		// after it hold several SETs each, which run together (setRun).
		big := fmt.Sprintf("own-big-%d", round)
		p.Set(ctx, big, `"`+strings.Repeat("b", 40<<10)+`"`, 0)
		want[big] = `"` + strings.Repeat("b", 40<<10) + `"`
		for i := range 50 {
			k := fmt.Sprintf("own-pipe-%d-%d", round, i)
			p.Set(ctx, k, val(1000*(round+1)+i), 0)
			want[k] = val(1000*(round+1) + i)
		}
		if _, err := p.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range want {
		got, err := c.Get(ctx, k).Result()
		if err != nil || got != v {
			t.Errorf("GET %s: %.40q…, %v; want %.40q…", k, got, err, v)
		}
	}
}
