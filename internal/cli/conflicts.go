package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cairnstore/cairn/client"
)

const conflictsUsage = `Usage:
  cairn conflicts ls [--prefix P]       list documents with open siblings (manual conflict policy)
  cairn conflicts show KEY              print each sibling: ETag, writer, time, then its body
  cairn conflicts history KEY           what resolutions discarded of KEY, up to the newest 64 (restore one with put)
  cairn conflicts resolve KEY --choose ETAG | --body FILE|- | --data JSON | --delete [--if-match SET]
                                        resolve: keep one sibling, write a new document, or delete;
                                        --if-match the set's ETag (show prints it) refuses it if
                                        the siblings changed since

Connection settings as for put/get: flags or CAIRN_URL, CAIRN_TOKEN, CAIRN_TENANT.

Flags:
`

// conflictsFlags are the settings of 'cairn conflicts'.
type conflictsFlags struct {
	clientFlags
	prefix  string
	resolve resolveFlags
}

func newConflictsFlags() (*flag.FlagSet, *conflictsFlags) {
	fs := flag.NewFlagSet("conflicts", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), conflictsUsage); fs.PrintDefaults() }
	var f conflictsFlags
	f.register(fs)
	fs.StringVar(&f.prefix, "prefix", "", "ls: only keys starting with `prefix`")
	r := &f.resolve
	fs.StringVar(&r.choose, "choose", "", "resolve: keep the sibling with this `etag`")
	fs.StringVar(&r.body, "body", "", "resolve: write the document in `FILE` (- for stdin)")
	fs.StringVar(&r.data, "data", "", "resolve: write this document `JSON`")
	fs.BoolVar(&r.delete, "delete", false, "resolve: delete the document")
	fs.StringVar(&r.ifMatch, "if-match", "", "resolve: only if the sibling set's ETag is still `etag` (as show printed it)")
	return fs, &f
}

// conflictsCommand runs 'cairn conflicts ls|show|resolve'.
func conflictsCommand(ctx context.Context, args []string, env Env) int {
	fs, f := newConflictsFlags()
	cf, prefix, r := &f.clientFlags, &f.prefix, &f.resolve
	args, code, ok := parseArgs(fs, args, true, env)
	if !ok {
		return code
	}
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, conflictsUsage)
		return exitUsage
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "ls", "list", "show", "resolve", "history":
	default: // checked before the token, which it does not need
		return report("conflicts", usageError(fmt.Sprintf("unknown subcommand %q: want ls, show, resolve or history", sub)), env)
	}
	cmd := "conflicts " + sub
	if err := settle(fs, env.Getenv, "", "url", "token", "tenant", "ca-cert"); err != nil {
		fmt.Fprintf(env.Stderr, "cairn %s: %v\n", cmd, err)
		return exitUsage
	}
	if err := checkArgs(cmd, args, ""); err != nil {
		return report(cmd, err, env)
	}
	if sub == "resolve" {
		if err := r.check(); err != nil {
			return report(cmd, err, env)
		}
	}
	if m := cf.missing(); m != "" {
		fmt.Fprintf(env.Stderr, "cairn %s: %s\n", cmd, m)
		return exitUsage
	}
	c, err := cf.newClient()
	if err != nil {
		return report(cmd, err, env)
	}
	switch sub {
	case "ls", "list":
		err = listConflicts(ctx, c, cf.tenant, *prefix, env)
	case "show":
		err = showConflict(ctx, c, cf.tenant, args, env)
	case "resolve":
		err = resolveConflict(ctx, c, cf.tenant, args, *r, env)
	case "history":
		err = conflictHistory(ctx, c, cf.tenant, args, env)
	}
	return report(cmd, reachable(err, cf.url, "CAIRN_URL or --url"), env)
}

func listConflicts(ctx context.Context, c *client.Client, tenant, prefix string, env Env) error {
	tw := tabwriter.NewWriter(env.Stdout, 0, 8, 2, ' ', 0)
	defer tw.Flush()
	for cf, err := range c.Conflicts(ctx, tenant, client.Prefix(prefix)) {
		if err != nil {
			return err
		}
		tags := make([]string, len(cf.Siblings))
		for i, s := range cf.Siblings {
			tags[i] = s.ETag
		}
		fmt.Fprintf(tw, "%s\t%d siblings\t%s\n", cf.Key, len(cf.Siblings), strings.Join(tags, " "))
	}
	return nil
}

func showConflict(ctx context.Context, c *client.Client, tenant string, args []string, env Env) error {
	key := args[0]
	cf, err := c.Conflict(ctx, tenant, key)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "set %s  (resolve --if-match it to refuse the resolution if the siblings change meanwhile)\n", cf.ETag)
	for _, s := range cf.Siblings {
		printSibling(env, &s, "")
	}
	return nil
}

// printSibling prints a header line for s (with extra after it), then its
// body indented.
func printSibling(env Env, s *client.Sibling, extra string) {
	what := fmt.Sprintf("%d bytes", s.Size)
	if s.Deleted {
		what = "deleted"
	}
	fmt.Fprintf(env.Stdout, "%s  writer %s  %s  %s%s\n", s.ETag, s.Writer, s.Time.UTC().Format(time.RFC3339Nano), what, extra)
	if !s.Deleted {
		fmt.Fprintf(env.Stdout, "  %s\n", s.Body)
	}
}

func conflictHistory(ctx context.Context, c *client.Client, tenant string, args []string, env Env) error {
	key := args[0]
	for l, err := range c.History(ctx, tenant, key) {
		if err != nil {
			return err
		}
		printSibling(env, &l.Sibling, fmt.Sprintf("  replaced by %s (%s)", l.Winner, l.Reason))
	}
	return nil
}

type resolveFlags struct {
	choose, body, data, ifMatch string
	delete                      bool
}

// check refuses a resolution that does not say how to resolve.
func (f resolveFlags) check() error {
	n := 0
	for _, set := range []bool{f.choose != "", f.body != "", f.data != "", f.delete} {
		if set {
			n++
		}
	}
	if n != 1 {
		return usageError("give exactly one of --choose, --body, --data and --delete")
	}
	return nil
}

func resolveConflict(ctx context.Context, c *client.Client, tenant string, args []string, f resolveFlags, env Env) error {
	key := args[0] // checkArgs and f.check have passed
	var err error
	r := client.Resolution{Choose: f.choose, Delete: f.delete}
	if f.ifMatch != "" {
		r.Set = etagArg(f.ifMatch)
	}
	switch {
	case f.data != "":
		r.Body = json.RawMessage(f.data)
	case f.body == "-":
		r.Body, err = io.ReadAll(env.Stdin)
	case f.body != "":
		r.Body, err = os.ReadFile(f.body)
	}
	if err != nil {
		return err
	}
	if r.Body != nil && !json.Valid(r.Body) {
		return usageError("the new document is not valid JSON")
	}
	etag, err := c.Resolve(ctx, tenant, key, r)
	if err != nil {
		return err
	}
	if etag == "" {
		fmt.Fprintf(env.Stdout, "resolved %s: deleted\n", key)
		return nil
	}
	fmt.Fprintf(env.Stdout, "resolved %s %s\n", key, etag)
	return nil
}
