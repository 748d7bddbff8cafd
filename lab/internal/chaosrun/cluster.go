package chaosrun

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/rs/zerolog"

	"github.com/cairnstore/cairn/client"
	"github.com/cairnstore/cairn/internal/backend/s3/versitygw"
	"github.com/cairnstore/cairn/internal/procout"
)

// Options configure a [Cluster].
type Options struct {
	Bin     string // the cairn binary
	Gateway string // the versitygw binary
	Dir     string // where data directories, the bucket and logs go
	Nodes   int
	// FS adds a second backend, disk=fs:DIR, shared by all nodes and not
	// behind the proxy.
	FS bool
	// Args are extra 'cairn serve' flags for every node; Env extra
	// environment (GOMEMLIMIT=…).
	Args []string
	Env  []string
	// Chaos starts the nodes with the fault simulator on (--enable-chaos,
	// seeded with Seed, and an admin token for its routes): see SimInject.
	Chaos bool
	Seed  uint64
}

// Bucket, prefix and credentials of the cluster's S3 server.
const (
	bucket              = "cairn"
	prefix              = "chaos/"
	accessKey           = "chaos-access"
	secretKey           = "chaos-secret-key"
	tenant              = "demo"
	adminToken          = "chaos-harness-admin-token" // for the simulator's routes
	versitygwVersion    = "v1.8.0"
	defaultReconcileIvl = "1s"
)

// Cluster is a running versitygw, one toxiproxy proxy per node, and the
// nodes. Close stops all of it.
type Cluster struct {
	opts  Options
	gw    *process
	GWURL string // host:port of versitygw
	tox   *toxiproxy.ApiServer
	links []*toxiproxy.Proxy // links[i]: node i → versitygw
	Nodes []*Node
	FSDir string // the shared fs backend's directory, when Options.FS
	hc    *http.Client
	// roundErrors are the errors of the rounds converge ran last, so that a
	// run that did not converge says why (a guard stop, a failing backend).
	roundErrors []string
}

// Node is one 'cairn serve' process. Kill and Restart keep its data
// directory, token and proxy.
type Node struct {
	Index     int
	DataDir   string
	TraceFile string
	args      []string
	env       []string
	proc      *process
	URL       string // http://127.0.0.1:PORT
	Admin     string // http://127.0.0.1:PORT
	Token     string
	client    atomic.Pointer[client.Client] // replaced by Restart while load runs
	hc        *http.Client
}

// FindVersitygw returns $CAIRN_VERSITYGW_BIN, or the binary that
// scripts/versitygw.sh builds under the module root above the working
// directory, or "".
func FindVersitygw() string {
	if p := os.Getenv("CAIRN_VERSITYGW_BIN"); p != "" {
		return p
	}
	dir, err := os.Getwd()
	for err == nil {
		p := filepath.Join(dir, ".tools", "versitygw-"+versitygwVersion, "versitygw")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
	return ""
}

// Start starts the gateway, the proxies and the nodes. On error everything
// started is stopped again.
func Start(ctx context.Context, o Options) (_ *Cluster, err error) {
	if o.Nodes < 1 {
		return nil, errors.New("chaosrun: need at least one node")
	}
	if o.Gateway == "" {
		return nil, errors.New("chaosrun: no versitygw binary (set CAIRN_VERSITYGW_BIN or run scripts/versitygw.sh)")
	}
	c := &Cluster{opts: o, hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 512}}}
	defer func() {
		if err != nil {
			c.Close() // c, not the nil result: the error returns drop it
		}
	}()
	if err := c.startGateway(ctx); err != nil {
		return nil, err
	}
	// toxiproxy's toxics log through zerolog's global logger, at trace
	// level: silence it (cairn itself does not use zerolog).
	zerolog.SetGlobalLevel(zerolog.Disabled)
	c.tox = toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	if o.FS {
		c.FSDir = filepath.Join(o.Dir, "fs-backend")
		if err := os.MkdirAll(c.FSDir, 0o755); err != nil {
			return nil, err
		}
	}
	for i := range o.Nodes {
		p := toxiproxy.NewProxy(c.tox, fmt.Sprintf("node%d-s3", i), "127.0.0.1:0", c.GWURL)
		if err := p.Start(); err != nil {
			return nil, fmt.Errorf("chaosrun: proxy for node %d: %w", i, err)
		}
		c.links = append(c.links, p)
		n := &Node{Index: i, DataDir: filepath.Join(o.Dir, fmt.Sprintf("node%d", i)), hc: c.hc}
		n.TraceFile = n.DataDir + "-traces.jsonl"
		n.args = []string{"serve", "--data-dir", n.DataDir, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
			"--log-level", "warn", "--node-id", fmt.Sprintf("node%d", i),
			"--trace-exporter", "json", "--trace-file", n.TraceFile,
			"--reconcile-interval", defaultReconcileIvl,
			"--backend", fmt.Sprintf("s3=s3://%s/%s?endpoint=%s&insecure=1", bucket, prefix, p.Listen)}
		if o.FS {
			n.args = append(n.args, "--backend", "disk=fs:"+c.FSDir)
		}
		if o.Chaos {
			sum := sha256.Sum256([]byte(adminToken))
			n.args = append(n.args, "--enable-chaos", "--chaos-seed", fmt.Sprint(o.Seed+uint64(i)+1),
				"--admin-token-sha256", hex.EncodeToString(sum[:]))
		}
		n.args = append(n.args, o.Args...)
		n.env = append([]string{"AWS_ACCESS_KEY_ID=" + accessKey, "AWS_SECRET_ACCESS_KEY=" + secretKey, "AWS_REGION=us-east-1"}, o.Env...)
		c.Nodes = append(c.Nodes, n)
	}
	for _, n := range c.Nodes {
		if err := n.start(ctx, o.Bin); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Cluster) startGateway(ctx context.Context) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	c.GWURL = l.Addr().String()
	l.Close() // versitygw could lose this port to another process; it then fails with its log
	dir := filepath.Join(c.opts.Dir, "s3")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cmd := exec.Command(c.opts.Gateway, versitygw.Args(accessKey, secretKey, c.GWURL, dir, versitygw.KeepAlive())...)
	gw := newProcess(cmd)
	if err := gw.Start(); err != nil {
		// Not kept: Close would stop a process that never started.
		return fmt.Errorf("chaosrun: versitygw %s: %w", c.opts.Gateway, err)
	}
	c.gw = gw
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", c.GWURL, time.Second)
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) || c.gw.Done() {
			return fmt.Errorf("chaosrun: versitygw not listening on %s: %v\n%s", c.GWURL, err, c.gw.Out)
		}
		time.Sleep(20 * time.Millisecond) // polling another process
	}
	mc, err := c.minio()
	if err != nil {
		return err
	}
	if err := mc.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
		return fmt.Errorf("chaosrun: make bucket: %w\n%s", err, c.gw.Out)
	}
	return nil
}

func (c *Cluster) minio() (*minio.Client, error) {
	return minio.New(c.GWURL, &minio.Options{Creds: credentials.NewStaticV4(accessKey, secretKey, ""),
		BucketLookup: minio.BucketLookupPath, Transport: c.hc.Transport})
}

// Close kills the nodes, stops the proxies and the gateway.
func (c *Cluster) Close() {
	for _, n := range c.Nodes {
		n.Kill()
	}
	for _, p := range c.links {
		p.Stop()
	}
	if c.gw != nil {
		c.gw.Stop()
	}
	c.hc.CloseIdleConnections()
}

// PeakRSS is the highest peak resident set (VmHWM) of the nodes running
// now; 0 if none could be read.
func (c *Cluster) PeakRSS() int64 {
	var peak int64
	for _, n := range c.Nodes {
		if n.Alive() {
			if v, err := procStatus(n.Pid(), "VmHWM:"); err == nil {
				peak = max(peak, v)
			}
		}
	}
	return peak
}

// Logs returns every node's stderr, for a failed run.
func (c *Cluster) Logs() string {
	var b strings.Builder
	for _, n := range c.Nodes {
		if n.proc != nil {
			fmt.Fprintf(&b, "--- node%d\n%s\n", n.Index, n.proc.Out)
		}
	}
	if c.gw != nil {
		fmt.Fprintf(&b, "--- versitygw\n%s\n", c.gw.Out)
	}
	return b.String()
}

// process is a child process whose output is kept.
type process = procout.Process

func newProcess(cmd *exec.Cmd) *process { return procout.NewProcess(cmd) }

var adminRE = regexp.MustCompile(`\(admin ([0-9.]+:[0-9]+)\)`)

// start runs the node and waits until it printed its URL, token and admin
// address.
func (n *Node) start(ctx context.Context, bin string) error {
	cmd := exec.Command(bin, n.args...)
	cmd.Env = append(append(os.Environ(), "GORACE=halt_on_error=1"), n.env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	p := newProcess(cmd)
	if err := p.Start(); err != nil {
		return fmt.Errorf("chaosrun: node%d: %w", n.Index, err)
	}
	n.proc = p
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	// Whatever happens below, keep reading lines until the process ends, so
	// the scanner goroutine never blocks on a send.
	defer func() {
		go func() {
			for range lines {
			}
		}()
	}()
	deadline := time.After(60 * time.Second)
	n.URL, n.Token = "", ""
	for n.URL == "" || n.Token == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				<-p.Exited()
				return fmt.Errorf("chaosrun: node%d exited before it was ready (%v):\n%s", n.Index, p.Err(), p.Out)
			}
			line = strings.TrimPrefix(line, "export ") // the lines are for pasting into a shell
			if v, ok := strings.CutPrefix(line, "CAIRN_URL="); ok {
				n.URL = v
			}
			if v, ok := strings.CutPrefix(line, "CAIRN_TOKEN="); ok {
				n.Token = v
			}
		case <-deadline:
			p.Kill()
			return fmt.Errorf("chaosrun: node%d printed no URL and token within 60s:\n%s", n.Index, p.Out)
		case <-ctx.Done():
			p.Kill()
			return ctx.Err()
		}
	}
	// stderr reaches p.Out through exec's copier goroutine, which can lag
	// behind the stdout lines read above: poll for the admin address.
	var m []string
	for wait := time.Now().Add(10 * time.Second); m == nil; time.Sleep(10 * time.Millisecond) {
		if m = adminRE.FindStringSubmatch(p.Out.String()); m == nil && time.Now().After(wait) {
			return fmt.Errorf("chaosrun: node%d: no admin address in its output:\n%s", n.Index, p.Out)
		}
	}
	n.Admin = "http://" + m[1]
	// The client library retries what it may (harnessRetry); each
	// attempt is recorded (countAttempts), so the history shows the
	// failures the retries absorbed as well as the requests' outcomes.
	n.client.Store(client.New(n.URL, n.Token, client.WithHTTPClient(&http.Client{Transport: countAttempts{traceparent{n.hc.Transport}}}),
		client.WithRetry(harnessRetry)))
	return nil
}

// Client is a client of the node's API as it runs now.
func (n *Node) Client() *client.Client { return n.client.Load() }

// Kill sends SIGKILL to the node and waits for it to die.
func (n *Node) Kill() {
	if n.proc != nil {
		n.proc.Kill()
	}
}

// Restart starts the node again on its data directory (after Kill), on
// the addresses it had, as a supervisor restarts a node: clients that
// retry reach the new process.
func (n *Node) Restart(ctx context.Context, bin string) error {
	n.Kill()
	for i := 0; i+1 < len(n.args); i++ {
		switch n.args[i] {
		case "--listen":
			n.args[i+1] = strings.TrimPrefix(n.URL, "http://")
		case "--admin-listen":
			n.args[i+1] = strings.TrimPrefix(n.Admin, "http://")
		}
	}
	return n.start(ctx, bin)
}

// Pid is the node process's id.
func (n *Node) Pid() int { return n.proc.Cmd.Process.Pid }

// Alive reports whether the process is running.
func (n *Node) Alive() bool { return n.proc != nil && !n.proc.Done() }

// Output is what the node wrote to stderr.
func (n *Node) Output() string { return n.proc.Out.String() }

// adminDo sends an admin request and decodes a JSON answer into out.
func (n *Node) adminDo(ctx context.Context, method, path string, out any) error {
	return n.adminBody(ctx, method, path, nil, out)
}

// adminBody is adminDo with a request body, sent with the admin token.
func (n *Node) adminBody(ctx context.Context, method, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, n.Admin+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := n.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	if out == nil {
		return nil
	}
	return jsonUnmarshal(b, out)
}
