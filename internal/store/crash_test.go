package store

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/doc"
)

const crashWriters = 32

// TestCrash kills a child process that writes with 32 concurrent writers
// (kill -9, at a random point of its acknowledgement stream), reopens the
// store and checks that every acknowledged write is there with its exact
// version, or a later one by the same writer. Repeated on one directory, so
// recovery also runs over earlier recoveries.
//
// The check is sensitive: with the child switched to Buffered durability it
// reports lost acknowledged writes in the first round.
func TestCrash(t *testing.T) {
	rounds := 20
	if testing.Short() {
		rounds = 3
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	dir := t.TempDir()
	for round := range rounds {
		acks := crashRound(t, dir, round, 1+rng.IntN(1500))
		verifyAcks(t, dir, round, acks)
	}
}

// ack is one acknowledged write as the child printed it.
type ack struct {
	key, etag string
	seq       uint64
	i         int // the writer's write counter, in the body
}

// crashRound runs the child until it has printed killAfter acknowledgements,
// kills it, and returns the last acknowledgement of each key.
func crashRound(t *testing.T, dir string, round, killAfter int) map[string]ack {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envCrashChild+"="+dir, "CRASH_ROUND="+strconv.Itoa(round))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	last := map[string]ack{}
	sc := bufio.NewScanner(out)
	n := 0
	for sc.Scan() { // only complete lines: a line cut by the kill is not an ack
		a, err := parseAck(sc.Text())
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		last[a.key] = a // one writer per key, printing in order
		if n++; n == killAfter {
			cmd.Process.Kill() // SIGKILL; lines already in the pipe are still read
		}
	}
	cmd.Wait()
	if n < killAfter {
		t.Fatalf("round %d: child stopped after %d acks, before the kill at %d:\n%s", round, n, killAfter, stderr.String())
	}
	return last
}

func parseAck(line string) (ack, error) {
	f := strings.Fields(line)
	if len(f) != 5 || f[0] != "ack" {
		return ack{}, fmt.Errorf("bad child line %q", line)
	}
	seq, err1 := strconv.ParseUint(f[3], 10, 64)
	i, err2 := strconv.Atoi(f[4])
	if err1 != nil || err2 != nil {
		return ack{}, fmt.Errorf("bad child line %q", line)
	}
	return ack{key: f[1], etag: f[2], seq: seq, i: i}, nil
}

func verifyAcks(t *testing.T, dir string, round int, acks map[string]ack) {
	t.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("round %d: reopen: %v", round, err)
	}
	defer s.Close()
	lost := 0
	for _, a := range acks {
		rec, err := s.Get(bg, "crash", a.key)
		if err != nil {
			t.Errorf("round %d: acknowledged %s (seq %d) lost: %v", round, a.key, a.seq, err)
			lost++
			continue
		}
		var gotRound, gotI int
		fmt.Sscanf(string(rec.Body), `{"round":%d,"i":%d}`, &gotRound, &gotI)
		switch {
		case rec.Seq == a.seq && rec.ETag != a.etag:
			t.Errorf("round %d: %s at seq %d has ETag %s, acknowledged %s", round, a.key, a.seq, rec.ETag, a.etag)
			lost++
		case rec.Seq < a.seq, gotRound != round, gotI < a.i:
			t.Errorf("round %d: %s is seq %d (round %d, write %d); acknowledged seq %d (write %d)",
				round, a.key, rec.Seq, gotRound, gotI, a.seq, a.i)
			lost++
		}
		if rec.Seq > s.seq {
			t.Errorf("round %d: %s seq %d above the recovered high-water mark %d", round, a.key, rec.Seq, s.seq)
		}
	}
	checkConsistent(t, s)
	if lost > 0 {
		t.Fatalf("round %d: %d of %d acknowledged keys lost", round, lost, len(acks))
	}
}

// crashChild writes until killed: 32 writers, each on its own 4 keys,
// printing every acknowledged write.
func crashChild(dir string) {
	round, _ := strconv.Atoi(os.Getenv("CRASH_ROUND"))
	s, err := Open(dir, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex // serialises lines on stdout
	var wg sync.WaitGroup
	for w := range crashWriters {
		wg.Go(func() {
			for i := 0; ; i++ {
				key := fmt.Sprintf("w%02d-k%d", w, i%4)
				body := fmt.Appendf(nil, `{"round":%d,"i":%d}`, round, i)
				rec, err := s.Put(bg, "crash", key, body, doc.Precondition{})
				if err != nil {
					fmt.Fprintln(os.Stderr, "put:", err)
					os.Exit(3)
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "ack %s %s %d %d\n", key, rec.ETag, rec.Seq, i)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}
