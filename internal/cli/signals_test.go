package cli

import "testing"

// TestReadsSignals: the commands that read Env.Signals are serve and the
// lab's, whose dispatch names the same list; every other command runs with
// a context main's first signal cancels.
func TestReadsSignals(t *testing.T) {
	for cmd, want := range map[string]bool{"serve": true, "bench": true, "bench-bare": true, "chaos": true,
		"import": false, "export": false, "ingest": false, "put": false, "reconcile": false, "": false} {
		if got := ReadsSignals(cmd); got != want {
			t.Errorf("ReadsSignals(%q) = %v, want %v", cmd, got, want)
		}
	}
}
