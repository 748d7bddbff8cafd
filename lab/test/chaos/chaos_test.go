// Package chaos runs the five chaos scenarios of lab/internal/chaosrun in short
// form against real processes: versitygw, the cairn binary ($CAIRN_BIN,
// built with -race by scripts/test.sh; otherwise built here) and toxiproxy
// in the test process. Each test fails when one of its scenario's
// invariants does not hold, and logs the report table.
//
// The memory scenario bounds the node's peak RSS at 1.1 × its limit,
// which a race build's shadow memory would exceed by design: when
// $CAIRN_BIN is a race build, TestMemory builds a binary without -race.
//
// CAIRN_CHAOS_SEED sets the seed (default 1); CAIRN_LONG=1 runs each
// scenario's load for 60s instead of the short form's few seconds.
package chaos

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/proctest"
	"github.com/cairnstore/cairn/lab/internal/chaosrun"
)

var cairnBin string

func TestMain(m *testing.M) { proctest.MainWithCairn(m, &cairnBin, "chaos") }

// short is each scenario's load phase in the default run: the six
// together stay under five minutes on 2 cores with a -race binary.
var short = map[string]time.Duration{
	"load": 10 * time.Second, "partition": 8 * time.Second, "node-failure": 8 * time.Second,
	"corruption": 4 * time.Second, "memory": 6 * time.Second, "node-replace": 8 * time.Second,
}

func run(t *testing.T, name string) {
	gw := chaosrun.FindVersitygw()
	if gw == "" {
		msg := "no versitygw binary; build it with `bash scripts/versitygw.sh` (or set CAIRN_VERSITYGW_BIN)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	seed := uint64(1)
	if s := os.Getenv("CAIRN_CHAOS_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CAIRN_CHAOS_SEED=%q: %v", s, err)
		}
		seed = v
	}
	d := short[name]
	if os.Getenv("CAIRN_LONG") == "1" {
		d = time.Minute
	}
	sc, ok := chaosrun.Lookup(name)
	if !ok {
		t.Fatalf("no scenario %q", name)
	}
	bin := cairnBin
	if name == "memory" && chaosrun.IsRace(bin) {
		bin = buildPlain(t)
	}
	var log bytes.Buffer
	env := chaosrun.Env{Bin: bin, Gateway: gw, Dir: t.TempDir(), Seed: seed, Duration: d, Nodes: 2, Log: &log,
		ConvergeWithin: 60 * time.Second}
	r := sc.Run(context.Background(), env)
	rp := chaosrun.Report{Command: "go test ./test/chaos -run " + t.Name(), Seed: seed, Results: []chaosrun.Result{r}}
	var table bytes.Buffer
	rp.Table(&table)
	t.Logf("%s\n%s", log.String(), table.String())
	if !rp.OK() {
		t.Fatalf("scenario %s failed (seed %d); the table above says which invariant", name, seed)
	}
}

func TestLoad(t *testing.T)        { run(t, "load") }
func TestPartition(t *testing.T)   { run(t, "partition") }
func TestNodeFailure(t *testing.T) { run(t, "node-failure") }
func TestCorruption(t *testing.T)  { run(t, "corruption") }
func TestMemory(t *testing.T)      { run(t, "memory") }
func TestNodeReplace(t *testing.T) { run(t, "node-replace") }

// buildPlain builds the cairn binary without -race into the test's
// temporary directory.
func buildPlain(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "cairn")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/cairnstore/cairn/cmd/cairn").CombinedOutput()
	if err != nil {
		t.Fatalf("building cairn without -race: %v\n%s", err, out)
	}
	return bin
}
