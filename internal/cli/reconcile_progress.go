package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/cairnstore/cairn/api"
)

// progressEvery is how often 'reconcile run --wait' polls the status while
// its rounds run (a variable for tests).
var progressEvery = 500 * time.Millisecond

// progress shows the rounds of a 'reconcile run --wait' as they go: on a
// terminal one line redrawn in place (\r) with a bar, otherwise a plain
// line each time it changes, so a log keeps a readable history.
type progress struct {
	w   io.Writer
	tty bool
}

func newProgress(w io.Writer) *progress {
	f, ok := w.(*os.File)
	return &progress{w: w, tty: ok && term.IsTerminal(int(f.Fd()))}
}

// poll draws the progress of the selected rounds every progressEvery
// until ctx ends, then clears a terminal line. Status errors are skipped:
// the run's own answer reports what went wrong.
func (p *progress) poll(ctx context.Context, a adminClient, backend, tenant string) {
	t := time.NewTicker(progressEvery)
	defer t.Stop()
	last := ""
	for {
		select {
		case <-ctx.Done():
			if p.tty && last != "" {
				fmt.Fprint(p.w, "\r\033[K")
			}
			return
		case <-t.C:
		}
		var st api.ReconcileStatus
		if err := a.do(ctx, http.MethodGet, "/v1/admin/reconcile", &st); err != nil {
			continue
		}
		line := roundsLine(st, backend, tenant, p.tty)
		switch {
		case line == "" || line == last:
		case p.tty:
			fmt.Fprint(p.w, "\r\033[K"+line)
		default:
			fmt.Fprintln(p.w, line)
		}
		if line != "" {
			last = line
		}
	}
}

// roundsLine describes the rounds running now among the selected
// backend and tenant ("" for all): "local/acme [#####---------------] 25%
// 250/1000 keys 125/s ETA 6s", without the bar (bar false), or without
// the percent and ETA before the tenant's first whole round gives a size.
// "" when none runs.
func roundsLine(st api.ReconcileStatus, backend, tenant string, bar bool) string {
	var parts []string
	for _, b := range st.Backends {
		if backend != "" && b.Name != backend {
			continue
		}
		for _, t := range b.Tenants {
			if !t.Running || (tenant != "" && t.Tenant != tenant) {
				continue
			}
			var sb strings.Builder
			fmt.Fprintf(&sb, "%s/%s", b.Name, t.Tenant)
			if t.PercentDone != nil {
				if bar {
					const width = 20
					n := min(width, int(*t.PercentDone*width/100))
					fmt.Fprintf(&sb, " [%s%s]", strings.Repeat("#", n), strings.Repeat("-", width-n))
				}
				fmt.Fprintf(&sb, " %d%% %d/%d keys", int(*t.PercentDone), t.Scanned, t.Estimate) // 99.6 is not done
			} else {
				fmt.Fprintf(&sb, " %d keys", t.Scanned)
			}
			if t.KeysPerSecond > 0 {
				fmt.Fprintf(&sb, " %.0f/s", t.KeysPerSecond)
			}
			if t.ETASeconds != nil {
				fmt.Fprintf(&sb, " ETA %s", fmtSeconds(*t.ETASeconds))
			}
			parts = append(parts, sb.String())
		}
	}
	return strings.Join(parts, "; ")
}
