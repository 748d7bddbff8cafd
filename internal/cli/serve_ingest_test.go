package cli

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/server"
)

// The ingest limits reach the node: the defaults, sizes and durations as
// given, and 0 for no minimum rate (the node's negative).
func TestIngestSettings(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  map[string]string
		want server.IngestLimits
	}{
		{nil, nil, server.IngestLimits{Streams: 4, MinRate: 500, RateWindow: 10 * time.Second}},
		{[]string{"--ingest-streams", "8", "--ingest-tenant-streams", "3", "--ingest-min-rate", "1KiB", "--ingest-rate-window", "30s"}, nil,
			server.IngestLimits{Streams: 8, TenantStreams: 3, MinRate: 1024, RateWindow: 30 * time.Second}},
		{[]string{"--ingest-min-rate", "0"}, nil, server.IngestLimits{Streams: 4, MinRate: -1, RateWindow: 10 * time.Second}},
		{nil, map[string]string{"CAIRN_INGEST_STREAMS": "2"}, server.IngestLimits{Streams: 2, MinRate: 500, RateWindow: 10 * time.Second}},
	} {
		fs, f := newServeFlags()
		if err := fs.Parse(append([]string{"--data-dir", t.TempDir()}, c.args...)); err != nil {
			t.Fatal(err)
		}
		getenv := func(k string) string { return c.env[k] }
		if err := settle(fs, getenv, "config"); err != nil {
			t.Fatal(err)
		}
		cfg, err := f.nodeConfig(Env{Stderr: io.Discard, Getenv: getenv})
		if err != nil {
			t.Fatalf("%q: %v", c.args, err)
		}
		if cfg.Ingest != c.want {
			t.Errorf("%q %v: Ingest %+v, want %+v", c.args, c.env, cfg.Ingest, c.want)
		}
	}
}

func TestIngestSettingsRefused(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--ingest-streams", "0"}, "--ingest-streams 0: want 1 or more"},
		{[]string{"--ingest-tenant-streams", "5"}, "--ingest-tenant-streams 5: want 0 (half of --ingest-streams) to --ingest-streams (4)"},
		{[]string{"--ingest-rate-window", "0s"}, "--ingest-rate-window 0s"},
		{[]string{"--ingest-min-rate", "fast"}, "want a size"},
	} {
		args := append([]string{"serve", "--data-dir", dir}, c.args...)
		code, _, stderr := run(t, nil, "", args...)
		if code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("cairn %q: exit %d, stderr %q; want exit %d and %q", args, code, stderr, exitUsage, c.want)
		}
	}
}
