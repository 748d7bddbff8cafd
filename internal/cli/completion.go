package cli

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// command is one of cairn's commands as completion sees it. Its flags come
// from the same constructor the command parses with, so a completion
// script cannot offer a flag the command lacks or miss one it has.
type command struct {
	name    string
	summary string
	subs    []string             // the command's own subcommands, completed first
	flags   func() *flag.FlagSet // nil: no flags of cairn's (bench and chaos are cairn-lab's)
	files   bool                 // its arguments are files
}

func docFlagSet(cmd string) func() *flag.FlagSet {
	return func() *flag.FlagSet { fs, _ := newDocFlags(cmd); return fs }
}

// commands is every command Run serves, aliases aside.
var commands = []command{
	{name: "serve", summary: "run a node", flags: func() *flag.FlagSet { fs, _ := newServeFlags(); return fs }},
	{name: "put", summary: "store a JSON document", flags: docFlagSet("put"), files: true},
	{name: "get", summary: "print a document", flags: docFlagSet("get")},
	{name: "del", summary: "delete a document", flags: docFlagSet("del")},
	{name: "ls", summary: "list keys", flags: docFlagSet("ls")},
	{name: "conflicts", summary: "open siblings: list, show, resolve, history", subs: []string{"ls", "show", "resolve", "history"},
		flags: func() *flag.FlagSet { fs, _ := newConflictsFlags(); return fs }},
	{name: "ingest", summary: "bulk-load NDJSON", flags: func() *flag.FlagSet { fs, _ := newIngestFlags(); return fs }, files: true},
	{name: "import", summary: "load NDJSON into a stopped node's data directory", flags: func() *flag.FlagSet { fs, _ := newImportFlags(); return fs }, files: true},
	{name: "export", summary: "write a tenant's documents from a stopped node's data directory as NDJSON", flags: func() *flag.FlagSet { fs, _ := newExportFlags(); return fs }, files: true},
	{name: "reconcile", summary: "replication: status, rounds, quarantine", subs: []string{"status", "run", "quarantine"},
		flags: func() *flag.FlagSet { fs, _ := newReconcileFlags(); return fs }},
	{name: "bench", summary: "measure a node's HTTP throughput (cairn-lab)"},
	{name: "bench-bare", summary: "measure a bare handler (cairn-lab)"},
	{name: "chaos", summary: "run the chaos scenarios (cairn-lab)", subs: []string{"run"}},
	{name: "completion", summary: "print a shell completion script", subs: shells},
	{name: "config", summary: "print an example configuration file", subs: []string{"example"}},
	{name: "version", summary: "print the version"},
	{name: "help", summary: "show help for a command"},
}

// shells are those 'cairn completion' writes a script for.
var shells = []string{"bash", "zsh", "fish"}

const completionUsage = `Usage: cairn completion bash|zsh|fish

Prints a completion script for the shell. Load it:
  bash   source <(cairn completion bash)    (or save it in /etc/bash_completion.d/cairn)
  zsh    cairn completion zsh > "${fpath[1]}/_cairn"   (then start a new shell)
  fish   cairn completion fish > ~/.config/fish/completions/cairn.fish
`

func completionCommand(args []string, env Env) int {
	if len(args) == 1 && isHelp(args[0]) {
		fmt.Fprint(env.Stdout, completionUsage)
		return exitOK
	}
	if len(args) != 1 || !slices.Contains(shells, args[0]) {
		fmt.Fprintf(env.Stderr, "cairn completion: want one of bash, zsh or fish\n\n%s", completionUsage)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "bash":
		err = writeBash(env.Stdout)
	case "zsh":
		err = writeZsh(env.Stdout)
	case "fish":
		err = writeFish(env.Stdout)
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "cairn completion: %v\n", err)
		return exitFail
	}
	return exitOK
}

// flagInfo is what a completion script needs of one flag.
type flagInfo struct {
	name, arg, help string
	takesValue      bool
	file            bool // its value is a file or directory
	repeatable      bool
}

func flagsOf(c command) []flagInfo {
	if c.flags == nil {
		return nil
	}
	var out []flagInfo
	c.flags().VisitAll(func(f *flag.Flag) {
		arg, help := flag.UnquoteUsage(f)
		_, isList := f.Value.(*listFlag)
		b, isBool := f.Value.(interface{ IsBoolFlag() bool })
		lower := strings.ToLower(arg)
		out = append(out, flagInfo{
			name: f.Name, arg: arg, help: shortHelp(help),
			takesValue: !(isBool && b.IsBoolFlag()),
			file:       lower == "file" || lower == "directory",
			repeatable: isList,
		})
	})
	return out
}

// shortHelp is a flag's usage up to its first clause, for a menu.
func shortHelp(s string) string {
	for _, sep := range []string{"; ", " ("} {
		if i := strings.Index(s, sep); i > 0 {
			s = s[:i]
		}
	}
	if len(s) > 72 {
		s = s[:72] + "…"
	}
	return s
}

func names(fl []flagInfo, keep func(flagInfo) bool) string {
	var out []string
	for _, f := range fl {
		if keep(f) {
			out = append(out, "--"+f.name)
		}
	}
	return strings.Join(out, " ")
}

// writeBash writes a bash completion function. After a flag that takes a
// value it completes files for file flags and nothing otherwise; at the
// first argument of a command with subcommands it offers them.
func writeBash(w io.Writer) error {
	var b strings.Builder
	b.WriteString("# bash completion for cairn: source <(cairn completion bash)\n")
	b.WriteString("_cairn() {\n")
	b.WriteString("\tlocal cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n")
	b.WriteString("\tCOMPREPLY=()\n")
	b.WriteString("\tif ((COMP_CWORD == 1)); then\n")
	fmt.Fprintf(&b, "\t\tCOMPREPLY=($(compgen -W %q -- \"$cur\"))\n\t\treturn\n\tfi\n", commandNames())
	b.WriteString("\tcase ${COMP_WORDS[1]} in\n")
	for _, c := range commands {
		fl := flagsOf(c)
		fmt.Fprintf(&b, "\t%s)\n", c.name)
		if files := names(fl, func(f flagInfo) bool { return f.file }); files != "" {
			fmt.Fprintf(&b, "\t\tcase $prev in %s) COMPREPLY=($(compgen -f -- \"$cur\")); return ;; esac\n", strings.ReplaceAll(files, " ", "|"))
		}
		if vals := names(fl, func(f flagInfo) bool { return f.takesValue && !f.file }); vals != "" {
			fmt.Fprintf(&b, "\t\tcase $prev in %s) return ;; esac\n", strings.ReplaceAll(vals, " ", "|"))
		}
		all := names(fl, func(flagInfo) bool { return true })
		fmt.Fprintf(&b, "\t\tif [[ $cur == -* ]]; then COMPREPLY=($(compgen -W %q -- \"$cur\")); return; fi\n", all)
		if c.name == "help" {
			fmt.Fprintf(&b, "\t\t((COMP_CWORD == 2)) && COMPREPLY=($(compgen -W %q -- \"$cur\"))\n", commandNames())
		}
		if len(c.subs) > 0 {
			fmt.Fprintf(&b, "\t\tif ((COMP_CWORD == 2)); then COMPREPLY=($(compgen -W %q -- \"$cur\")); return; fi\n", strings.Join(c.subs, " "))
		}
		if c.files {
			b.WriteString("\t\tCOMPREPLY=($(compgen -f -- \"$cur\"))\n")
		}
		b.WriteString("\t\t;;\n")
	}
	b.WriteString("\tesac\n}\ncomplete -o filenames -F _cairn cairn\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func commandNames() string {
	n := make([]string, len(commands))
	for i, c := range commands {
		n[i] = c.name
	}
	return strings.Join(n, " ")
}

// zshQuote quotes s for a single-quoted zsh word inside an _arguments
// spec, where brackets and colons are syntax.
func zshQuote(s string) string {
	r := strings.NewReplacer("'", `'\''`, "[", `\[`, "]", `\]`, ":", `\:`, "\\", `\\`)
	return r.Replace(s)
}

func writeZsh(w io.Writer) error {
	var b strings.Builder
	b.WriteString("#compdef cairn\n# zsh completion for cairn: cairn completion zsh > \"${fpath[1]}/_cairn\"\n")
	b.WriteString("_cairn() {\n\tlocal curcontext=$curcontext state line\n\tlocal -a cmds\n\tcmds=(\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "\t\t'%s:%s'\n", c.name, zshQuote(c.summary))
	}
	b.WriteString("\t)\n\t_arguments -C '1:command:->cmd' '*::arg:->args'\n")
	b.WriteString("\tcase $state in\n\tcmd) _describe -t commands 'cairn command' cmds ;;\n\targs)\n\t\tcase $line[1] in\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "\t\t%s)\n\t\t\t_arguments \\\n", c.name)
		for _, f := range flagsOf(c) {
			spec := "--" + f.name + "[" + zshQuote(f.help) + "]"
			if f.repeatable {
				spec = "*" + spec
			}
			if f.takesValue {
				action := " "
				if f.file {
					action = "_files"
				}
				spec += ":" + zshQuote(strings.ToLower(f.arg)) + ":" + action
			}
			fmt.Fprintf(&b, "\t\t\t\t'%s' \\\n", spec)
		}
		switch {
		case c.name == "help":
			b.WriteString("\t\t\t\t'1:command:(" + commandNames() + ")' \\\n")
		case len(c.subs) > 0:
			b.WriteString("\t\t\t\t'1:subcommand:(" + strings.Join(c.subs, " ") + ")' \\\n")
		}
		if c.files {
			b.WriteString("\t\t\t\t'*:file:_files' \\\n")
		}
		b.WriteString("\t\t\t\t&& return\n\t\t\t;;\n")
	}
	b.WriteString("\t\tesac\n\t\t;;\n\tesac\n}\n_cairn \"$@\"\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// fishQuote quotes s as a single-quoted fish string.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(s) + "'"
}

func writeFish(w io.Writer) error {
	var b strings.Builder
	b.WriteString("# fish completion for cairn: cairn completion fish > ~/.config/fish/completions/cairn.fish\n")
	// __cairn_cmd NAME: the command is NAME. fish's __fish_seen_subcommand_from
	// would also match a subcommand of another command (conflicts ls).
	b.WriteString("function __cairn_cmd\n\tset -l w (commandline -opc)\n\ttest (count $w) -ge 2; and test $w[2] = $argv[1]\nend\n")
	b.WriteString("function __cairn_args\n\tset -l w (commandline -opc)\n\ttest (count $w) -eq $argv[1]\nend\n")
	b.WriteString("complete -c cairn -f\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "complete -c cairn -n '__cairn_args 1' -a %s -d %s\n", c.name, fishQuote(c.summary))
	}
	for _, c := range commands {
		cond := "'__cairn_cmd " + c.name + "'"
		for _, f := range flagsOf(c) {
			opt := ""
			if f.takesValue {
				opt = " -r"
				if f.file {
					opt += " -F"
				}
			}
			fmt.Fprintf(&b, "complete -c cairn -n %s -l %s%s -d %s\n", cond, f.name, opt, fishQuote(f.help))
		}
		switch {
		case c.name == "help":
			fmt.Fprintf(&b, "complete -c cairn -n '__cairn_cmd help; and __cairn_args 2' -a %s\n", fishQuote(commandNames()))
		case len(c.subs) > 0:
			fmt.Fprintf(&b, "complete -c cairn -n '__cairn_cmd %s; and __cairn_args 2' -a %s\n", c.name, fishQuote(strings.Join(c.subs, " ")))
		}
		if c.files {
			fmt.Fprintf(&b, "complete -c cairn -n %s -F\n", cond)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
