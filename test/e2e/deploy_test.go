package e2e

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tailscale/hujson"
)

// settings are serve's settings as the binary's 'cairn config example'
// prints them: each key with its default, and the environment variables
// serve reads.
type settings struct {
	defaults map[string]json.RawMessage
	env      []string
}

func serveSettings(t *testing.T) settings {
	t.Helper()
	out, err := exec.Command(cairnBin, "config", "example").Output()
	if err != nil {
		t.Fatalf("cairn config example: %v", err)
	}
	std, err := hujson.Standardize(slices.Clone(out)) // it blanks comments in place
	if err != nil {
		t.Fatalf("cairn config example is not HuJSON: %v", err)
	}
	var s settings
	if err := json.Unmarshal(std, &s.defaults); err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`environment (CAIRN_[A-Z0-9_]+)`).FindAllSubmatch(out, -1) {
		s.env = append(s.env, string(m[1]))
	}
	if len(s.env) < 20 {
		t.Fatalf("cairn config example names %d environment variables, want every setting's", len(s.env))
	}
	return s
}

// duration is a setting's default duration.
func (s settings) duration(t *testing.T, key string) time.Duration {
	t.Helper()
	var v string
	if err := json.Unmarshal(s.defaults[key], &v); err != nil {
		t.Fatalf("setting %s: %v", key, err)
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// unit reads a systemd unit file: each key's values, in order, by section.key.
func unit(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: line %q is not KEY=VALUE", path, line)
			}
			out[section+"."+k] = append(out[section+"."+k], v)
		}
	}
	return out
}

// TestSystemdUnit: deploy/cairn.service runs as its own user in a state
// directory, is hardened, restarts on failure, and gives the node's SIGTERM
// drain time to finish before systemd kills it; every CAIRN_* variable it
// sets is one serve reads.
func TestSystemdUnit(t *testing.T) {
	s := serveSettings(t)
	u := unit(t, "../../deploy/cairn.service")
	for _, want := range []string{
		"Service.DynamicUser=yes", "Service.StateDirectory=cairn", "Service.ProtectSystem=strict",
		"Service.NoNewPrivileges=yes", "Service.Restart=on-failure", "Service.KillSignal=SIGTERM",
		"Service.ProtectHome=yes", "Service.PrivateTmp=yes", "Service.CapabilityBoundingSet=",
	} {
		k, v, _ := strings.Cut(want, "=")
		if !slices.Contains(u[k], v) {
			t.Errorf("cairn.service: %s is %q, want %q", k, u[k], v)
		}
	}
	start := strings.Join(u["Service.ExecStart"], " ")
	if !strings.Contains(start, "serve --data-dir ${STATE_DIRECTORY}") {
		t.Errorf("ExecStart %q does not keep the data in the state directory", start)
	}
	for _, m := range regexp.MustCompile(`--([a-z-]+)`).FindAllStringSubmatch(start, -1) {
		if _, ok := s.defaults[m[1]]; !ok && m[1] != "config" {
			t.Errorf("ExecStart names --%s, which serve does not have", m[1])
		}
	}
	drain := s.duration(t, "drain-timeout")
	for _, e := range u["Service.Environment"] {
		name, val, _ := strings.Cut(e, "=")
		if !slices.Contains(s.env, name) {
			t.Errorf("cairn.service sets %s, which serve does not read", name)
		}
		if name == "CAIRN_DRAIN_TIMEOUT" {
			d, err := time.ParseDuration(val)
			if err != nil {
				t.Fatalf("CAIRN_DRAIN_TIMEOUT=%s: %v", val, err)
			}
			drain = d
		}
	}
	stop, err := time.ParseDuration(strings.Join(u["Service.TimeoutStopSec"], ""))
	if err != nil {
		t.Fatalf("TimeoutStopSec: %v", err)
	}
	if stop < drain+5*time.Second {
		t.Errorf("TimeoutStopSec=%v leaves the node's %v drain less than 5s to close the store", stop, drain)
	}
}

// TestSystemdUnitVerifies runs systemd-analyze verify on the unit, with
// ExecStart pointing at the binary under test. verify reports a mistyped
// key or a bad value as a warning and still exits 0, so any output fails.
func TestSystemdUnitVerifies(t *testing.T) {
	bin := os.Getenv("CAIRN_SYSTEMD_ANALYZE_BIN")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("systemd-analyze"); err != nil {
			t.Skip("systemd-analyze not installed (scripts/deploy-tools.sh installs it)")
		}
	}
	b, err := os.ReadFile("../../deploy/cairn.service")
	if err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(cairnBin)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cairn.service")
	text := strings.ReplaceAll(string(b), "/usr/local/bin/cairn", abs)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "verify", "--man=no", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// instruction is one line of a Containerfile, continuations joined.
type instruction struct{ cmd, args string }

// containerfile reads the recipe's instructions by stage (FROM starts one).
func containerfile(t *testing.T, path string) [][]instruction {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var stages [][]instruction
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := instruction{strings.ToUpper(cmd), strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			t.Fatalf("%s: %q before FROM", path, line)
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	return stages
}

// TestContainerfile: the image runs as a user other than root, keeps the
// data directory in a volume, exposes exactly the ports the two listeners
// are set to (each its own), sets only variables serve reads, drains within
// the container engines' default stop timeout, and builds with the Go
// release go.mod names.
func TestContainerfile(t *testing.T) {
	s := serveSettings(t)
	stages := containerfile(t, "../../deploy/Containerfile")
	if len(stages) < 2 {
		t.Fatalf("want a build stage and a runtime stage, got %d stages", len(stages))
	}
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goVer := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if from := stages[0][0].args; !strings.Contains(from, "golang:"+string(goVer[1])) {
		t.Errorf("build stage %q does not use Go %s (go.mod)", from, goVer[1])
	}
	final := stages[len(stages)-1]
	env := map[string]string{}
	var user, volumes, expose []string
	for _, in := range final {
		switch in.cmd {
		case "USER":
			user = append(user, in.args)
		case "VOLUME":
			var v []string
			if err := json.Unmarshal([]byte(in.args), &v); err != nil {
				v = strings.Fields(in.args)
			}
			volumes = append(volumes, v...)
		case "EXPOSE":
			expose = append(expose, strings.Fields(in.args)...)
		case "ENV":
			for _, kv := range strings.Fields(in.args) {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					t.Fatalf("ENV %q: want KEY=VALUE pairs", in.args)
				}
				env[k] = v
			}
		case "STOPSIGNAL":
			if in.args != "SIGTERM" {
				t.Errorf("STOPSIGNAL %s: the node drains on SIGTERM", in.args)
			}
		}
	}
	if len(user) == 0 {
		t.Fatal("the runtime stage has no USER: it would run as root")
	}
	if u := user[len(user)-1]; u == "root" || u == "0" || strings.HasPrefix(u, "0:") || strings.HasPrefix(u, "root:") {
		t.Errorf("USER %s is root", u)
	}
	for k := range env {
		if strings.HasPrefix(k, "CAIRN_") && !slices.Contains(s.env, k) {
			t.Errorf("ENV %s: serve does not read it", k)
		}
	}
	if dir := env["CAIRN_DATA_DIR"]; dir == "" || !slices.Contains(volumes, dir) {
		t.Errorf("CAIRN_DATA_DIR=%q is not a VOLUME (%q)", dir, volumes)
	}
	var ports []string
	for _, k := range []string{"CAIRN_LISTEN", "CAIRN_ADMIN_LISTEN"} {
		_, port, ok := strings.Cut(env[k], ":")
		if !ok {
			t.Fatalf("ENV %s=%q: want HOST:PORT", k, env[k])
		}
		ports = append(ports, port)
	}
	if ports[0] == ports[1] {
		t.Errorf("the API and admin listeners share port %s", ports[0])
	}
	slices.Sort(ports)
	slices.Sort(expose)
	if !slices.Equal(ports, expose) {
		t.Errorf("EXPOSE %q, but the listeners are on %q", expose, ports)
	}
	drain := s.duration(t, "drain-timeout")
	if v, ok := env["CAIRN_DRAIN_TIMEOUT"]; ok {
		if drain, err = time.ParseDuration(v); err != nil {
			t.Fatal(err)
		}
	}
	if drain > 9*time.Second {
		t.Errorf("a %v drain outlasts docker and podman stop's 10s before SIGKILL", drain)
	}
}
