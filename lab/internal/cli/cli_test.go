package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// run runs cairn-lab in-process with env as its environment.
func run(t *testing.T, env map[string]string, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(context.Background(), args, Env{
		Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb,
		Getenv: func(k string) string { return env[k] },
	})
	return code, out.String(), errb.String()
}

func TestUnknownCommand(t *testing.T) {
	if code, _, stderr := run(t, nil, "", "serve"); code != exitUsage || !strings.Contains(stderr, `unknown command "serve"`) {
		t.Errorf("cairn-lab serve: exit %d, stderr %q; want %d naming the command", code, stderr, exitUsage)
	}
	if code, stdout, _ := run(t, nil, "", "help"); code != exitOK || !strings.Contains(stdout, "chaos run") {
		t.Errorf("cairn-lab help: exit %d, stdout %q", code, stdout)
	}
}

// TestChaosRunNeedsCairn: without --cairn, $CAIRN_BIN, or a cairn beside
// the test binary or on PATH, chaos run says which settings it wants.
func TestChaosRunNeedsCairn(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	env := map[string]string{"CAIRN_VERSITYGW_BIN": "/nonexistent/versitygw"}
	code, _, stderr := run(t, env, "", "chaos", "run", "--versitygw", "/nonexistent/versitygw")
	if code != exitFail || !strings.Contains(stderr, "no cairn binary: pass --cairn, set CAIRN_BIN") {
		t.Errorf("exit %d, stderr %q; want %d and the settings that name a cairn binary", code, stderr, exitFail)
	}
}
