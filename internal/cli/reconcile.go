package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cairnstore/cairn/api"
	"github.com/cairnstore/cairn/client"
	"github.com/cairnstore/cairn/internal/reconcile"
)

const reconcileUsage = `Usage:
  cairn reconcile status                      per backend and tenant: breaker, lag, cursor, percent
                                              done and ETA of a round in progress (from the size the
                                              last whole round found: "-" before one, as while
                                              catching up), last round; tenants still catching up
                                              (restoring) and their progress
  cairn reconcile run [--backend B] [--tenant T] [--wait] [--confirm] [--scrub]
                                              start a round (all backends, all tenants by default);
                                              --wait runs them now, shows their progress on stderr
                                              (a bar on a terminal) and prints their results,
                                              --confirm lets a round past the mass-deletion guard,
                                              --scrub (with --wait) reads and verifies every object
                                              now instead, as the background scrub does
  cairn reconcile quarantine                  the damaged remote objects this node recorded before
                                              repairing them (bytes: GET /v1/admin/quarantine
                                              ?backend=B&tenant=T&key=K on the admin listener)

They talk to the node's admin listener: --admin-url or CAIRN_ADMIN_URL
(default http://127.0.0.1:7071), with CAIRN_ADMIN_TOKEN when it needs one, and
CAIRN_CA_CERT (--ca-cert) for an https URL whose certificate a private CA signed.

Flags:
`

// reconcileCommand runs 'cairn reconcile status|run|quarantine'.
// reconcileFlags are the settings of 'cairn reconcile'.
type reconcileFlags struct {
	adminURL, token, caCert, backend, tenant string
	wait, confirm, scrub                     bool
}

func newReconcileFlags() (*flag.FlagSet, *reconcileFlags) {
	fs := flag.NewFlagSet("reconcile", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), reconcileUsage); fs.PrintDefaults() }
	var f reconcileFlags
	fs.StringVar(&f.adminURL, "admin-url", "http://127.0.0.1:7071", "the node's admin `URL`")
	fs.StringVar(&f.token, "admin-token", "", "admin bearer `token` (prefer CAIRN_ADMIN_TOKEN: flags show in ps)")
	fs.StringVar(&f.caCert, "ca-cert", "", "trust only the CA certificates in this PEM `file` for an https admin URL")
	fs.StringVar(&f.backend, "backend", "", "run: only this `backend`")
	fs.StringVar(&f.tenant, "tenant", "", "run: only this `tenant`")
	fs.BoolVar(&f.wait, "wait", false, "run: run the rounds now and print their results")
	fs.BoolVar(&f.confirm, "confirm", false, "run: let the next round pass the mass-deletion guard")
	fs.BoolVar(&f.scrub, "scrub", false, "run: with --wait, scrub now: read and verify every object, repairing what is damaged or missing")
	return fs, &f
}

func reconcileCommand(ctx context.Context, args []string, env Env) int {
	fs, f := newReconcileFlags()
	adminURL, token, caCert, be, tenant, wait, confirm, scrub := &f.adminURL, &f.token, &f.caCert, &f.backend, &f.tenant, &f.wait, &f.confirm, &f.scrub
	args, code, ok := parseArgs(fs, args, true, env)
	if !ok {
		return code
	}
	if err := settle(fs, env.Getenv, "", "admin-url", "admin-token", "ca-cert"); err != nil {
		fmt.Fprintf(env.Stderr, "cairn reconcile: %v\n", err)
		return exitUsage
	}
	if len(args) != 1 || (args[0] != "status" && args[0] != "run" && args[0] != "quarantine") {
		fmt.Fprintf(env.Stderr, "cairn reconcile: want status, run or quarantine, got %q\n\n%s", strings.Join(args, " "), reconcileUsage)
		return exitUsage
	}
	a := adminClient{base: strings.TrimSuffix(*adminURL, "/"), token: *token}
	if *caCert != "" {
		pool, err := client.CertPool(*caCert)
		if err != nil {
			fmt.Fprintf(env.Stderr, "cairn reconcile: --ca-cert: %v\n", err)
			return exitUsage
		}
		a.hc = client.HTTPClientTrusting(pool)
	}
	var err error
	switch args[0] {
	case "status":
		err = reconcileStatus(ctx, a, env.Stdout)
	case "quarantine":
		err = reconcileQuarantine(ctx, a, env.Stdout)
	default:
		q := url.Values{}
		for k, v := range map[string]string{"backend": *be, "tenant": *tenant} {
			if v != "" {
				q.Set(k, v)
			}
		}
		if *wait {
			q.Set("wait", "1")
		}
		if *confirm {
			q.Set("confirm", "1")
		}
		if *scrub {
			q.Set("scrub", "1")
		}
		err = reconcileRun(ctx, a, q, env.Stdout, newProgress(env.Stderr))
	}
	return report("reconcile "+args[0], reachable(err, *adminURL, "CAIRN_ADMIN_URL or --admin-url"), env)
}

// adminClient calls the admin listener's JSON endpoints.
type adminClient struct {
	base, token string
	hc          *http.Client // nil: http.DefaultClient
}

func (a adminClient) do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, nil)
	if err != nil {
		return err
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	hc := a.hc
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		var body api.ErrorBody
		if json.Unmarshal(b, &body) == nil && body.Error != nil {
			return fmt.Errorf("%s (HTTP %d, %s, request %s)", body.Error.Message, resp.StatusCode, body.Error.Code, body.Error.RequestID)
		}
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func reconcileStatus(ctx context.Context, a adminClient, w io.Writer) error {
	var st api.ReconcileStatus
	if err := a.do(ctx, http.MethodGet, "/v1/admin/reconcile", &st); err != nil {
		return err
	}
	defer printCollector(w, st.Collector)
	if len(st.CatchingUp) > 0 {
		fmt.Fprintf(w, "catching up (/readyz waits for them): %s\n", strings.Join(st.CatchingUp, ", "))
	}
	if len(st.Backends) == 0 {
		fmt.Fprintln(w, "no backends configured")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BACKEND\tBREAKER\tLAG\tTENANT\tSTATE\tCURSOR\tSCANNED\tDONE\tETA\tLAST ROUND\tTOOK\tAPPLIED\tERROR")
	for _, b := range st.Backends {
		lag := fmtSeconds(b.LagSeconds)
		if len(b.Tenants) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t%s\t-\t-\t\t\t\t\t\t\t\t\n", b.Name, b.Breaker, lag)
		}
		for _, t := range b.Tenants {
			state := "idle"
			if t.Running {
				state = "running"
			}
			if t.CatchingUp {
				// Restoring: SCANNED counts the documents seen so far.
				state = fmt.Sprintf("catching up, %s, %d downloaded", state, t.Downloaded)
			}
			if t.Held {
				state += ", deletions held" // runbook 11: cairn reconcile run --confirm --tenant T
			}
			last, took, applied, scanned := "-", "", "", t.Scanned
			if t.Last != nil {
				if !t.Running {
					scanned = t.Last.Scanned // the engine's count is the round in progress'
				}
				last = t.Last.Started.Local().Format(time.DateTime)
				took = fmtMillis(t.Last.DurationMS)
				applied = fmt.Sprint(t.Last.Applied)
			}
			done, eta := "-", "-"
			if t.PercentDone != nil {
				done = fmt.Sprintf("%d%%", int(*t.PercentDone)) // 99.6 is not done
			}
			if t.ETASeconds != nil {
				eta = fmtSeconds(*t.ETASeconds)
			}
			errs := t.LastError
			if t.LastUploadError != "" {
				// The uploader's failures show at once, not at the next
				// round's end.
				errs = strings.TrimPrefix(errs+"; upload: "+t.LastUploadError, "; ")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n",
				b.Name, b.Breaker, lag, t.Tenant, state, t.Cursor, scanned, done, eta, last, took, applied, errs)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return printFeeds(w, st.Backends)
}

// printFeeds adds the change feeds under the rounds: per backend and
// tenant, what this node published and how far it has read each peer.
// A feed that waits for a round to cover a gap says why.
func printFeeds(w io.Writer, backends []api.BackendStatus) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := false
	for _, b := range backends {
		for _, t := range b.Tenants {
			f := t.Feed
			if f == nil {
				continue
			}
			if !header {
				fmt.Fprintln(w) // tw holds nothing yet: the blank line comes first
				fmt.Fprintln(tw, "BACKEND\tTENANT\tPUBLISHED\tPENDING\tPEER\tCURSOR\tLAG\tREAD\tFEED")
				header = true
			}
			state := "tailing"
			switch {
			case f.Fallback != "":
				state = "waiting for a round: " + f.Fallback
			case f.Error != "":
				state = "not reading: " + f.Error
				if f.PolledAt != nil {
					state += " (last read " + f.PolledAt.Local().Format(time.DateTime) + ")"
				}
			}
			if len(f.Peers) == 0 {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t-\t\t\t\t%s\n", b.Name, t.Tenant, f.Published, f.Pending, state)
			}
			for _, id := range slices.Sorted(maps.Keys(f.Peers)) {
				p := f.Peers[id]
				read := "-"
				if p.ReadAt != nil {
					read = p.ReadAt.Local().Format(time.DateTime)
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%d\t%s\t%s\t%s\n",
					b.Name, t.Tenant, f.Published, f.Pending, id, p.Cursor, fmtSeconds(p.LagSeconds), read, state)
			}
		}
	}
	return tw.Flush()
}

func reconcileQuarantine(ctx context.Context, a adminClient, w io.Writer) error {
	var out api.QuarantineList
	if err := a.do(ctx, http.MethodGet, "/v1/admin/quarantine", &out); err != nil {
		return err
	}
	if len(out.Rows) == 0 {
		fmt.Fprintln(w, "no damaged objects quarantined")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BACKEND\tTENANT\tKEY\tETAG\tFOUND\tSIZE\tREASON")
	for _, r := range out.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", r.Backend, r.Tenant, r.Key, r.ETag,
			r.Time.Local().Format(time.DateTime), r.Size, r.Reason)
	}
	return tw.Flush()
}

// printCollector adds the tombstone collector's line under the table.
func printCollector(w io.Writer, c *api.CollectorStatus) {
	if c == nil {
		return
	}
	fmt.Fprintf(w, "\ncollector: grace %s, every %s", c.Grace, c.Interval)
	if p := c.LastPass; p != nil {
		fmt.Fprintf(w, "; last pass %s (%s): %d tombstones collected, %d waiting for a backend, %d log entries trimmed",
			p.Started.Local().Format(time.DateTime), fmtMillis(p.DurationMS), p.Collected, p.Waiting, p.Trimmed)
		if p.Error != "" {
			fmt.Fprintf(w, "; error: %s", p.Error)
		}
	}
	fmt.Fprintln(w)
}

func reconcileRun(ctx context.Context, a adminClient, q url.Values, w io.Writer, prog *progress) error {
	var out api.ReconcileRun
	var err error
	if q.Get("wait") == "1" {
		// The rounds run while the request is outstanding: show their
		// progress from the status endpoint meanwhile.
		pctx, stop := context.WithCancel(ctx)
		polled := make(chan struct{})
		go func() {
			defer close(polled)
			prog.poll(pctx, a, q.Get("backend"), q.Get("tenant"))
		}()
		err = a.do(ctx, http.MethodPost, "/v1/admin/reconcile/run?"+q.Encode(), &out)
		stop()
		<-polled
	} else {
		err = a.do(ctx, http.MethodPost, "/v1/admin/reconcile/run?"+q.Encode(), &out)
	}
	if err != nil {
		return err
	}
	if out.Triggered {
		fmt.Fprintln(w, "triggered a pass over every tenant; see: cairn reconcile status")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BACKEND\tTENANT\tSCANNED\tAPPLIED\tACTIONS\tTOOK\tERROR")
	failed, guarded := 0, false
	for _, r := range out.Rounds {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\n", r.Backend, r.Tenant, r.Scanned, r.Applied,
			roundActions(&r), fmtMillis(r.DurationMS), r.Error)
		if r.Error != "" {
			failed++
		}
		guarded = guarded || r.NeedsConfirm
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if guarded {
		fmt.Fprintln(w, "a round stopped at the mass-deletion guard: check, then run again with --confirm")
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d rounds failed", failed, len(out.Rounds))
	}
	return nil
}

// roundActions is a round's ACTIONS column: its decisions, then what it
// met besides them, damaged objects (and the scrub's repairs of them) and
// keys left for the next round.
func roundActions(r *api.RoundResult) string {
	actions := fmtActions(r.Actions)
	for _, x := range []struct {
		name string
		n    int
	}{{"corrupt", r.Corrupt}, {"repaired", r.Repaired}, {"raced", r.Raced}} {
		if x.n > 0 {
			actions = strings.TrimPrefix(actions+" "+x.name+"="+strconv.Itoa(x.n), "- ")
		}
	}
	if r.ResumedAfter != "" {
		// A round that went on from a checkpoint (runbook 8).
		actions = strings.TrimPrefix(actions+" resumed_after="+strconv.Quote(r.ResumedAfter), "- ")
	}
	return actions
}

// fmtActions lists the non-zero action counts in reconcile.Action order.
func fmtActions(m map[string]int) string {
	var parts []string
	for a := reconcile.InSync; a <= reconcile.Conflict; a++ {
		if c := m[a.String()]; c > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", a, c))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

func fmtMillis(ms float64) string {
	d := time.Duration(ms * float64(time.Millisecond))
	if d < time.Millisecond {
		return d.Round(time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}

func fmtSeconds(sec float64) string {
	d := time.Duration(sec * float64(time.Second))
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
