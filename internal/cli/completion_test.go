package cli

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestCommandTableMatchesRun: every command of the usage text is in the
// completion table and every command of the table is one Run serves.
func TestCommandTableMatchesRun(t *testing.T) {
	var table []string
	for _, c := range commands {
		table = append(table, c.name)
		if code, _, stderr := run(t, nil, "", c.name, "--help"); strings.Contains(stderr, "unknown command") {
			t.Errorf("cairn %s --help: exit %d, %q: the table names a command Run does not serve", c.name, code, stderr)
		}
	}
	for _, m := range regexp.MustCompile(`(?m)^  cairn ([a-z-]+)`).FindAllStringSubmatch(usage, -1) {
		if !slices.Contains(table, m[1]) {
			t.Errorf("usage lists cairn %s, the completion table does not", m[1])
		}
	}
}

// completionScript is what 'cairn completion SHELL' prints.
func completionScript(t *testing.T, shell string) string {
	t.Helper()
	code, out, stderr := run(t, nil, "", "completion", shell)
	if code != exitOK {
		t.Fatalf("cairn completion %s: exit %d, %s", shell, code, stderr)
	}
	return out
}

// TestCompletionNamesEverything: each script names every command, every
// subcommand and every flag of every command.
func TestCompletionNamesEverything(t *testing.T) {
	for _, shell := range shells {
		script := completionScript(t, shell)
		for _, c := range commands {
			if !strings.Contains(script, c.name) {
				t.Errorf("%s script lacks the command %s", shell, c.name)
			}
			for _, s := range c.subs {
				if !regexp.MustCompile(`\b` + regexp.QuoteMeta(s) + `\b`).MatchString(script) {
					t.Errorf("%s script lacks the subcommand %s %s", shell, c.name, s)
				}
			}
			if c.flags == nil {
				continue
			}
			fs := c.flags()
			n := 0
			for _, f := range flagsOf(c) {
				n++
				want := "--" + f.name
				if shell == "fish" {
					want = "'__cairn_cmd " + c.name + "' -l " + f.name + " "
				}
				if !strings.Contains(script, want) {
					t.Errorf("%s script lacks %s's flag %s", shell, c.name, want)
				}
			}
			var all int
			fs.VisitAll(func(*flag.Flag) { all++ })
			if n != all || n == 0 {
				t.Errorf("%s: %d flags completed, the command has %d", c.name, n, all)
			}
		}
	}
}

func TestCompletionUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"completion"}, {"completion", "tcsh"}, {"completion", "bash", "zsh"}} {
		code, _, stderr := run(t, nil, "", args...)
		if code != exitUsage || !strings.Contains(stderr, "want one of bash, zsh or fish") {
			t.Errorf("cairn %s: exit %d, %q; want 2 naming the shells", strings.Join(args, " "), code, stderr)
		}
	}
}

// shellBin is the shell's path: $CAIRN_<SHELL>_BIN (scripts/test.sh sets it
// from scripts/deploy-tools.sh, and then the shell must be there), else
// PATH, else the test is skipped.
func shellBin(t *testing.T, shell string) string {
	t.Helper()
	env := "CAIRN_" + strings.ToUpper(shell) + "_BIN"
	if p := os.Getenv(env); p != "" {
		return p
	}
	p, err := exec.LookPath(shell)
	if err != nil {
		t.Skipf("%s not installed (scripts/deploy-tools.sh installs it; %s names it)", shell, env)
	}
	return p
}

// TestCompletionScriptsParse runs each shell's syntax check on its script.
func TestCompletionScriptsParse(t *testing.T) {
	for _, shell := range shells {
		t.Run(shell, func(t *testing.T) {
			bin := shellBin(t, shell)
			file := filepath.Join(t.TempDir(), "cairn."+shell)
			if err := os.WriteFile(file, []byte(completionScript(t, shell)), 0o600); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(bin, "-n", file).CombinedOutput(); err != nil {
				t.Fatalf("%s -n: %v\n%s", shell, err, out)
			}
		})
	}
}

// TestBashCompletes runs the bash script's function as bash's completion
// would, on a few command lines.
func TestBashCompletes(t *testing.T) {
	bin := shellBin(t, "bash")
	file := filepath.Join(t.TempDir(), "cairn.bash")
	if err := os.WriteFile(file, []byte(completionScript(t, "bash")), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		words string // the command line, the word being completed last
		want  []string
	}{
		{"cairn co", []string{"completion", "config", "conflicts"}},
		{"cairn serve --data", []string{"--data-dir"}},
		{"cairn conflicts ''", []string{"history", "ls", "resolve", "show"}},
		{"cairn reconcile run --con", []string{"--confirm"}},
		{"cairn completion ''", []string{"bash", "fish", "zsh"}},
		{"cairn serve --listen ''", nil}, // a value: nothing to offer
	} {
		script := `source "$1"; COMP_WORDS=(` + tt.words + `); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _cairn; printf '%s\n' "${COMPREPLY[@]}"`
		out, err := exec.Command(bin, "-c", script, "bash", file).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", tt.words, err, out)
		}
		got := strings.Fields(string(out))
		slices.Sort(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: completes %q, want %q", tt.words, got, tt.want)
		}
	}
}

// TestFishCompletes asks fish what it completes with the script loaded.
func TestFishCompletes(t *testing.T) {
	bin := shellBin(t, "fish")
	file := filepath.Join(t.TempDir(), "cairn.fish")
	if err := os.WriteFile(file, []byte(completionScript(t, "fish")), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		line string
		want []string
	}{
		{"cairn rec", []string{"reconcile"}},
		{"cairn serve --data-", []string{"--data-dir"}},
		{"cairn conflicts ", []string{"history", "ls", "resolve", "show"}},
		{"cairn ls --lo", []string{"--long"}},
	} {
		cmd := exec.CommandContext(context.Background(), bin, "--no-config", "-c", `source $argv[1]; complete -C $argv[2]`, file, tt.line)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", tt.line, err, out)
		}
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if l != "" {
				got = append(got, strings.SplitN(l, "\t", 2)[0])
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%q: completes %q, want %q", tt.line, got, tt.want)
		}
	}
}
