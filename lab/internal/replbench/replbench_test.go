package replbench

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cairnstore/cairn/internal/proctest"
	"github.com/cairnstore/cairn/lab/internal/chaosrun"
)

var cairnBin string

func TestMain(m *testing.M) { proctest.MainWithCairn(m, &cairnBin, "replbench") }

// TestRunShort runs every row, small, against the real binary and
// versitygw, the binary twice as A and B: each row yields a figure, and
// the table prints it with a ratio.
func TestRunShort(t *testing.T) {
	defer goleak.VerifyNone(t)
	gw := chaosrun.FindVersitygw()
	if gw == "" {
		msg := "no versitygw binary; build it with `bash scripts/versitygw.sh` (or set CAIRN_VERSITYGW_BIN)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	rep, err := Run(context.Background(), Options{
		Binaries: []Binary{{"A", cairnBin}, {"B", cairnBin}},
		Gateway:  gw, Dir: t.TempDir(),
		// A short interval so that row 3's probes arrive by a round whatever
		// the binary carries news with.
		Args: []string{"--reconcile-interval", "2s"},
		Docs: 300, Duration: time.Second, HotRate: 200, FlowRate: 100, ProbeEvery: 10, ProbeTimeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range rep.Rows {
		for i, x := range rep.Results[row] {
			if x.Err != nil || x.Value <= 0 {
				t.Errorf("row %d, %s: %v (value %v)", row, rep.Binaries[i].Label, x.Err, x.Value)
			}
		}
	}
	if got := rep.Results[1][0].Value; got < 1000 {
		t.Errorf("row 1: %v backend requests for 1,000 writes, want at least one each", got)
	}
	var out bytes.Buffer
	rep.Print(&out)
	if !strings.Contains(out.String(), "B/A") || strings.Count(out.String(), "\n") < 6 {
		t.Errorf("table:\n%s", out.String())
	}
	t.Logf("\n%s", out.String())
}
