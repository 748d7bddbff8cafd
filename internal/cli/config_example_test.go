package cli

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigExampleLoadsAsDefaults: the printed example, loaded back as
// serve's config file, names every setting and leaves each at its default.
func TestConfigExampleLoadsAsDefaults(t *testing.T) {
	code, example, stderr := run(t, nil, "", "config", "example")
	if code != exitOK {
		t.Fatalf("cairn config example: exit %d, %s", code, stderr)
	}
	path := filepath.Join(t.TempDir(), "cairn.jsonc")
	if err := os.WriteFile(path, []byte(example), 0o600); err != nil {
		t.Fatal(err)
	}
	file, err := readConfig(path)
	if err != nil {
		t.Fatalf("the example does not read back: %v", err)
	}
	fs, _ := newServeFlags()
	if err := fs.Parse([]string{"--config", path}); err != nil {
		t.Fatal(err)
	}
	from, err := settleOrigins(fs, func(string) string { return "" }, "config")
	if err != nil {
		t.Fatalf("loading the example: %v", err)
	}
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "config" {
			return
		}
		if !strings.Contains(example, `"`+f.Name+`": `) {
			t.Errorf("the example lacks the setting %q", f.Name)
		}
		_, active := file[f.Name]
		if _, derived := derivedDefaults[f.Name]; active == derived {
			t.Errorf("setting %q: in the file %v, but a derived default is %v", f.Name, active, derived)
		}
		if got := f.Value.String(); got != f.DefValue {
			t.Errorf("setting %q from the example = %q, want its default %q", f.Name, got, f.DefValue)
		}
		if _, ok := file[f.Name]; ok && from[f.Name] == "" {
			t.Errorf("setting %q: in the file but not read from it", f.Name)
		}
	})
}

func TestConfigExampleNamesEnvironment(t *testing.T) {
	_, example, _ := run(t, nil, "", "config", "example")
	for _, want := range []string{"environment CAIRN_DATA_DIR", "environment CAIRN_TENANTS", `"drain-timeout": "15s"`, `"max-body-bytes": "1MiB"`, `"trace-sample-ratio": 1,`, `"tenant": [],`} {
		if !strings.Contains(example, want) {
			t.Errorf("the example lacks %q", want)
		}
	}
}

func TestConfigUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"config"}, {"config", "show"}} {
		if code, _, stderr := run(t, nil, "", args...); code != exitUsage || !strings.Contains(stderr, "want example") {
			t.Errorf("cairn %s: exit %d, %q; want 2 naming example", strings.Join(args, " "), code, stderr)
		}
	}
}

// TestConfigComments: a config file may carry comments, trailing commas and
// a UTF-8 byte-order mark, and a JSON error still names the byte offset in the file as written.
func TestConfigComments(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.jsonc")
	os.WriteFile(good, []byte("// a node\n{\n\t/* where */ \"data-dir\": \"/srv/c\", // trailing\n}\n"), 0o600)
	m, err := readConfig(good)
	if err != nil || string(m["data-dir"]) != `"/srv/c"` {
		t.Fatalf("readConfig = %v, %v", m, err)
	}
	bom := filepath.Join(dir, "bom.json")
	os.WriteFile(bom, []byte("\ufeff{\"data-dir\": \"/srv/c\"}\n"), 0o600)
	if m, err := readConfig(bom); err != nil || string(m["data-dir"]) != `"/srv/c"` {
		t.Fatalf("readConfig(file with a byte-order mark) = %v, %v", m, err)
	}
	bad := filepath.Join(dir, "bad.jsonc")
	os.WriteFile(bad, []byte("// x\n{\"a\": }"), 0o600)
	if _, err := readConfig(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("readConfig(bad) = %v, want an error naming the file", err)
	}
}

// FuzzReadConfig: any bytes as a config file give settings or an error
// naming the file, never a panic.
func FuzzReadConfig(f *testing.F) {
	f.Add([]byte(`{"data-dir": "/srv", "tenant": ["a:b"], "trace-sample-ratio": 0.5}`))
	f.Add([]byte("// c\n{/* x */ \"listen\": \":1\",}"))
	f.Add([]byte(`{"a": /* unterminated`))
	path := filepath.Join(f.TempDir(), "c.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		m, err := readConfig(path)
		if err != nil {
			if !strings.Contains(err.Error(), "config") {
				t.Fatalf("error %q does not say it is the config file's", err)
			}
			return
		}
		for _, raw := range m {
			configValues(raw) // must not panic on any value the file holds
		}
	})
}
