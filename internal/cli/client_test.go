package cli

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/internal/node"
	"github.com/cairnstore/cairn/internal/server"
)

// startNode runs a node in-process for the client commands, with one tenant.
func startNode(t *testing.T) (env map[string]string) {
	t.Helper()
	tok, sum, err := server.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(context.Background(), node.Config{
		DataDir: t.TempDir(), Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler),
		Auth: server.Auth{Tenants: map[string][][32]byte{"acme": {sum}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	return map[string]string{"CAIRN_URL": "http://" + n.Addr(), "CAIRN_TOKEN": tok, "CAIRN_TENANT": "acme"}
}

func TestClientCommands(t *testing.T) {
	env := startNode(t)
	file := filepath.Join(t.TempDir(), "doc.json")
	os.WriteFile(file, []byte(`{"from":"file"}`), 0o600)
	steps := []struct {
		args   []string
		stdin  string
		code   int
		stdout string // substring
		stderr string // substring
	}{
		{[]string{"put", "a/1", "--data", `{"n":1}`}, "", 0, "created a/1 \"", ""},
		{[]string{"put", "a/1", "-"}, `{"n":2}`, 0, "replaced a/1", ""},
		{[]string{"put", "a/2", file}, "", 0, "created a/2", ""},
		{[]string{"get", "a/1"}, "", 0, `{"n":2}`, ""},
		{[]string{"get", "a/2"}, "", 0, `{"from":"file"}`, ""},
		{[]string{"ls", "--prefix", "a/", "--long"}, "", 0, "a/2", ""},
		{[]string{"put", "a/1", "--create-only", "--data", `{}`}, "", exitFail, "", "HTTP 412"},
		// An ETag without its quotes, as RESP prints it, is an ETag all the same.
		{[]string{"put", "a/1", "--if-match", "0123456789abcdef0123456789abcdef", "--data", `{}`}, "", exitFail, "", "HTTP 412"},
		{[]string{"put", "bad", "--data", `{"x":01}`}, "", exitFail, "", "invalid JSON at byte 5: number has a leading zero"},
		{[]string{"put", "k"}, "", exitUsage, "", "missing body"},
		{[]string{"put", "k", file, "--data", "{}"}, "", exitUsage, "", "not both"},
		{[]string{"get"}, "", exitUsage, "", "missing KEY"},
		{[]string{"put", "a/2", "--if-match", "", "--data", `{}`}, "", exitUsage, "", "--if-match is empty"},
		{[]string{"put", "a/2", "--if-match", `"x"`, "--create-only", "--data", `{}`}, "", exitUsage, "", "give one"},
		{[]string{"del", "a/2", "--create-only"}, "", exitUsage, "", "--create-only applies to put only"},
		{[]string{"get", "a/2", "--if-match", `"x"`}, "", exitUsage, "", "--if-match applies to put and del only"},
		{[]string{"get", "a/2", "--data", `{}`}, "", exitUsage, "", "--data applies to put only"},
		{[]string{"ls", "--if-match", `"x"`}, "", exitUsage, "", "--if-match applies to put and del only"},
		{[]string{"put", "a/3", "--prefix", "a/", "--data", `{}`}, "", exitUsage, "", "--prefix applies to ls only"},
		{[]string{"get", "a/2"}, "", 0, `{"from":"file"}`, ""},
		{[]string{"del", "a/1"}, "", 0, "", ""},
		{[]string{"get", "a/1"}, "", exitFail, "", "HTTP 404"},
		{[]string{"del", "a/1"}, "", exitFail, "", "HTTP 404"},
		{[]string{"get", "a/2", "--tenant", "other"}, "", exitFail, "", "HTTP 403"},
		{[]string{"get", "a/2", "--token", "cairn_wrong"}, "", exitFail, "", "HTTP 401"},
	}
	for _, s := range steps {
		code, stdout, stderr := run(t, env, s.stdin, s.args...)
		if code != s.code || !strings.Contains(stdout, s.stdout) || !strings.Contains(stderr, s.stderr) {
			t.Errorf("cairn %q: exit %d, stdout %q, stderr %q; want exit %d, stdout ∋ %q, stderr ∋ %q",
				s.args, code, stdout, stderr, s.code, s.stdout, s.stderr)
		}
	}
	if code, stdout, _ := run(t, env, "", "ls"); code != 0 || stdout != "a/2\n" {
		t.Errorf("ls after delete = %d %q, want just a/2", code, stdout)
	}
	delete(env, "CAIRN_TOKEN")
	if code, _, stderr := run(t, env, "", "get", "a/2"); code != exitUsage || !strings.Contains(stderr, "CAIRN_TOKEN") {
		t.Errorf("no token: %d %q", code, stderr)
	}
	// The command line's own mistake is named before the missing token.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"get"}, "missing KEY"},
		{[]string{"del", "a", "b"}, `unexpected argument "b"`},
		{[]string{"put", "k"}, "missing body"},
		{[]string{"ls", "x"}, `unexpected argument "x" (use --prefix)`},
		{[]string{"conflicts", "show"}, "missing KEY"},
		{[]string{"conflicts", "ls", "x"}, `unexpected argument "x"`},
		{[]string{"conflicts", "resolve", "k"}, "give exactly one of --choose"},
		{[]string{"ingest", "--key-field", "id"}, "want exactly one FILE"},
		{[]string{"ingest", "-"}, "key"},
	} {
		if code, _, stderr := run(t, env, "", c.args...); code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%q with no token: %d %q, want %q", c.args, code, stderr, c.want)
		}
	}
	// A URL cairn cannot call is named before the missing token, by every
	// client command.
	env["CAIRN_URL"] = "notaurl"
	for _, args := range [][]string{{"get", "a/2"}, {"conflicts", "ls"}, {"ingest", "-", "--key-field", "id"}} {
		if code, _, stderr := run(t, env, "", args...); code != exitUsage || !strings.Contains(stderr, `the node's URL "notaurl" (CAIRN_URL or --url)`) {
			t.Errorf("%q with a bad URL and no token: %d %q", args, code, stderr)
		}
	}
}
