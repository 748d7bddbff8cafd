package telemetry

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// TestSDKErrorsLogged: the tracing SDK's errors (a failed export) reach the
// node's log as its own lines, at most one a minute, not the standard
// library logger's plain text.
func TestSDKErrorsLogged(t *testing.T) {
	var buf bytes.Buffer
	h := sdkErrors(slog.New(slog.NewJSONHandler(&buf, nil)))
	h.Handle(errors.New(`traces export: Post "http://127.0.0.1:1/v1/traces": connection refused`))
	h.Handle(errors.New("traces export: again"))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], `"level":"WARN"`) || !strings.Contains(lines[0], "connection refused") {
		t.Fatalf("logged %q; want one JSON line with the error", buf.String())
	}
}
