package cli

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// derivedDefaults are the serve settings whose default is worked out from
// other settings when they are not given at all: the example shows them
// commented out, because writing the default down would fix it.
var derivedDefaults = map[string]string{
	"cache-bytes": "with a memory limit, the default is a third of the Go heap's share of it",
}

const configUsage = `Usage: cairn config example

Prints a configuration file for 'cairn serve --config FILE' holding every
setting at its default, each with its description, environment variable and
flag. The file is JSON with comments (// and /* */) and trailing commas
allowed; keys are the serve flags without --.
`

func configCommand(args []string, env Env) int {
	if len(args) == 1 && isHelp(args[0]) {
		fmt.Fprint(env.Stdout, configUsage)
		return exitOK
	}
	if len(args) != 1 || args[0] != "example" {
		fmt.Fprintf(env.Stderr, "cairn config: want example\n\n%s", configUsage)
		return exitUsage
	}
	fs, _ := newServeFlags()
	if err := writeConfigExample(env.Stdout, fs); err != nil {
		fmt.Fprintf(env.Stderr, "cairn config example: %v\n", err)
		return exitFail
	}
	return exitOK
}

// writeConfigExample writes every flag of fs but --config as a setting of a
// config file, at its default, with its usage as a comment.
func writeConfigExample(w io.Writer, fs *flag.FlagSet) error {
	var b strings.Builder
	b.WriteString("// cairn serve --config FILE: every setting at its default.\n")
	b.WriteString("// Precedence: command line, then environment, then this file, then the default.\n")
	b.WriteString("{\n")
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "config" {
			return
		}
		_, usage := flag.UnquoteUsage(f)
		for _, line := range wrap(usage, 72) {
			b.WriteString("\t// " + line + "\n")
		}
		env, _ := envTwin(fs, f.Name, func(string) string { return "" })
		fmt.Fprintf(&b, "\t// flag --%s, environment %s\n", f.Name, env)
		setting := fmt.Sprintf("%q: %s,", f.Name, configValue(f))
		if why, ok := derivedDefaults[f.Name]; ok {
			b.WriteString("\t// Not set: " + why + ".\n\t// " + setting + "\n\n")
			return
		}
		b.WriteString("\t" + setting + "\n\n")
	})
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// configValue is f's default as a JSON value of the config file: a list
// for a repeatable flag, a number or boolean where the flag holds one, a
// string otherwise (durations and sizes included).
func configValue(f *flag.Flag) string {
	switch v := f.Value.(type) {
	case *listFlag:
		return "[]"
	case *byteSize:
		return strconv.Quote(sizeString(int64(*v)))
	case flag.Getter:
		switch v.Get().(type) {
		case bool, int, int64, uint, uint64, float64:
			return f.DefValue
		}
	}
	return strconv.Quote(f.DefValue)
}

// sizeString writes n bytes in the largest binary unit that divides it.
func sizeString(n int64) string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// wrap breaks s into lines of at most width bytes at spaces.
func wrap(s string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	return append(lines, line)
}
