package e2e

import (
	"bufio"
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/proctest"
	"github.com/cairnstore/cairn/internal/server"
)

// The tests in this file follow a newcomer's path on the real binary: help,
// the lines serve prints to paste, the client commands' answers, ingest's
// rejects, version, and what serve says when it starts and stops.

// cairnRun runs the binary to completion with env added to the process's
// environment; a command still running after a minute is killed.
func cairnRun(t *testing.T, env []string, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cairnBin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("cairn %q: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

// clientEnv is the environment of a client command talking to p.
func clientEnv(p *proc) []string {
	return []string{"CAIRN_URL=" + p.URL, "CAIRN_TOKEN=" + p.Token, "CAIRN_TENANT=demo"}
}

// TestHelpEnds: every way of asking for help, including help about help,
// prints a bounded usage on stdout and exits 0.
func TestHelpEnds(t *testing.T) {
	for _, args := range [][]string{
		{"help"}, {"-h"}, {"--help"}, {"help", "help"}, {"--help", "--help"}, {"help", "--help"}, {"-h", "help"},
		{"help", "serve"}, {"serve", "--help"}, {"serve", "--help", "--help"}, {"serve", "-h"},
		{"help", "put"}, {"put", "--help", "--help"}, {"help", "ingest"}, {"ingest", "--help"},
		{"help", "conflicts"}, {"help", "reconcile"}, {"help", "bench"}, {"help", "chaos"}, {"chaos", "run", "--help"},
	} {
		code, stdout, stderr := cairnRun(t, nil, "", args...)
		if code != 0 || !strings.Contains(stdout, "Usage") || len(stdout)+len(stderr) > 16<<10 {
			t.Errorf("cairn %s: exit %d, %d bytes on stdout, %d on stderr; want exit 0 and a usage on stdout\n%.500s",
				strings.Join(args, " "), code, len(stdout), len(stderr), stdout+stderr)
		}
	}
}

// TestPastedLinesWork pastes the lines serve prints into a shell: the
// client commands then reach the node, and a second serve started in that
// shell is not confused by the client's settings.
func TestPastedLinesWork(t *testing.T) {
	dir := t.TempDir()
	p := startNode(t, filepath.Join(dir, "a"))
	pasted := readyLines(t, p)
	script := pasted + `
"$CAIRN" put greeting --data '{"hello":"world"}' && "$CAIRN" get greeting && "$CAIRN" del greeting || exit 1
exec "$CAIRN" serve --data-dir "$DIR" --listen 127.0.0.1:0 --admin-listen ''
`
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = append(os.Environ(), "CAIRN="+cairnBin, "DIR="+filepath.Join(dir, "b"))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &proctest.SyncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	}()
	sc := bufio.NewScanner(stdout)
	var got []string
	for sc.Scan() { // ends when the second serve is ready or the shell exits
		got = append(got, sc.Text())
		if strings.HasPrefix(sc.Text(), "export CAIRN_TOKEN=") {
			break
		}
	}
	want := []string{"created greeting", `{"hello":"world"}`, "deleted greeting", "export CAIRN_URL=http://127.0.0.1:"}
	if len(got) < len(want) {
		t.Fatalf("after pasting\n%s\nthe shell printed %q and\n%s", pasted, got, stderr)
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w) {
			t.Errorf("line %d: %q, want it to begin with %q", i+1, got[i], w)
		}
	}
}

// readyLines is what p printed on stdout to paste into a shell.
func readyLines(t *testing.T, p *proc) string {
	t.Helper()
	lines := fmt.Sprintf("export CAIRN_URL=%s\nexport CAIRN_TENANT=demo\nexport CAIRN_TOKEN=%s", p.URL, p.Token)
	if !strings.Contains(p.stdout, lines) {
		t.Fatalf("serve printed %q on stdout, want\n%s", p.stdout, lines)
	}
	return lines
}

// TestServeNamesTheVariable: a bad setting from the environment is named by
// its variable, serve's list of tenants has its own variable, and a bad
// flag value is one line naming the flag and what it wants.
func TestServeNamesTheVariable(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		env  []string
		args []string
		want string
	}{
		{[]string{"CAIRN_TENANTS=demo"}, nil, "cairn serve: CAIRN_TENANTS: want NAME:TOKEN_SHA256, got a value without ':' (not repeated here: it may be a token)\n"},
		{[]string{"CAIRN_RECONCILE_INTERVAL=30"}, nil, `cairn serve: CAIRN_RECONCILE_INTERVAL="30": want a duration such as 30s` + "\n"},
		{nil, []string{"--reconcile-interval", "30"}, `cairn serve: --reconcile-interval "30": want a duration such as 30s (see cairn help serve)` + "\n"},
		{nil, []string{"--max-in-flight=many"}, `cairn serve: --max-in-flight "many": want a whole number (see cairn help serve)` + "\n"},
		{nil, []string{"--no-such-flag"}, "cairn serve: flag provided but not defined: -no-such-flag (see cairn help serve)\n"},
	} {
		args := append([]string{"serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--admin-listen", ""}, c.args...)
		code, _, stderr := cairnRun(t, c.env, "", args...)
		if code != 2 || stderr != c.want {
			t.Errorf("%q cairn %q: exit %d, stderr\n%s\nwant exit 2 and\n%s", c.env, args, code, stderr, c.want)
		}
	}
	if code, _, stderr := cairnRun(t, []string{"CAIRN_TOKEN=x"}, "", "put", "k", "--if-match"); code != 2 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "-if-match") {
		t.Errorf("put --if-match without a value: exit %d, stderr\n%s\nwant one line naming the flag", code, stderr)
	}
}

// TestClientAnswers: the client commands confirm what they did, and their
// errors say what to do: another tenant than the token's, no node at the
// URL.
func TestClientAnswers(t *testing.T) {
	p := startNode(t, t.TempDir(), "--log-level", "info")
	env := clientEnv(p)
	if code, out, stderr := cairnRun(t, env, "", "put", "k", "--data", "{}"); code != 0 || !strings.HasPrefix(out, "created k ") {
		t.Fatalf("put: %d %q %s", code, out, stderr)
	}
	if code, out, stderr := cairnRun(t, env, "", "del", "k"); code != 0 || out != "deleted k\n" {
		t.Errorf("del: exit %d, stdout %q, stderr %s; want 0 and \"deleted k\"", code, out, stderr)
	}
	code, _, stderr := cairnRun(t, append(env, "CAIRN_TENANT=acme"), "", "get", "k")
	if code != 1 || !strings.Contains(stderr, "HTTP 403") || !strings.Contains(stderr, "set CAIRN_TENANT (or --tenant)") {
		t.Errorf("get as another tenant: exit %d, stderr\n%s\nwant 1 and a hint at CAIRN_TENANT", code, stderr)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", proctest.FreePorts(t, 1)[0])
	code, _, stderr = cairnRun(t, []string{"CAIRN_URL=" + url, "CAIRN_TOKEN=x"}, "", "get", "k")
	want := "cairn get: no cairn node answers at " + url + " (connection refused): check that 'cairn serve' runs there, or set CAIRN_URL or --url\n"
	if code != 1 || stderr != want {
		t.Errorf("get with no node: exit %d, stderr\n%s\nwant 1 and\n%s", code, stderr, want)
	}

	if err := p.stop(); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, p.stderr)
	}
	lines := strings.Split(strings.TrimSpace(p.stderr.String()), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, `"msg":"stopped"`) || !strings.Contains(last, `"exit_code":0`) {
		t.Errorf("the last line after SIGTERM is %s, want the \"stopped\" log line", last)
	}
}

// TestWildcardListenURL: serve on every interface prints a URL that opens,
// and says that the admin listener is on every interface too.
func TestWildcardListenURL(t *testing.T) {
	sum := server.HashToken("tok")
	cmd := exec.Command(cairnBin, "serve", "--data-dir", t.TempDir(), "--listen", "0.0.0.0:0", "--admin-listen", "0.0.0.0:0",
		"--tenant", fmt.Sprintf("acme:%x", sum), "--admin-token-sha256", fmt.Sprintf("%x", server.HashToken("admin")))
	stderr := &proctest.SyncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	}()
	re := regexp.MustCompile(`cairn \S+ serving (\S+)`)
	deadline := time.Now().Add(30 * time.Second) // across processes: poll with a deadline
	var m []string
	for m == nil && time.Now().Before(deadline) {
		m = re.FindStringSubmatch(stderr.String())
		time.Sleep(10 * time.Millisecond)
	}
	if m == nil {
		t.Fatalf("no serving line within 30s:\n%s", stderr)
	}
	if !strings.HasPrefix(m[1], "http://127.0.0.1:") {
		t.Fatalf("serve --listen 0.0.0.0:0 printed %s, want http://127.0.0.1:PORT\n%s", m[1], stderr)
	}
	if !regexp.MustCompile(`\(admin 127\.0\.0\.1:[0-9]+ on every interface\)`).MatchString(stderr.String()) {
		t.Errorf("serve --admin-listen 0.0.0.0:0 did not say the admin listener is on every interface:\n%s", stderr)
	}
	resp, err := httpClient.Get(m[1] + "/livez")
	if err != nil {
		t.Fatalf("opening the printed URL: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s/livez: %s", m[1], resp.Status)
	}
}

// TestVersionNamesTheBuild: cairn version and cairn_build_info show what
// the binary's build info records.
func TestVersionNamesTheBuild(t *testing.T) {
	bi, err := buildinfo.ReadFile(cairnBin)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{bi.GoVersion}
	if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		want = append(want, bi.Main.Version)
	}
	revision := ""
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" || s.Key == "vcs.time" {
			want = append(want, s.Value)
		}
		if s.Key == "vcs.revision" {
			revision = s.Value
		}
	}
	code, out, _ := cairnRun(t, nil, "", "version")
	for _, w := range want {
		if code != 0 || !strings.Contains(out, w) {
			t.Errorf("cairn version: exit %d, %q; want it to name %q", code, out, w)
		}
	}

	p := startNode(t, t.TempDir())
	resp, err := httpClient.Get("http://" + adminAddr(t, p) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "cairn_build_info{") {
			if !strings.Contains(sc.Text(), fmt.Sprintf("revision=%q", revision)) || !strings.Contains(sc.Text(), "revision_time=") {
				t.Errorf("%s: want the labels revision=%q and revision_time", sc.Text(), revision)
			}
			return
		}
	}
	t.Errorf("no cairn_build_info in /metrics")
}
