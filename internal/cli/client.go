package cli

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/cairnstore/cairn/client"
)

// clientFlags are the connection settings every client command shares.
type clientFlags struct {
	url, token, tenant string
	caCert             string
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	ConnectionFlags(fs, &c.url, &c.token, &c.tenant)
	fs.StringVar(&c.caCert, "ca-cert", "", "trust only the CA certificates in this PEM `file` for an https URL (a node with a self-signed or private CA)")
}

// ConnectionFlags registers --url, --token and --tenant, which say what
// node and tenant a command acts on, as every client command takes them
// (cairn bench too, in cairn-lab).
func ConnectionFlags(fs *flag.FlagSet, url, token, tenant *string) {
	fs.StringVar(url, "url", "http://127.0.0.1:7070", "the node's `URL`")
	fs.StringVar(token, "token", "", "bearer `token` (prefer CAIRN_TOKEN: flags show in ps)")
	fs.StringVar(tenant, "tenant", "demo", "the `tenant` to act on")
}

// missing says what the connection settings lack before any request: a
// node URL cairn can call, then a token; "" when nothing is.
func (c *clientFlags) missing() string {
	if m := urlProblem(c.url, "CAIRN_URL or --url"); m != "" {
		return m
	}
	if c.token == "" {
		return "no token: set CAIRN_TOKEN (cairn serve prints one for the demo tenant) or --token"
	}
	if c.tenant == "" {
		return "no tenant: set CAIRN_TENANT or --tenant (the demo tenant of a development node is demo)"
	}
	return ""
}

// newClient is the client the flags describe.
func (c *clientFlags) newClient() (*client.Client, error) {
	var opts []client.Option
	if c.caCert != "" {
		pool, err := client.CertPool(c.caCert)
		if err != nil {
			return nil, usageError(fmt.Sprintf("--ca-cert: %v", err))
		}
		opts = append(opts, client.WithRootCAs(pool))
	}
	return client.New(c.url, c.token, opts...), nil
}

const clientUsage = `Usage:
  cairn put [flags] KEY [FILE|-]   store a JSON document (body from FILE, stdin with -, or --data)
  cairn get [flags] KEY            print a document's body to stdout
  cairn del [flags] KEY            delete a document
  cairn ls  [flags]                list keys (with --long: ETag and size)

Connection settings come from flags or CAIRN_URL, CAIRN_TOKEN, CAIRN_TENANT
and CAIRN_CA_CERT.

Flags:
`

// docFlags are the settings of put, get, del and ls.
type docFlags struct {
	clientFlags
	data, ifMatch, prefix string
	create, long          bool
}

// newDocFlags is the flag table of put, get, del and ls (they share one).
func newDocFlags(cmd string) (*flag.FlagSet, *docFlags) {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), clientUsage); fs.PrintDefaults() }
	var f docFlags
	f.register(fs)
	fs.StringVar(&f.data, "data", "", "put: the document `JSON` itself")
	fs.StringVar(&f.ifMatch, "if-match", "", "put/del: only if the current ETag is `etag`")
	fs.BoolVar(&f.create, "create-only", false, "put: only if the document does not exist")
	fs.StringVar(&f.prefix, "prefix", "", "ls: only keys starting with `prefix`")
	fs.BoolVar(&f.long, "long", false, "ls: also print ETag and size")
	return fs, &f
}

// docFlagCommands are the commands each of put, get, del and ls's own
// flags applies to.
var docFlagCommands = []struct {
	flag, names string
	cmds        []string
}{
	{"data", "put", []string{"put"}},
	{"if-match", "put and del", []string{"put", "del", "delete"}},
	{"create-only", "put", []string{"put"}},
	{"prefix", "ls", []string{"ls", "list"}},
	{"long", "ls", []string{"ls", "list"}},
}

// check refuses a flag given to a command it does not apply to, an empty
// --if-match (a script's unset variable would otherwise make a conditional
// write unconditional), and --if-match with --create-only, which no
// document can meet.
func (f *docFlags) check(fs *flag.FlagSet, cmd string) error {
	given := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	for _, d := range docFlagCommands {
		if given[d.flag] && !slices.Contains(d.cmds, cmd) {
			return fmt.Errorf("--%s applies to %s only", d.flag, d.names)
		}
	}
	switch {
	case given["if-match"] && f.ifMatch == "":
		return errors.New("--if-match is empty: give the ETag the document must have (cairn ls --long shows it)")
	case given["if-match"] && f.create:
		return errors.New("--if-match and --create-only: give one (a document cannot both exist with an ETag and not exist)")
	}
	return nil
}

func clientCommand(ctx context.Context, cmd string, args []string, env Env) int {
	fs, f := newDocFlags(cmd)
	cf := &f.clientFlags
	data, ifMatch, create, prefix, long := &f.data, &f.ifMatch, &f.create, &f.prefix, &f.long
	args, code, ok := parseArgs(fs, args, true, env)
	if !ok {
		return code
	}
	if err := settle(fs, env.Getenv, "", "url", "token", "tenant", "ca-cert"); err != nil {
		fmt.Fprintf(env.Stderr, "cairn %s: %v\n", cmd, err)
		return exitUsage
	}
	if err := f.check(fs, cmd); err != nil {
		fmt.Fprintf(env.Stderr, "cairn %s: %v\n", cmd, err)
		return exitUsage
	}
	// The command line's own mistakes come first: a missing KEY is what to
	// say to 'cairn get' with nothing set, not a missing token.
	if err := checkArgs(cmd, args, *data); err != nil {
		return report(cmd, err, env)
	}
	if m := cf.missing(); m != "" {
		fmt.Fprintf(env.Stderr, "cairn %s: %s\n", cmd, m)
		return exitUsage
	}
	c, err := cf.newClient()
	if err != nil {
		return report(cmd, err, env)
	}
	var conds []client.Condition
	if *ifMatch != "" {
		conds = append(conds, client.IfMatch(etagArg(*ifMatch)))
	}
	if *create {
		conds = append(conds, client.CreateOnly())
	}
	switch cmd {
	case "put":
		err = put(ctx, c, cf.tenant, args, *data, conds, env)
	case "get":
		err = get(ctx, c, cf.tenant, args, env)
	case "del", "delete":
		err = del(ctx, c, cf.tenant, args, conds, env)
	case "ls", "list":
		err = list(ctx, c, cf.tenant, *prefix, *long, env)
	}
	if errors.Is(err, client.ErrConflict) && len(args) > 0 {
		err = hinted{err, fmt.Sprintf("the document has open siblings: see them with 'cairn conflicts show %s', then keep one with 'cairn conflicts resolve %[1]s --choose ETAG' (or --body FILE, --delete)", args[0])}
	}
	return report(cmd, reachable(err, cf.url, "CAIRN_URL or --url"), env)
}

// hinted is an error with what the user can do about it, printed on the
// line after it.
// etagArg is an ETag as a user may paste it: with its quotes (as HTTP and
// 'cairn ls --long' show it) or without (as the RESP front and a shell that
// ate the quotes give it). HTTP wants the quotes.
func etagArg(s string) string {
	if s == "*" || strings.HasPrefix(s, `"`) || strings.HasPrefix(s, `W/"`) {
		return s
	}
	return `"` + s + `"`
}

type hinted struct {
	err  error
	hint string
}

func (h hinted) Error() string { return h.err.Error() }
func (h hinted) Unwrap() error { return h.err }

// reachable turns a request that found no node at the URL node into an error that
// says which URL was tried and where it is set; other errors pass.
func reachable(err error, node, setting string) error {
	var dnsErr *net.DNSError
	var unknownCA x509.UnknownAuthorityError
	var wrongHost x509.HostnameError
	switch {
	case err == nil:
		return nil
	case urlProblem(node, setting) != "":
		return usageError(urlProblem(node, setting))
	case errors.As(err, &unknownCA):
		return hinted{err, "the node's certificate is not signed by a CA this client trusts: give the CA's certificate with --ca-cert FILE or CAIRN_CA_CERT (docs/tls.md)"}
	case errors.As(err, &wrongHost):
		return hinted{err, "the node's certificate is not for the host in the URL: use a name the certificate covers (docs/tls.md)"}
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("no cairn node answers at %s (connection refused): check that 'cairn serve' runs there, or set %s", node, setting)
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return fmt.Errorf("no cairn node at %s (no such host %q): set %s", node, dnsErr.Name, setting)
	}
	return err
}

// urlProblem says what is wrong with a node's URL, naming the setting it
// came from, or "" when it is an http or https URL with a host.
func urlProblem(node, setting string) string {
	u, err := url.Parse(node)
	what := ""
	switch {
	case err != nil:
		what = "not a URL"
	case u.Scheme != "http" && u.Scheme != "https":
		what = "want http://HOST:PORT or https://HOST:PORT"
	case u.Host == "":
		what = "no host in it"
	default:
		return ""
	}
	return fmt.Sprintf("the node's URL %q (%s): %s", node, setting, what)
}

// usageError is a command line the command cannot run.
type usageError string

func (e usageError) Error() string { return string(e) }

// UsageError is a command line the command cannot run: [Report] answers
// it with exit status 2. cairn-lab's commands return it too.
type UsageError = usageError

// Report prints a command's error as cairn's commands do (the API error's
// code and request id, a hint where one helps) and returns the exit
// status: 0 for nil, 2 for a [UsageError], 1 otherwise.
func Report(cmd string, err error, env Env) int { return report(cmd, err, env) }

func report(cmd string, err error, env Env) int {
	var ue usageError
	var ce *client.Error
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(env.Stderr, "cairn %s: %v (see cairn %s --help)\n", cmd, err, cmd)
		return exitUsage
	case errors.As(err, &ce):
		fmt.Fprintf(env.Stderr, "cairn %s: %s (HTTP %d, %s, request %s)\n", cmd, ce.Message, ce.Status, ce.Code, ce.RequestID)
		if ce.Status == http.StatusForbidden && !errors.As(err, new(hinted)) {
			err = hinted{err, "the token is for another tenant: set CAIRN_TENANT (or --tenant) to the tenant the token was made for"}
		}
	default:
		// The client's errors begin with its own "cairn: ", which the
		// command's prefix already says.
		fmt.Fprintf(env.Stderr, "cairn %s: %s\n", cmd, strings.TrimPrefix(err.Error(), "cairn: "))
	}
	var h hinted
	if errors.As(err, &h) {
		fmt.Fprintf(env.Stderr, "  %s\n", h.hint)
	}
	return exitFail
}

// checkArgs refuses the arguments of a document command (put, get, del, ls,
// and the conflicts subcommands) that it cannot run with, before anything
// is sent.
func checkArgs(cmd string, args []string, data string) error {
	max := 1
	switch cmd {
	case "ls", "list", "conflicts ls", "conflicts list":
		if len(args) > 0 {
			return usageError(fmt.Sprintf("unexpected argument %q (use --prefix)", args[0]))
		}
		return nil
	case "put":
		max = 2
	}
	switch {
	case len(args) == 0:
		return usageError("missing KEY")
	case len(args) > max:
		return usageError(fmt.Sprintf("unexpected argument %q", args[max]))
	case cmd != "put":
		return nil
	case len(args) == 2 && data != "":
		return usageError("give the body as FILE or --data, not both")
	case len(args) == 1 && data == "":
		return usageError("missing body: give FILE, - for stdin, or --data")
	}
	return nil
}

func put(ctx context.Context, c *client.Client, tenant string, args []string, data string, conds []client.Condition, env Env) error {
	key, body := args[0], []byte(data)
	var err error
	switch {
	case len(args) == 2 && args[1] == "-":
		body, err = io.ReadAll(env.Stdin)
	case len(args) == 2:
		body, err = os.ReadFile(args[1])
	}
	if err != nil {
		return err
	}
	res, err := c.Put(ctx, tenant, key, body, conds...)
	if err != nil {
		return err
	}
	verb := "replaced"
	if res.Created {
		verb = "created"
	}
	fmt.Fprintf(env.Stdout, "%s %s %s\n", verb, key, res.ETag)
	return nil
}

func get(ctx context.Context, c *client.Client, tenant string, args []string, env Env) error {
	d, err := c.Get(ctx, tenant, args[0])
	if err != nil {
		return err
	}
	env.Stdout.Write(d.Body)
	if len(d.Body) > 0 && d.Body[len(d.Body)-1] != '\n' {
		fmt.Fprintln(env.Stdout)
	}
	return nil
}

func del(ctx context.Context, c *client.Client, tenant string, args []string, conds []client.Condition, env Env) error {
	if err := c.Delete(ctx, tenant, args[0], conds...); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "deleted %s\n", args[0])
	return nil
}

func list(ctx context.Context, c *client.Client, tenant, prefix string, long bool, env Env) error {
	tw := tabwriter.NewWriter(env.Stdout, 0, 8, 2, ' ', 0)
	defer tw.Flush()
	for it, err := range c.List(ctx, tenant, client.Prefix(prefix)) {
		if err != nil {
			return err
		}
		if long {
			fmt.Fprintf(tw, "%s\t%s\t%d\n", it.Key, it.ETag, it.Size)
		} else {
			fmt.Fprintln(tw, it.Key)
		}
	}
	return nil
}
