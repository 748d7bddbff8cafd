package cli

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/internal/node"
	"github.com/cairnstore/cairn/internal/reconcile"
	"github.com/cairnstore/cairn/internal/server"
)

// startManualNodes runs two nodes sharing one fs backend, tenant acme under
// the manual conflict policy; the envs hold each one's settings.
func startManualNodes(t *testing.T) (a, b map[string]string) {
	t.Helper()
	tok, sum, err := server.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	spec, err := node.ParseBackendSpec("shared=fs:" + t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	start := func() map[string]string {
		n, err := node.Start(context.Background(), node.Config{
			DataDir: t.TempDir(), Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler),
			Auth: server.Auth{Tenants: map[string][][32]byte{"acme": {sum}}},
			Replication: node.Replication{Backends: []node.BackendSpec{spec},
				Policies: map[string]reconcile.Policy{"acme": {Strategy: reconcile.Manual}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Shutdown(context.Background()) })
		return map[string]string{"CAIRN_URL": "http://" + n.Addr(), "CAIRN_TOKEN": tok, "CAIRN_TENANT": "acme",
			"CAIRN_ADMIN_URL": "http://" + n.AdminAddr()}
	}
	return start(), start()
}

func TestConflictsCommands(t *testing.T) {
	a, b := startManualNodes(t)
	must := func(env map[string]string, args ...string) string {
		t.Helper()
		code, stdout, stderr := run(t, env, "", args...)
		if code != 0 {
			t.Fatalf("cairn %q: %d %s", args, code, stderr)
		}
		return stdout
	}
	must(a, "put", "k", "--data", `{"from":"a"}`)
	must(b, "put", "k", "--data", `{"from":"b"}`)
	for range 3 { // each node's rounds: the conflict, then the download of the siblings
		must(b, "reconcile", "run", "--wait")
		must(a, "reconcile", "run", "--wait")
	}

	ls := must(a, "conflicts", "ls")
	if !regexp.MustCompile(`^k +2 siblings +"[0-9a-f]{32}" "[0-9a-f]{32}"\n$`).MatchString(ls) {
		t.Fatalf("conflicts ls: %q", ls)
	}
	show := must(b, "conflicts", "show", "k")
	var fromB string
	for _, line := range strings.Split(show, "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], `"`) {
			fromB = f[0] // the last sibling header before b's body
		}
		if strings.TrimSpace(line) == `{"from":"b"}` {
			break
		}
	}
	set := regexp.MustCompile(`(?m)^set ("[0-9a-f]{32}")`).FindStringSubmatch(show)
	if fromB == "" || !strings.Contains(show, `{"from":"a"}`) || set == nil {
		t.Fatalf("conflicts show: %q", show)
	}
	if code, _, stderr := run(t, a, "", "get", "k"); code != exitFail || !strings.Contains(stderr, "HTTP 409") ||
		!strings.Contains(stderr, "'cairn conflicts show k'") || !strings.Contains(stderr, "'cairn conflicts resolve k --choose ETAG'") {
		t.Fatalf("get of a conflict: %d %s; want HTTP 409 and the conflicts commands that resolve it", code, stderr)
	}
	steps := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"conflicts", "resolve", "k"}, exitUsage, "exactly one"},
		{[]string{"conflicts", "bogus"}, exitUsage, `unknown subcommand "bogus": want ls, show, resolve or history (see cairn conflicts --help)`},
		{[]string{"conflicts", "resolve", "k", "--choose", fromB, "--delete"}, exitUsage, "exactly one"},
		{[]string{"conflicts", "resolve", "k", "--data", "{"}, exitUsage, "not valid JSON"},
		{[]string{"conflicts", "resolve", "k", "--choose", `"nope"`}, exitFail, "HTTP 400"},
		{[]string{"conflicts", "resolve", "k", "--choose", fromB, "--if-match", `"0123456789abcdef0123456789abcdef"`}, exitFail, "HTTP 412"},
		{[]string{"conflicts", "resolve", "k", "--choose", fromB, "--if-match", "0123456789abcdef0123456789abcdef"}, exitFail, "HTTP 412"},
		{[]string{"conflicts", "show"}, exitUsage, "missing KEY"},
		{[]string{"conflicts", "show", "other"}, exitFail, "HTTP 404"},
		{[]string{"conflicts", "sideways"}, exitUsage, "unknown subcommand"},
		{[]string{"conflicts"}, exitUsage, "Usage"},
	}
	for _, s := range steps {
		if code, _, stderr := run(t, a, "", s.args...); code != s.code || !strings.Contains(stderr, s.stderr) {
			t.Errorf("cairn %q: %d %q; want %d, stderr ∋ %q", s.args, code, stderr, s.code, s.stderr)
		}
	}
	if out := must(a, "conflicts", "resolve", "k", "--choose", fromB, "--if-match", set[1]); !strings.HasPrefix(out, "resolved k \"") {
		t.Fatalf("resolve: %q", out)
	}
	for range 2 {
		must(a, "reconcile", "run", "--wait")
		must(b, "reconcile", "run", "--wait")
	}
	for _, env := range []map[string]string{a, b} {
		if got := must(env, "conflicts", "history", "k"); !strings.Contains(got, `{"from":"a"}`) || !strings.Contains(got, "replaced by") {
			t.Fatalf("conflicts history: %q", got)
		}
		if got := must(env, "get", "k"); got != "{\"from\":\"b\"}\n" {
			t.Fatalf("get after the resolution: %q", got)
		}
		if got := must(env, "conflicts", "ls"); got != "" {
			t.Fatalf("conflicts ls after the resolution: %q", got)
		}
	}
}
