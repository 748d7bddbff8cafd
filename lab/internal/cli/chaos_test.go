package cli

import (
	"strings"
	"testing"
)

// TestChaosRunRefusesBadFlags: the checks that run before any process is
// started. (The scenarios themselves run in test/chaos.)
func TestChaosRunRefusesBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"chaos"}, "want 'cairn chaos run"},
		{[]string{"chaos", "run", "--scenario", "meteor"}, `--scenario "meteor": want one of load, partition, node-failure, corruption, memory`},
		{[]string{"chaos", "run", "--nodes", "1"}, "--nodes ≥ 2"},
		{[]string{"chaos", "run", "--duration", "10ms"}, "--duration ≥ 1s"},
	} {
		code, _, stderr := run(t, nil, "", tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, stderr, exitUsage, tc.want)
		}
	}
	if code, out, _ := run(t, nil, "", "chaos", "--help"); code != exitOK || !strings.Contains(out, "node-failure") {
		t.Errorf("chaos --help: %d %q", code, out)
	}
}
