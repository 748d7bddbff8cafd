package e2e

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// redisTools returns the directory of redis-cli and redis-benchmark
// (scripts/redis-tools.sh), skipping the test outside CI when there is
// none.
func redisTools(t *testing.T) string {
	dir := os.Getenv("CAIRN_REDIS_TOOLS")
	if dir == "" {
		matches, _ := filepath.Glob("../../.tools/redis-tools-*/bin")
		if len(matches) > 0 {
			dir = matches[len(matches)-1]
		}
	}
	if dir == "" {
		msg := "no redis-tools; install them with `bash scripts/redis-tools.sh` (or set CAIRN_REDIS_TOOLS)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return dir
}

var respAddr = regexp.MustCompile(`resp (\S+:\d+)\)`)

// respOf returns host and port of a node's RESP listener, from the line
// serve prints on stderr as it starts. That line is copied from the
// process's pipe by another goroutine than stdout's, so it may arrive
// after the node is ready: it is polled for, across processes.
func respOf(t *testing.T, p *proc) (host, port string) {
	var m []string
	for deadline := time.Now().Add(10 * time.Second); m == nil; {
		if m = respAddr.FindStringSubmatch(p.stderr.String()); m == nil && time.Now().After(deadline) {
			t.Fatalf("serve did not print its RESP address:\n%s", p.stderr)
		}
		if m == nil {
			time.Sleep(10 * time.Millisecond)
		}
	}
	host, port, err := net.SplitHostPort(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return host, port
}

// TestRESPWithRedisTools drives the real binary's RESP front with the real
// redis-cli and redis-benchmark, and reads what they wrote over HTTP.
func TestRESPWithRedisTools(t *testing.T) {
	tools := redisTools(t)
	p := startNode(t, t.TempDir(), "--resp-listen", "127.0.0.1:0")
	host, port := respOf(t, p)
	cli := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		base := []string{"-h", host, "-p", port, "--user", "demo", "--pass", p.Token, "--no-auth-warning"}
		out, err := exec.CommandContext(ctx, filepath.Join(tools, "redis-cli"), append(base, args...)...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"PING"}, "PONG"},
		{[]string{"SET", "greeting", `{"hello":"world"}`}, "OK"},
		{[]string{"GET", "greeting"}, `{"hello":"world"}`},
		{[]string{"SET", "greeting", `{"hello":"again"}`, "NX"}, ""},
		{[]string{"SET", "bad", "not json"}, "ERR value is not a JSON document: invalid JSON at byte 0"},
		{[]string{"EXISTS", "greeting", "bad"}, "1"},
		{[]string{"TYPE", "greeting"}, "string"},
		{[]string{"NOSUCH"}, "ERR unknown command 'nosuch'"},
	} {
		got, _ := cli(tc.args...)
		if got != tc.want && !(tc.want != "" && strings.HasPrefix(got, tc.want)) {
			t.Errorf("redis-cli %q: %q, want %q", tc.args, got, tc.want)
		}
	}
	// Without AUTH: NOAUTH, whatever the command.
	out, _ := exec.Command(filepath.Join(tools, "redis-cli"), "-h", host, "-p", port, "GET", "greeting").CombinedOutput()
	if !strings.HasPrefix(string(out), "NOAUTH") {
		t.Errorf("redis-cli without AUTH: %q", out)
	}
	// An interactive session's pipeline of commands from stdin.
	cmd := exec.Command(filepath.Join(tools, "redis-cli"), "-h", host, "-p", port, "--user", "demo", "--pass", p.Token, "--no-auth-warning")
	cmd.Stdin = strings.NewReader("SET a 1\nSET b [2]\nMGET a b nosuch\nDEL a\n")
	out, err := cmd.CombinedOutput()
	if want := "OK\nOK\n1\n[2]\n\n1\n"; err != nil || string(out) != want {
		t.Errorf("redis-cli with commands on stdin: %q (%v), want %q", out, err, want)
	}

	// redis-benchmark, plain and pipelined, with JSON values: every SET it
	// was answered OK for is readable over HTTP.
	value := `{"symbol":"ACME","price":101.25,"volume":300}`
	for _, pipeline := range []string{"1", "16"} {
		bench := exec.Command(filepath.Join(tools, "redis-benchmark"), "-h", host, "-p", port, "--user", "demo", "-a", p.Token,
			"-c", "8", "-n", "2000", "-r", "500", "-P", pipeline, "--csv", "SET", "bench:__rand_int__", value)
		out, err := bench.CombinedOutput()
		if err != nil {
			t.Fatalf("redis-benchmark -P %s: %v\n%s", pipeline, err, out)
		}
		if rps := benchRPS(t, string(out)); rps <= 0 {
			t.Fatalf("redis-benchmark -P %s: %v requests per second\n%s", pipeline, rps, out)
		}
	}
	got, _ := cli("SCAN", "0", "MATCH", "bench:*", "COUNT", "1000")
	keys := strings.Fields(got)
	if len(keys) < 100 {
		t.Fatalf("SCAN after redis-benchmark found %d keys:\n%.300s", len(keys), got)
	}
	res, body, err := p.do(context.Background(), "GET", keys[len(keys)-1], "")
	if err != nil || res.StatusCode != 200 || string(body) != value {
		t.Fatalf("HTTP GET of %s written by redis-benchmark: %v %v %q", keys[len(keys)-1], res.Status, err, body)
	}
	if err := p.stop(); err != nil {
		t.Fatalf("cairn exited with %v after the RESP session:\n%s", err, p.stderr)
	}
}

// benchRPS reads the requests per second of redis-benchmark's --csv
// output: its last line is "test","rps",… with the test's name unescaped
// (it holds the JSON value's quotes), so the fields are counted from the
// end.
func benchRPS(t *testing.T, out string) float64 {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	fields := strings.Split(lines[len(lines)-1], `","`)
	if len(fields) < 8 {
		t.Fatalf("redis-benchmark output:\n%s", out)
	}
	rps, err := strconv.ParseFloat(fields[len(fields)-7], 64)
	if err != nil {
		t.Fatalf("redis-benchmark rps %q: %v", fields[len(fields)-7], err)
	}
	return rps
}
