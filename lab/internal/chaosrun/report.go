package chaosrun

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Check is one invariant's verdict in a result.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Result is one scenario's outcome.
type Result struct {
	Scenario string        `json:"scenario"`
	Seed     uint64        `json:"seed"`
	Nodes    int           `json:"nodes"`
	Wall     time.Duration `json:"wall_ns"`
	// Clients is the offered load: closed-loop clients, each with one
	// request in flight.
	Clients int `json:"clients"`
	Ops     int `json:"ops"`
	// Throughput is client operations per second of load; P50 and P99
	// the latency of the acknowledged ones.
	Throughput  float64       `json:"ops_per_s"`
	P50         time.Duration `json:"p50_ns"`
	P99         time.Duration `json:"p99_ns"`
	Counts      ErrorCounts   `json:"requests"`
	Convergence time.Duration `json:"convergence_ns"` // from the heal to all replicas equal
	// PeakRSS is the highest peak resident set (VmHWM) of the node
	// processes running at the end; MemLimit the limit they ran under (0:
	// none).
	PeakRSS  int64    `json:"peak_rss_bytes,omitempty"`
	MemLimit int64    `json:"memory_limit_bytes,omitempty"`
	Faults   []Fault  `json:"faults"`
	Schedule []Event  `json:"schedule,omitempty"`
	Checks   []Check  `json:"checks"`
	Notes    []string `json:"notes,omitempty"`
	Error    string   `json:"error,omitempty"` // the harness failed to run it
}

// OK reports whether the scenario ran and every check passed.
func (r *Result) OK() bool {
	if r.Error != "" || len(r.Checks) == 0 {
		return false
	}
	for _, c := range r.Checks {
		if !c.OK {
			return false
		}
	}
	return true
}

// check records an invariant from a checker's anomalies; ok says what held.
func (r *Result) check(name string, as []Anomaly, ok string) {
	if len(as) == 0 {
		r.Checks = append(r.Checks, Check{Name: name, OK: true, Detail: ok})
		return
	}
	var b strings.Builder
	for i, a := range as {
		if i == 5 {
			fmt.Fprintf(&b, "; and %d more", len(as)-5)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(a.String())
	}
	r.Checks = append(r.Checks, Check{Name: name, OK: false, Detail: b.String()})
}

// assert records a check from a condition.
func (r *Result) assert(name string, ok bool, detail string) {
	r.Checks = append(r.Checks, Check{Name: name, OK: ok, Detail: detail})
}

func (r *Result) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// Report is a whole run: what was run and every scenario's result.
type Report struct {
	Command  string    `json:"command"`
	Seed     uint64    `json:"seed"`
	Started  time.Time `json:"started"`
	Duration string    `json:"duration"`
	Results  []Result  `json:"results"`
}

// OK reports whether every scenario passed.
func (rp *Report) OK() bool {
	for i := range rp.Results {
		if !rp.Results[i].OK() {
			return false
		}
	}
	return len(rp.Results) > 0
}

// JSON writes the report as indented JSON.
func (rp *Report) JSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(rp)
}

// Table writes the report for a person: a summary line per scenario, then
// each scenario's faults and checks.
func (rp *Report) Table(w io.Writer) {
	fmt.Fprintf(w, "command: %s\nseed: %d\n\n", rp.Command, rp.Seed)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tRESULT\tCLIENTS\tOPS\tOPS/S\tP50\tP99\tERRORS\tW/O SHED\tSHED\tRETRIED\tABSORBED\tPEAK RSS\tCONVERGED\tFAULTS\tWALL")
	for i := range rp.Results {
		r := &rp.Results[i]
		verdict := "PASS"
		if !r.OK() {
			verdict = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.0f\t%v\t%v\t%d (%.3f%%)\t%.3f%%\t%d\t%d\t%d\t%s\t%v\t%d\t%v\n", r.Scenario, verdict, r.Clients, r.Ops, r.Throughput,
			r.P50.Round(time.Microsecond*10), r.P99.Round(time.Microsecond*10), r.Counts.Errors, 100*r.Counts.Rate(), 100*r.Counts.RateWithoutShed(),
			r.Counts.Shed, r.Counts.RetriedTotal(), r.Counts.Absorbed, rssOf(r), r.Convergence.Round(time.Millisecond), len(r.Faults), r.Wall.Round(100*time.Millisecond))
	}
	tw.Flush()
	for i := range rp.Results {
		r := &rp.Results[i]
		fmt.Fprintf(w, "\n== %s\n", r.Scenario)
		if r.Error != "" {
			fmt.Fprintf(w, "  harness error: %s\n", r.Error)
		}
		if len(r.Faults) > 0 {
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "  FAULT\tTARGET\tAT\tFOR\tMETRIC THAT MOVED\tSAMPLE TRACE")
			for _, f := range r.Faults {
				fmt.Fprintf(tw, "  %s\t%s\t%v\t%v\t%s\t%s\n", f.Kind, f.Target, f.At.Round(time.Millisecond), f.For.Round(time.Millisecond), orDash(f.Metric), orDash(f.TraceID))
			}
			tw.Flush()
		}
		for _, c := range r.Checks {
			mark := "ok  "
			if !c.OK {
				mark = "FAIL"
			}
			fmt.Fprintf(w, "  %s %s: %s\n", mark, c.Name, c.Detail)
		}
		for _, n := range r.Notes {
			fmt.Fprintf(w, "  note: %s\n", n)
		}
	}
}

// rssOf is a result's peak RSS, against its limit if it had one.
func rssOf(r *Result) string {
	switch {
	case r.PeakRSS == 0:
		return "-"
	case r.MemLimit > 0:
		return fmt.Sprintf("%d/%d MiB", r.PeakRSS>>20, r.MemLimit>>20)
	}
	return fmt.Sprintf("%d MiB", r.PeakRSS>>20)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
