package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tailscale/hujson"
)

// listFlag is a repeatable string flag. Its env twin and config-file form
// hold several values: comma-separated in the environment, a JSON array in
// the file.
type listFlag struct {
	vals []string
}

func (l *listFlag) String() string { return strings.Join(l.vals, ",") }

func (l *listFlag) Set(s string) error {
	l.vals = append(l.vals, s)
	return nil
}

// envName is the environment twin of a flag: --data-dir → CAIRN_DATA_DIR.
func envName(flagName string) string {
	return "CAIRN_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// envTwin returns the environment variable that holds flag name of fs and
// its value. serve's --tenant is the exception to envName: its twin is
// CAIRN_TENANTS, because CAIRN_TENANT is the client commands' tenant, which
// a shell that talks to a node has set. CAIRN_TENANT is also read for
// serve when it holds the NAME:TOKEN_SHA256 form (a tenant name has no
// colon), so deployments that configure serve's tenants there keep working.
func envTwin(fs *flag.FlagSet, name string, getenv func(string) string) (string, string) {
	if fs.Name() == "serve" && name == "tenant" {
		if v := getenv("CAIRN_TENANTS"); v != "" {
			return "CAIRN_TENANTS", v
		}
		if v := getenv("CAIRN_TENANT"); strings.Contains(v, ":") {
			return "CAIRN_TENANT", v
		}
		return "CAIRN_TENANTS", ""
	}
	return envName(name), getenv(envName(name))
}

// origins say where each flag's value came from, so that an error about a
// value names the setting the user wrote: --tenant, CAIRN_TENANTS or the
// config file's key.
type origins map[string]string

// named is how an error names setting name holding v: --name "v",
// CAIRN_NAME="v" or config FILE: name "v". Strings are quoted.
func (o origins) named(name string, v any) string {
	val := fmt.Sprint(v)
	if s, ok := v.(string); ok {
		val = strconv.Quote(s)
	}
	if strings.HasPrefix(o[name], "CAIRN_") {
		return o[name] + "=" + val
	}
	return o.setting(name) + " " + val
}

// setting is how an error names setting name without its value: --name,
// CAIRN_NAME or config FILE: name.
func (o origins) setting(name string) string {
	if src := o[name]; src != "" {
		return src
	}
	return "--" + name
}

// settle fills every flag the command line did not set, first from its
// CAIRN_* environment twin, then from the config file (if the flag named by
// configFlag is set), so the order of precedence is: command line, environment,
// file, default. Unknown keys in the file are an error naming the key. If
// withEnv names flags, only those have environment twins.
func settle(fs *flag.FlagSet, getenv func(string) string, configFlag string, withEnv ...string) error {
	_, err := settleOrigins(fs, getenv, configFlag, withEnv...)
	return err
}

// settleOrigins is settle that also says where each value came from.
func settleOrigins(fs *flag.FlagSet, getenv func(string) string, configFlag string, withEnv ...string) (origins, error) {
	fromCmdline := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { fromCmdline[f.Name] = true })
	from := origins{}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || fromCmdline[f.Name] || (len(withEnv) > 0 && !slices.Contains(withEnv, f.Name)) {
			return
		}
		name, v := envTwin(fs, f.Name, getenv)
		if v == "" {
			return
		}
		from[f.Name] = name
		err = setValue(fs, f, strings.Split(v, ","), func(v, want string) error {
			return fmt.Errorf("%s=%q: %s", name, v, want)
		})
	})
	if err != nil || configFlag == "" {
		return from, err
	}
	path := fs.Lookup(configFlag).Value.String()
	if path == "" {
		return from, nil
	}
	file, err := readConfig(path)
	if err != nil {
		return from, err
	}
	for name, raw := range file {
		f := fs.Lookup(name)
		if f == nil || name == configFlag {
			return from, fmt.Errorf("config %s: unknown setting %q (settings are the serve flags without --)", path, name)
		}
		if fromCmdline[name] || from[name] != "" {
			continue
		}
		vals, err := configValues(raw)
		if err != nil {
			return from, fmt.Errorf("config %s: setting %q: %v", path, name, err)
		}
		from[name] = "config " + path + ": " + name
		if err := setValue(fs, f, vals, func(v, want string) error {
			return fmt.Errorf("config %s: %s %q: %s", path, name, v, want)
		}); err != nil {
			return from, err
		}
	}
	return from, nil
}

// setValue sets f to vals; bad(v, want) makes the error for a value v the
// flag refuses, want saying what it takes.
func setValue(fs *flag.FlagSet, f *flag.Flag, vals []string, bad func(v, want string) error) error {
	if _, ok := f.Value.(*listFlag); !ok && len(vals) > 1 {
		vals = []string{strings.Join(vals, ",")}
	}
	for _, v := range vals {
		v = strings.TrimSpace(v)
		if err := fs.Set(f.Name, v); err != nil {
			return bad(v, wantOf(f.Value, err))
		}
	}
	return nil
}

// wantOf says what a flag whose Set failed with err wants. The flag
// package's own values fail with a bare "parse error"; cairn's values say
// what they want in their error.
func wantOf(v flag.Value, err error) string {
	if g, ok := v.(flag.Getter); ok {
		switch g.Get().(type) {
		case time.Duration:
			return "want a duration such as 30s"
		case bool:
			return "want true or false"
		case int, int64:
			return "want a whole number"
		case uint, uint64:
			return "want a whole number, 0 or more"
		case float64:
			return "want a number"
		}
	}
	return err.Error()
}

// parseArgs parses a command's flags. With interspersed, flags may follow
// positional arguments (see parseInterspersed). It answers --help with the
// command's usage on stdout, exit 0, and a bad flag with one line on stderr
// naming the flag and what it wants, exit 2: the usage of a command with
// many flags would bury that line. ok is false when the command should
// exit with code.
func parseArgs(fs *flag.FlagSet, args []string, interspersed bool, env Env) (pos []string, code int, ok bool) {
	var bad *badValue
	restore := recordBadValues(fs, &bad)
	usage := fs.Usage
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	var err error
	if interspersed {
		pos, err = parseInterspersed(fs, args)
	} else if err = fs.Parse(args); err == nil {
		pos = fs.Args()
	}
	restore()
	fs.Usage = usage
	fs.SetOutput(env.Stderr)
	switch {
	case err == nil:
		return pos, exitOK, true
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(env.Stdout)
		fs.Usage()
		fs.SetOutput(env.Stderr)
		return nil, exitOK, false
	}
	msg := err.Error() // the flag package's one line: an unknown flag, a missing value
	if bad != nil {
		msg = fmt.Sprintf("--%s %q: %s", bad.name, bad.value, bad.want)
	}
	fmt.Fprintf(env.Stderr, "cairn %s: %s (see cairn help %s)\n", fs.Name(), msg, strings.Fields(fs.Name())[0])
	return nil, exitUsage, false
}

// badValue is the first value a flag refused while parsing.
type badValue struct{ name, value, want string }

// recordBadValues wraps every flag of fs so that the first refused value is
// recorded in *bad: the flag package's error is a sentence without the
// flag's name in a form a message can reuse. restore puts the flags back.
func recordBadValues(fs *flag.FlagSet, bad **badValue) (restore func()) {
	orig := map[*flag.Flag]flag.Value{}
	fs.VisitAll(func(f *flag.Flag) {
		orig[f] = f.Value
		f.Value = &recordingValue{Value: f.Value, name: f.Name, bad: bad}
	})
	return func() {
		for f, v := range orig {
			f.Value = v
		}
	}
}

type recordingValue struct {
	flag.Value
	name string
	bad  **badValue
}

func (r *recordingValue) Set(s string) error {
	err := r.Value.Set(s)
	if err != nil && *r.bad == nil {
		*r.bad = &badValue{name: r.name, value: s, want: wantOf(r.Value, err)}
	}
	return err
}

// IsBoolFlag keeps a wrapped boolean flag usable without a value (--long).
func (r *recordingValue) IsBoolFlag() bool {
	b, ok := r.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func readConfig(path string) (map[string]json.RawMessage, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	// A byte-order mark, which some editors write at the start of a UTF-8
	// file, is blanked like a comment: it says nothing about the settings.
	if bytes.HasPrefix(b, []byte("\xef\xbb\xbf")) {
		copy(b, "   ")
	}
	// Comments and trailing commas are blanked out in place, so a JSON
	// error's offset still points into the file as written.
	std, err := hujson.Standardize(b)
	if err != nil { // a syntax error, named by line and column
		return nil, fmt.Errorf("config %s: invalid JSON at %s", path, strings.TrimPrefix(err.Error(), "hujson: "))
	}
	if err := settingsObject(b); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(std, &m); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("config %s: invalid JSON at byte %d: %v", path, se.Offset, err)
		}
		return nil, fmt.Errorf("config %s: %v", path, err)
	}
	return m, nil
}

// settingsObject checks that a config file (valid HuJSON) is one object
// whose keys are each given once: decoding keeps the last of a key given
// twice, and reads null as no settings at all, both silently.
func settingsObject(b []byte) error {
	v, err := hujson.Parse(b)
	if err != nil {
		return nil // Standardize has named the syntax error
	}
	obj, ok := v.Value.(*hujson.Object)
	if !ok {
		return errors.New(`want a JSON object of settings, such as {"listen": "127.0.0.1:7070"} (cairn config example prints one)`)
	}
	seen := make(map[string]bool, len(obj.Members))
	for _, m := range obj.Members {
		name := m.Name.Value.(hujson.Literal).String()
		if seen[name] {
			return fmt.Errorf("%q is given twice: give each setting once", name)
		}
		seen[name] = true
	}
	return nil
}

// configValues accepts a string, number, boolean or array of strings.
func configValues(raw json.RawMessage) ([]string, error) {
	if string(bytes.TrimSpace(raw)) == "null" {
		// It would decode as an empty list and leave the default in place,
		// which the file does not say.
		return nil, errors.New("null: give a value, or leave the key out for the default")
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err == nil {
		return list, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return []string{s}, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	switch v.(type) {
	case float64, bool:
		return []string{string(raw)}, nil
	}
	return nil, errors.New("want a string, number, boolean or list of strings")
}

// parseInterspersed parses args allowing flags after positional arguments
// (cairn put KEY --data '{}'), which the flag package alone stops at. A "--"
// ends flag parsing; what follows is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// ParseArgs parses the flags of a command that another binary of the
// repository (cairn-lab) serves under cairn's name, so that its --help and
// its bad flags answer as cairn's own commands do: see parseArgs. Flags
// may not follow positional arguments.
func ParseArgs(fs *flag.FlagSet, args []string, env Env) (pos []string, code int, ok bool) {
	return parseArgs(fs, args, false, env)
}

// SettleEnv fills the flags named that the command line did not set from
// their CAIRN_* environment twins (--url ↔ CAIRN_URL), as cairn's client
// commands do.
func SettleEnv(fs *flag.FlagSet, getenv func(string) string, names ...string) error {
	return settle(fs, getenv, "", names...)
}

// misspeltSettings names each CAIRN_ variable of environ that is no
// setting of fs but one or two letters from one, the way a setting's name
// is misspelt: it is otherwise ignored without a word, unlike a config
// file's unknown key. Variables further from every setting are left alone:
// other tools and the client commands have CAIRN_ variables of their own.
func misspeltSettings(fs *flag.FlagSet, environ []string) []string {
	known := map[string]bool{"CAIRN_TENANTS": true, "CAIRN_TENANT": true}
	fs.VisitAll(func(f *flag.Flag) { known[envName(f.Name)] = true })
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "CAIRN_") || known[name] {
			continue
		}
		best, dist := "", 3
		for k := range known {
			if d := editDistance(name, k); d < dist || (d == dist && k < best) {
				best, dist = k, d
			}
		}
		if best != "" {
			out = append(out, fmt.Sprintf("%s is not a setting of cairn serve and is ignored: did you mean %s?", name, best))
		}
	}
	slices.Sort(out)
	return out
}

// editDistance is the Levenshtein distance of a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
