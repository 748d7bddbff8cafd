package cli

import (
	"strings"
	"testing"
)

// TestBenchReplicationBadArgs: a call that cannot run says what was wrong
// and exits 2, before starting anything.
func TestBenchReplicationBadArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "want at least one LABEL=CAIRN-BINARY"},
		{[]string{"./cairn"}, `"./cairn": want LABEL=CAIRN-BINARY`},
		{[]string{"A="}, `"A=": want LABEL=CAIRN-BINARY`},
		{[]string{"--rows", "1,6", "A=./cairn"}, `--rows "1,6": want numbers from 1 to 5`},
		{[]string{"--rows", "two", "A=./cairn"}, `--rows "two"`},
		{[]string{"--docs", "many", "A=./cairn"}, `--docs "many": want a whole number`},
		{[]string{"--docs", "0", "A=./cairn"}, `--docs, --duration, --hot-rate, --flow-rate, --probe-every and --probe-timeout: want more than 0`},
		{[]string{"--duration", "-1s", "A=./cairn"}, `want more than 0`},
	} {
		code, _, stderr := run(t, nil, "", append([]string{"bench-replication"}, tc.args...)...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("bench-replication %q: exit %d, stderr %q; want %d and %q", tc.args, code, stderr, exitUsage, tc.want)
		}
	}
}
