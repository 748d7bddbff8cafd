// Package e2e runs the real cairn binary as a user would: started as a
// process on loopback, driven over HTTP, killed with SIGKILL.
//
// The binary comes from $CAIRN_BIN (scripts/test.sh builds it with -race);
// without it, TestMain builds one into a temporary directory.
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/proctest"
)

var cairnBin string

// httpClient keeps enough idle connections for every test writer, so the
// tests measure the node, not TCP handshakes.
var httpClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}}

func TestMain(m *testing.M) { proctest.MainWithCairnLab(m, &cairnBin, "e2e") }

// proc is a running 'cairn serve'.
type proc struct {
	t      testing.TB
	cmd    *exec.Cmd
	URL    string // http://127.0.0.1:PORT
	Token  string // the demo tenant's development token
	stdout string // what it printed on stdout until it was ready
	stderr *proctest.SyncBuffer
	exited chan struct{} // closed once the process was waited for
	err    error         // its exit error, set before exited is closed
}

// startNode runs 'cairn serve' on dataDir with ports chosen by the kernel and
// waits until it printed its address and token.
func startNode(t testing.TB, dataDir string, args ...string) *proc {
	t.Helper()
	args = append([]string{"serve", "--data-dir", dataDir, "--listen", "127.0.0.1:0",
		"--admin-listen", "127.0.0.1:0", "--log-level", "warn"}, args...)
	cmd := exec.Command(cairnBin, args...)
	cmd.Env = append(os.Environ(), "GORACE=halt_on_error=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, stderr: &proctest.SyncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting cairn: %v", err)
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		io.Copy(io.Discard, stdout)
	}()
	deadline := time.After(30 * time.Second)
	for p.URL == "" || p.Token == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				err := cmd.Wait()
				t.Fatalf("cairn exited before it was ready (%v):\n%s", err, p.stderr)
			}
			p.stdout += line + "\n"
			line = strings.TrimPrefix(line, "export ")
			if v, ok := strings.CutPrefix(line, "CAIRN_URL="); ok {
				p.URL = v
			}
			if v, ok := strings.CutPrefix(line, "CAIRN_TOKEN="); ok {
				p.Token = v
			}
		case <-deadline:
			cmd.Process.Kill()
			t.Fatalf("cairn did not print its URL and token within 30s:\n%s", p.stderr)
		}
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(p.kill)
	return p
}

// kill sends SIGKILL (unless the process is gone) and waits for it.
func (p *proc) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// stop sends SIGTERM and returns the exit error after the drain.
func (p *proc) stop() error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	return p.wait(60 * time.Second)
}

// wait waits for the process to exit on its own and returns its exit error.
func (p *proc) wait(d time.Duration) error {
	select {
	case <-p.exited:
		return p.err
	case <-time.After(d):
		p.cmd.Process.Kill()
		return fmt.Errorf("cairn did not exit within %v", d)
	}
}

// do sends an authenticated request to the demo tenant.
func (p *proc) do(ctx context.Context, method, key, body string, hdr ...string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, p.URL+"/v1/tenants/demo/docs/"+key, strings.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+p.Token)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}
