package cli

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cairnstore/cairn/internal/node"
	"github.com/cairnstore/cairn/internal/resp"
	"github.com/cairnstore/cairn/internal/store"
	"github.com/cairnstore/cairn/internal/telemetry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// run runs the CLI in-process with the given environment.
func run(t *testing.T, env map[string]string, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(context.Background(), args, Env{
		Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb,
		Getenv: func(k string) string { return env[k] },
	})
	return code, out.String(), errb.String()
}

func TestSettlePrecedence(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "cairn.json")
	os.WriteFile(cfg, []byte(`{"listen": "127.0.0.1:1", "data-dir": "/from/file", "node-id": "file", "tenant": ["a:x", "b:y"]}`), 0o600)
	fs, f := newServeFlags()
	if err := fs.Parse([]string{"--config", cfg, "--listen", "127.0.0.1:3"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CAIRN_LISTEN": "127.0.0.1:2", "CAIRN_DATA_DIR": "/from/env"}
	if err := settle(fs, func(k string) string { return env[k] }, "config"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, got, want string }{
		{"listen (command line beats env and file)", f.listen, "127.0.0.1:3"},
		{"data-dir (env beats file)", f.dataDir, "/from/env"},
		{"node-id (file beats default)", f.nodeID, "file"},
		{"admin-listen (default)", f.adminListen, "127.0.0.1:7071"},
		{"tenant (a list in the file)", f.tenants.String(), "a:x,b:y"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
}

func TestSettleErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o600)
		return p
	}
	tests := []struct {
		name, file string
		env        map[string]string
		want       string
	}{
		{"unknown key", write("u.json", `{"listen":"x","lisen":"y"}`), nil, `unknown setting "lisen"`},
		{"bad JSON", write("b.json", `{"listen": }`), nil, "invalid JSON at line 1, column 12"},
		{"wrong type", write("t.json", `{"listen": {"a":1}}`), nil, `setting "listen"`},
		{"null", write("n.json", `{"max-in-flight": null}`), nil, `null: give a value`},
		{"bad env value", "", map[string]string{"CAIRN_DRAIN_TIMEOUT": "soon"}, `CAIRN_DRAIN_TIMEOUT="soon": want a duration such as 30s`},
		{"bad file value", write("d.json", `{"drain-timeout": "soon"}`), nil, `config ` + filepath.Join(dir, "d.json") + `: drain-timeout "soon": want a duration such as 30s`},
		{"missing file", filepath.Join(dir, "nope.json"), nil, "no such file"},
		{"key twice", write("2.json", "{\"listen\": \"a:1\",\n // far below\n \"listen\": \"b:2\"}"), nil, `"listen" is given twice`},
		{"null file", write("null.json", `null`), nil, "want a JSON object of settings"},
		{"array file", write("a.json", `[]`), nil, "want a JSON object of settings"},
	}
	for _, tt := range tests {
		fs, _ := newServeFlags()
		args := []string{}
		if tt.file != "" {
			args = append(args, "--config", tt.file)
		}
		fs.Parse(args)
		err := settle(fs, func(k string) string { return tt.env[k] }, "config")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want it to contain %q", tt.name, err, tt.want)
		}
	}
}

func TestParseInterspersed(t *testing.T) {
	tests := []struct {
		args []string
		pos  string
		data string
	}{
		{[]string{"k", "--data", "{}"}, "k", "{}"},
		{[]string{"--data", "{}", "k", "-"}, "k -", "{}"},
		{[]string{"k", "--", "--data"}, "k --data", ""},
		{[]string{"a", "b", "--data=x", "c"}, "a b c", "x"},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		data := fs.String("data", "", "")
		pos, err := parseInterspersed(fs, tt.args)
		if err != nil || strings.Join(pos, " ") != tt.pos || *data != tt.data {
			t.Errorf("parseInterspersed(%q) = %q, data %q, %v; want %q, %q", tt.args, pos, *data, err, tt.pos, tt.data)
		}
	}
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1048576", 1 << 20, true}, {"512KiB", 512 << 10, true}, {"256MiB", 256 << 20, true},
		{"2GiB", 2 << 30, true}, {"10MB", 10e6, true}, {" 3 KiB ", 3 << 10, true},
		{"", 0, false}, {"-1", 0, false}, {"1.5MiB", 0, false}, {"12XB", 0, false}, {"99999999999GiB", 0, false},
	}
	for _, tt := range tests {
		var b byteSize
		err := b.Set(tt.in)
		if (err == nil) != tt.ok || (tt.ok && int64(b) != tt.want) {
			t.Errorf("Set(%q) = %d, %v; want %d ok=%v", tt.in, b, err, tt.want, tt.ok)
		}
	}
}

func TestServeRefusesBadSettings(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--listen", "0.0.0.0:0"}, nil, "--listen 0.0.0.0:0: with no --tenant configured"},
		{[]string{"--admin-listen", ":0"}, nil, "--admin-listen :0: with no --tenant configured"},
		{[]string{"--listen", "nonsense"}, nil, `--listen "nonsense": want HOST:PORT`},
		{[]string{"--resp-listen", "6380"}, nil, `--resp-listen "6380": want HOST:PORT`},
		{[]string{"--resp-auth-timeout", "0s"}, nil, "--resp-auth-timeout 0s: want a positive duration"},
		{[]string{"--resp-idle-timeout", "-1s"}, nil, "--resp-idle-timeout -1s: want 0 (never) or a positive duration"},
		{[]string{"--listen", ""}, nil, `--listen "": want the API's host:port`},
		{[]string{"--data-dir", ""}, nil, `--data-dir "": want`},
		{[]string{"--drain-timeout", "-5s"}, nil, "--drain-timeout -5s: want 0"},
		{[]string{"--tenant-rate", "NaN"}, nil, "--tenant-rate NaN"},
		{[]string{"--tenant-rate", "Inf"}, nil, "--tenant-rate +Inf"},
		{[]string{"--listen", "", "--tenant", "acme:" + strings.Repeat("ab", 32)}, nil, `--listen "": want the API's host:port`},
		{[]string{"--durability", "eventually"}, nil, `--durability "eventually"`},
		{[]string{"--tenant", "Bad:00"}, nil, `--tenant "Bad:…"`},
		{[]string{"--tenant", "acme:xyz"}, nil, "64 hex digits"},
		{[]string{"--tenant", "acme"}, nil, "want NAME:TOKEN_SHA256"},
		{nil, map[string]string{"CAIRN_LOG_LEVEL": "loud"}, `CAIRN_LOG_LEVEL="loud": want debug`},
		{[]string{"--trace-sample-ratio", "2"}, nil, "--trace-sample-ratio 2"},
		{[]string{"--max-body-bytes", "1GiB"}, nil, "--max-body-bytes"},
		{[]string{"extra"}, nil, `unexpected argument "extra"`},
		{[]string{"--node-id", "has space"}, nil, `--node-id "has space": a node id has no spaces`},
		{[]string{"--trace-exporter", "zipkin"}, nil, `trace exporter "zipkin": want none, console, json or otlp (--trace-exporter "zipkin")`},
		{[]string{"--trace-exporter", " JSON "}, nil, `trace exporter json needs a trace file (--trace-file)`},
		{[]string{"--listen", "127.0.0.1:99999"}, nil, `--listen "127.0.0.1:99999": want HOST:PORT`},
		{[]string{"--trace-exporter", "json"}, nil, `trace exporter json needs a trace file (--trace-file) (--trace-exporter "json")`},
		{[]string{"--trace-file", "/tmp/t.json"}, nil, `only the json exporter writes one`},
		{[]string{"--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"}, nil, `--tls-cert "/nonexistent/cert.pem": stat`},
		{[]string{"--backend", "b=fs:" + filepath.Dir(dir)}, nil, "one directory holds the other, with --data-dir"},
		{[]string{"--backend", "b=fs:" + dir}, nil, "one directory holds the other, with --data-dir"},
		{[]string{"--backend", "b=fs:" + filepath.Join(dir, "backend")}, nil, "one directory holds the other, with --data-dir"},
		{[]string{"--listen", "127.0.0.1:27999", "--admin-listen", "127.0.0.1:27999"}, nil, `--admin-listen "127.0.0.1:27999": the address of --listen too`},
		{[]string{"--listen", "127.0.0.1:27999", "--resp-listen", "127.0.0.1:27999"}, nil, `--resp-listen "127.0.0.1:27999": the address of --listen too`},
		{[]string{"--admin-listen", "0.0.0.0:0", "--tenant", "acme:" + strings.Repeat("ab", 32)}, nil, "--admin-listen 0.0.0.0:0 is beyond loopback: configure --admin-token-sha256"},
		// One token must not act for the admin and a tenant, or for two tenants.
		{[]string{"--tenant", "acme:" + strings.Repeat("ab", 32), "--admin-token-sha256", strings.Repeat("ab", 32)}, nil,
			`--tenant: the token hash of tenant "acme" is also given to the admin (--admin-token-sha256)`},
		{[]string{"--tenant", "acme:" + strings.Repeat("ab", 32), "--tenant", "beta:" + strings.Repeat("cd", 32), "--tenant", "beta:" + strings.Repeat("ab", 32)}, nil,
			`the token hash of tenant "beta" is also given to tenant "acme"`},
		{nil, map[string]string{"CAIRN_TENANTS": "acme:" + strings.Repeat("ab", 32), "CAIRN_ADMIN_TOKEN_SHA256": strings.Repeat("ab", 32)},
			`CAIRN_TENANTS: the token hash of tenant "acme" is also given to the admin (CAIRN_ADMIN_TOKEN_SHA256)`},
	}
	for _, tt := range tests {
		args := append([]string{"serve", "--data-dir", dir}, tt.args...)
		code, _, stderr := run(t, tt.env, "", args...)
		if code != exitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("cairn %q: exit %d, stderr %q; want exit %d and %q", args, code, stderr, exitUsage, tt.want)
		}
	}
}

func TestVersionAndHelp(t *testing.T) {
	if code, out, _ := run(t, nil, "", "version"); code != 0 || !strings.HasPrefix(out, "cairn ") {
		t.Errorf("version: %d %q", code, out)
	}
	if code, out, _ := run(t, nil, "", "help"); code != 0 || !strings.Contains(out, "cairn serve") {
		t.Errorf("help: %d %q", code, out)
	}
	if code, _, stderr := run(t, nil, "", "frobnicate"); code != exitUsage || !strings.Contains(stderr, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: %d %q", code, stderr)
	}
	if code, stdout, _ := run(t, nil, "", "version", "--help"); code != exitOK || !strings.Contains(stdout, "Usage: cairn version") {
		t.Errorf("version --help: exit %d, %q; want its usage and 0, as every command's --help", code, stdout)
	}
	if code, _, stderr := run(t, nil, "", "version", "extra"); code != exitUsage || !strings.Contains(stderr, "takes no arguments") {
		t.Errorf("version extra: %d %q", code, stderr)
	}
	if code, _, stderr := run(t, map[string]string{"CAIRN_URL": "http://127.0.0.1:1", "CAIRN_TOKEN": "x"}, "", "get", "k1", "--tenant", ""); code != exitUsage || !strings.Contains(stderr, "no tenant") {
		t.Errorf("get --tenant '': %d %q", code, stderr)
	}
	if code, out, _ := run(t, nil, "", "serve", "--help"); code != exitOK || !strings.Contains(out, "CAIRN_DATA_DIR") {
		t.Errorf("serve --help: %d %q", code, out)
	}
}

// TestVersionLine: the version names the commit and its time when the
// build recorded them.
func TestVersionLine(t *testing.T) {
	b := telemetry.BuildFrom(&debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"},
	}})
	want := "v1.2.3 revision 0123abcd (modified) from 2026-12-01T10:00:00Z " + runtime.Version()
	if got := versionLine(b); got != want {
		t.Errorf("versionLine = %q, want %q", got, want)
	}
	if got, want := versionLine(telemetry.BuildFrom(&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}})), "dev "+runtime.Version(); got != want {
		t.Errorf("versionLine of a build without version or VCS = %q, want %q", got, want)
	}
}

// TestServeTenantsFromEnvironment: serve's list of tenants comes from
// CAIRN_TENANTS; CAIRN_TENANT, the client commands' tenant, is read only in
// the NAME:TOKEN_SHA256 form it had for serve before.
func TestServeTenantsFromEnvironment(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"CAIRN_TENANTS": "a:x,b:y", "CAIRN_TENANT": "demo"}, "a:x,b:y"},
		{map[string]string{"CAIRN_TENANT": "demo"}, ""},
		{map[string]string{"CAIRN_TENANT": "a:x"}, "a:x"},
		{map[string]string{"CAIRN_TENANTS": "a:x", "CAIRN_TENANT": "b:y"}, "a:x"},
	} {
		fs, f := newServeFlags()
		if err := settle(fs, func(k string) string { return c.env[k] }, "config"); err != nil {
			t.Fatal(err)
		}
		if got := f.tenants.String(); got != c.want {
			t.Errorf("%v: tenants %q, want %q", c.env, got, c.want)
		}
	}
}

// serveConfig is the node.Config of 'cairn serve' with args and no
// environment, on a data directory of the test's: nodeConfig writes the
// demo tenant's token into it, never into the source tree.
func serveConfig(t *testing.T, args ...string) node.Config {
	t.Helper()
	fs, f := newServeFlags()
	if err := fs.Parse(append([]string{"--data-dir", t.TempDir()}, args...)); err != nil {
		t.Fatal(err)
	}
	cfg, err := f.nodeConfig(Env{Stderr: io.Discard, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	return cfg
}

// --key-filter-bytes reaches the node: a size, the default, or 0 for off
// (the store's negative).
func TestKeyFilterSetting(t *testing.T) {
	for _, c := range []struct {
		args []string
		want int64
	}{
		{nil, store.DefaultKeyFilterBytes},
		{[]string{"--key-filter-bytes", "4MiB"}, 4 << 20},
		{[]string{"--key-filter-bytes", "0"}, -1},
	} {
		if cfg := serveConfig(t, c.args...); cfg.KeyFilterBytes != c.want {
			t.Errorf("%q: KeyFilterBytes %d, want %d", c.args, cfg.KeyFilterBytes, c.want)
		}
	}
}

// TestRespIdleSetting: --resp-idle-timeout 0 is "never" (negative in
// node.Config, whose zero is the default).
func TestRespIdleSetting(t *testing.T) {
	for _, c := range []struct {
		args []string
		want time.Duration
	}{
		{nil, resp.DefaultIdle},
		{[]string{"--resp-idle-timeout", "1h"}, time.Hour},
		{[]string{"--resp-idle-timeout", "0"}, -1},
	} {
		if cfg := serveConfig(t, c.args...); cfg.RespIdleTimeout != c.want {
			t.Errorf("%q: RespIdleTimeout %v, want %v", c.args, cfg.RespIdleTimeout, c.want)
		}
	}
}

// TestTenantBurst: a tenant's burst is twice --tenant-rate, and at least
// one: a rate under 0.5 made a burst of 0, which the limiter took for its
// default of 400.
func TestTenantBurst(t *testing.T) {
	for _, c := range []struct {
		rate string
		want int
	}{{"100", 200}, {"0.3", 1}} {
		if cfg := serveConfig(t, "--tenant-rate", c.rate); cfg.Limits.TenantBurst != c.want {
			t.Errorf("--tenant-rate %s: burst %d, want %d", c.rate, cfg.Limits.TenantBurst, c.want)
		}
	}
}

// The node's memory limit is --memory-limit, else GOMEMLIMIT; with one,
// the document cache takes its share unless --cache-bytes is given, and
// a bad GOMEMLIMIT or a cache too large for the limit is named.
func TestMemoryLimitSetting(t *testing.T) {
	for _, c := range []struct {
		args         []string
		gomemlimit   string
		limit, cache int64
		wantErr      string
	}{
		{nil, "", 0, 256 << 20, ""},
		{nil, "128MiB", 128 << 20, 0, ""},
		{[]string{"--memory-limit", "1GiB"}, "128MiB", 1 << 30, 0, ""},
		{[]string{"--cache-bytes", "16MiB"}, "128MiB", 128 << 20, 16 << 20, ""},
		{nil, "off", 0, 256 << 20, ""},
		{nil, "lots", 0, 0, `GOMEMLIMIT "lots"`},
		{[]string{"--cache-bytes", "256MiB"}, "128MiB", 0, 0, "--cache-bytes 256MiB: want at most"},
		{[]string{"--cache-bytes", "0"}, "", 0, 0, "--cache-bytes 0: want at least 1MiB (the cache cannot be turned off)"},
		{[]string{"--cache-bytes", "4KiB"}, "", 0, 0, "want at least 1MiB"},
		{[]string{"--cache-bytes", "1MiB"}, "", 0, 1 << 20, ""},
	} {
		fs, f := newServeFlags()
		if err := fs.Parse(append([]string{"--data-dir", t.TempDir()}, c.args...)); err != nil {
			t.Fatal(err)
		}
		f.markSet(fs)
		env := map[string]string{"GOMEMLIMIT": c.gomemlimit}
		cfg, err := f.nodeConfig(Env{Stderr: io.Discard, Getenv: func(k string) string { return env[k] }})
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%q GOMEMLIMIT=%q: got %v, want an error with %q", c.args, c.gomemlimit, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q GOMEMLIMIT=%q: %v", c.args, c.gomemlimit, err)
		}
		if cfg.MemoryLimit != c.limit || cfg.CacheBytes != c.cache {
			t.Errorf("%q GOMEMLIMIT=%q: MemoryLimit %d, CacheBytes %d; want %d, %d", c.args, c.gomemlimit, cfg.MemoryLimit, cfg.CacheBytes, c.limit, c.cache)
		}
	}
}

// TestMisspeltSettings: a CAIRN_ variable a letter or two from one of
// serve's settings is named with the setting it looks like; exact names,
// the client commands' variables and other tools' are left alone.
func TestMisspeltSettings(t *testing.T) {
	fs, _ := newServeFlags()
	got := misspeltSettings(fs, []string{"CAIRN_LISTN=127.0.0.1:7070", "CAIRN_LISTEN=127.0.0.1:7070", "CAIRN_DATADIR=/d",
		"CAIRN_URL=http://x", "CAIRN_TOKEN=t", "CAIRN_TENANT=demo", "CAIRN_LAB_BIN=/x", "CAIRN_VERSITYGW_BIN=/y", "PATH=/bin", "CAIRN_TENANTS=a:b"})
	want := []string{
		"CAIRN_DATADIR is not a setting of cairn serve and is ignored: did you mean CAIRN_DATA_DIR?",
		"CAIRN_LISTN is not a setting of cairn serve and is ignored: did you mean CAIRN_LISTEN?",
	}
	if !slices.Equal(got, want) {
		t.Errorf("misspeltSettings = %q, want %q", got, want)
	}
}

// TestServeNeverRepeatsATokenGivenForItsHash: a raw token where its SHA-256
// belongs (--tenant NAME:TOKEN, a token alone, CAIRN_TENANTS, the config
// file, --admin-token-sha256) is refused without the token in the message,
// which stderr and a service's journal keep.
func TestServeNeverRepeatsATokenGivenForItsHash(t *testing.T) {
	const tok = "acmeTOKENsecret_aaaaaaaaaaaaaaaaaaaa1"
	dir := t.TempDir()
	cfg := filepath.Join(dir, "cairn.json")
	if err := os.WriteFile(cfg, []byte(`{"tenant":["acme:`+tok+`"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		env  map[string]string
	}{
		{[]string{"--tenant", "acme:" + tok}, nil},
		{[]string{"--tenant", tok}, nil},
		{[]string{"--tenant", "Bad:" + tok}, nil},
		{nil, map[string]string{"CAIRN_TENANTS": "acme:" + tok}},
		{[]string{"--config", cfg}, nil},
		{[]string{"--tenant", "acme:" + strings.Repeat("ab", 32), "--admin-token-sha256", tok}, nil},
		{[]string{"--tenant", "acme", tok}, nil}, // a space for the colon
	} {
		args := append([]string{"serve", "--data-dir", filepath.Join(dir, "data")}, c.args...)
		code, _, stderr := run(t, c.env, "", args...)
		if code != exitUsage || strings.Contains(stderr, "TOKENsecret") || stderr == "" {
			t.Errorf("cairn %q %v: exit %d, stderr %q; want exit %d without the token", args, c.env, code, stderr, exitUsage)
		}
	}
}
