package cli

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
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

// settle fills every flag the command line did not set, first from its
// CAIRN_* environment twin, then from the config file (if the flag named by
// configFlag is set), so the order of precedence is: command line, environment,
// file, default. Unknown keys in the file are an error naming the key. If
// withEnv names flags, only those have environment twins.
func settle(fs *flag.FlagSet, getenv func(string) string, configFlag string, withEnv ...string) error {
	fromCmdline := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { fromCmdline[f.Name] = true })
	fromEnv := map[string]bool{}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || fromCmdline[f.Name] || (len(withEnv) > 0 && !slices.Contains(withEnv, f.Name)) {
			return
		}
		v := getenv(envName(f.Name))
		if v == "" {
			return
		}
		fromEnv[f.Name] = true
		err = setValue(fs, f, strings.Split(v, ","), envName(f.Name))
	})
	if err != nil || configFlag == "" {
		return err
	}
	path := fs.Lookup(configFlag).Value.String()
	if path == "" {
		return nil
	}
	file, err := readConfig(path)
	if err != nil {
		return err
	}
	for name, raw := range file {
		f := fs.Lookup(name)
		if f == nil || name == configFlag {
			return fmt.Errorf("config %s: unknown setting %q (settings are the serve flags without --)", path, name)
		}
		if fromCmdline[name] || fromEnv[name] {
			continue
		}
		vals, err := configValues(raw)
		if err != nil {
			return fmt.Errorf("config %s: setting %q: %v", path, name, err)
		}
		if err := setValue(fs, f, vals, "config "+path+": "+name); err != nil {
			return err
		}
	}
	return nil
}

func setValue(fs *flag.FlagSet, f *flag.Flag, vals []string, source string) error {
	if _, ok := f.Value.(*listFlag); !ok && len(vals) > 1 {
		vals = []string{strings.Join(vals, ",")}
	}
	for _, v := range vals {
		if err := fs.Set(f.Name, strings.TrimSpace(v)); err != nil {
			return fmt.Errorf("%s: invalid value %q: %v", source, v, err)
		}
	}
	return nil
}

func readConfig(path string) (map[string]json.RawMessage, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("config %s: invalid JSON at byte %d: %v", path, se.Offset, err)
		}
		return nil, fmt.Errorf("config %s: %v", path, err)
	}
	return m, nil
}

// configValues accepts a string, number, boolean or array of strings.
func configValues(raw json.RawMessage) ([]string, error) {
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
