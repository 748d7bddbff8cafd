package replbench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/cairnstore/cairn/internal/backend/s3/versitygw"
	"github.com/cairnstore/cairn/internal/procout"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// The S3 server's bucket and credentials, the tenant and the tokens the
// nodes are configured with (the same on every node, so one client speaks
// to all of them).
const (
	bucket     = "cairn"
	accessKey  = "replbench-access"
	secretKey  = "replbench-secret-key"
	tenant     = "demo"
	token      = "replbench-tenant-token"
	adminToken = "replbench-admin-token"
)

// cluster is one versitygw and the cairn nodes sharing it as their only
// backend, all on loopback. Nodes run with default settings but for the
// addresses, the data directory, the node id and the tenant's token.
type cluster struct {
	bin, dir string
	gw       *process
	gwAddr   string
	backend  string // the --backend value every node gets
	nodes    []*node
	hc       *http.Client
	extra    []string // extra serve flags (Options.Args)
}

// node is one 'cairn serve' process.
type node struct {
	name    string
	dataDir string
	proc    *process
	url     string // http://127.0.0.1:PORT
	admin   string // http://127.0.0.1:PORT
}

func startCluster(ctx context.Context, bin, gateway, dir string, extra []string) (c *cluster, err error) {
	c = &cluster{bin: bin, dir: dir, extra: extra,
		hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 512}}}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	if err := c.startGateway(ctx, gateway); err != nil {
		return nil, err
	}
	c.backend = fmt.Sprintf("s3=s3://%s/bench?endpoint=%s&insecure=1", bucket, c.gwAddr)
	return c, nil
}

func (c *cluster) startGateway(ctx context.Context, gateway string) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	c.gwAddr = l.Addr().String()
	l.Close() // versitygw could lose this port to another process; it then fails with its log
	dir := filepath.Join(c.dir, "s3")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	c.gw = newProcess(exec.Command(gateway, versitygw.Args(accessKey, secretKey, c.gwAddr, dir, versitygw.KeepAlive())...))
	if err := c.gw.Start(); err != nil {
		return fmt.Errorf("replbench: versitygw: %w", err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) { // polling another process
		conn, err := net.DialTimeout("tcp", c.gwAddr, time.Second)
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) || c.gw.Done() {
			return fmt.Errorf("replbench: versitygw not listening on %s: %v\n%s", c.gwAddr, err, c.gw.Out)
		}
	}
	mc, err := minio.New(c.gwAddr, &minio.Options{Creds: credentials.NewStaticV4(accessKey, secretKey, ""),
		BucketLookup: minio.BucketLookupPath, Transport: c.hc.Transport})
	if err != nil {
		return err
	}
	if err := mc.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
		return fmt.Errorf("replbench: make bucket: %w\n%s", err, c.gw.Out)
	}
	return nil
}

var servingRE = regexp.MustCompile(`serving (http://[0-9.]+:[0-9]+) \(admin ([0-9.]+:[0-9]+)\)`)

// addNode starts a node on a new, empty data directory and waits until it
// serves.
func (c *cluster) addNode(ctx context.Context, name string) (*node, error) {
	n := &node{name: name, dataDir: filepath.Join(c.dir, name)}
	sum := sha256.Sum256([]byte(token))
	asum := sha256.Sum256([]byte(adminToken))
	args := []string{"serve", "--data-dir", n.dataDir, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
		"--log-level", "warn", "--node-id", name, "--backend", c.backend,
		"--tenant", tenant + ":" + hex.EncodeToString(sum[:]), "--admin-token-sha256", hex.EncodeToString(asum[:])}
	cmd := exec.Command(c.bin, append(args, c.extra...)...)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+accessKey, "AWS_SECRET_ACCESS_KEY="+secretKey, "AWS_REGION=us-east-1")
	n.proc = newProcess(cmd)
	if err := n.proc.Start(); err != nil {
		return nil, fmt.Errorf("replbench: %s: %w", name, err)
	}
	c.nodes = append(c.nodes, n)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) { // polling another process
		if m := servingRE.FindStringSubmatch(n.proc.Out.String()); m != nil {
			n.url, n.admin = m[1], "http://"+m[2]
			return n, nil
		}
		if n.proc.Done() || time.Now().After(deadline) || ctx.Err() != nil {
			n.proc.Kill()
			return nil, fmt.Errorf("replbench: %s did not start:\n%s", name, n.proc.Out)
		}
	}
}

func (c *cluster) close() {
	for _, n := range c.nodes {
		n.proc.Kill()
	}
	if c.gw != nil {
		c.gw.Stop()
	}
	c.hc.CloseIdleConnections()
}

// peakRSS is the node's peak resident set (VmHWM) in bytes.
func (n *node) peakRSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", n.proc.Cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("replbench: no VmHWM in /proc status")
}

// do sends a request with the tenant's token (admin: the admin token) and
// returns the response with its body read.
func (c *cluster) do(ctx context.Context, method, url string, body []byte, hdr http.Header, admin bool) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	tok := token
	if admin {
		tok = adminToken
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// put stores body under key on n and returns its ETag.
func (c *cluster) put(ctx context.Context, n *node, key string, body []byte) (string, error) {
	resp, b, err := c.do(ctx, "PUT", n.url+"/v1/tenants/"+tenant+"/docs/"+key, body, nil, false)
	if err != nil {
		return "", err
	}
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("PUT %s on %s: %s: %s", key, n.name, resp.Status, bytes.TrimSpace(b))
	}
	return resp.Header.Get("ETag"), nil
}

// hasETag reports whether n serves key with etag from its own store (not
// read through from the backend).
func (c *cluster) hasETag(ctx context.Context, n *node, key, etag string) (bool, error) {
	resp, _, err := c.do(ctx, "GET", n.url+"/v1/tenants/"+tenant+"/docs/"+key, nil,
		http.Header{"If-None-Match": {etag}}, false)
	if err != nil {
		return false, err
	}
	return resp.StatusCode == http.StatusNotModified && resp.Header.Get("X-Cairn-Read-Through") == "", nil
}

// ingest stores lines (NDJSON with an "id" field) on n.
func (c *cluster) ingest(ctx context.Context, n *node, lines []byte) error {
	resp, b, err := c.do(ctx, "POST", n.url+"/v1/tenants/"+tenant+"/ingest?key_field=id", lines,
		http.Header{"Content-Type": {"application/x-ndjson"}}, false)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("ingest on %s: %s: %s", n.name, resp.Status, bytes.TrimSpace(b))
	}
	return nil
}

// ready reports whether n's /readyz answers 200 (started, caught up).
func (c *cluster) ready(ctx context.Context, n *node) bool {
	resp, _, err := c.do(ctx, "GET", n.admin+"/readyz", nil, nil, true)
	return err == nil && resp.StatusCode == http.StatusOK
}

// lag returns n's replication lag to its backend in seconds.
func (c *cluster) lag(ctx context.Context, n *node) (float64, error) {
	var st struct {
		Backends []struct {
			LagSeconds float64 `json:"lag_seconds"`
		} `json:"backends"`
	}
	if err := c.adminJSON(ctx, n, "GET", "/v1/admin/reconcile", &st); err != nil {
		return 0, err
	}
	var lag float64
	for _, b := range st.Backends {
		lag = max(lag, b.LagSeconds)
	}
	return lag, nil
}

func (c *cluster) adminJSON(ctx context.Context, n *node, method, path string, out any) error {
	resp, b, err := c.do(ctx, method, n.admin+path, nil, nil, true)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s on %s: %s: %s", method, path, n.name, resp.Status, bytes.TrimSpace(b))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

// process is a child process whose output is kept.
type process = procout.Process

func newProcess(cmd *exec.Cmd) *process { return procout.NewProcess(cmd) }

// feedView is what one node's reconcile status says of the replication
// between the nodes: its upload lag, and per tenant its feed.
type feedView struct {
	uploadLag float64 // seconds: the oldest change not yet uploaded
	published uint64  // this node's last feed seq of the tenant
	pending   int     // uploaded changes waiting for a feed object
	peerLag   float64 // seconds: the largest lag of a peer's feed object read
	peerSeq   uint64  // the largest cursor into a peer's feed
}

// feedView reads n's reconcile status for the tenant.
func (c *cluster) feedView(ctx context.Context, n *node) (feedView, error) {
	var st struct {
		Backends []struct {
			LagSeconds float64 `json:"lag_seconds"`
			Tenants    []struct {
				Tenant string `json:"tenant"`
				Feed   *struct {
					Published uint64 `json:"published"`
					Pending   int    `json:"pending"`
					Peers     map[string]struct {
						Cursor     uint64  `json:"cursor"`
						LagSeconds float64 `json:"lag_seconds"`
					} `json:"peers"`
				} `json:"feed"`
			} `json:"tenants"`
		} `json:"backends"`
	}
	var v feedView
	if err := c.adminJSON(ctx, n, "GET", "/v1/admin/reconcile", &st); err != nil {
		return v, err
	}
	for _, b := range st.Backends {
		v.uploadLag = max(v.uploadLag, b.LagSeconds)
		for _, t := range b.Tenants {
			if t.Tenant != tenant || t.Feed == nil {
				continue
			}
			v.published = max(v.published, t.Feed.Published)
			v.pending += t.Feed.Pending
			for _, p := range t.Feed.Peers {
				v.peerLag = max(v.peerLag, p.LagSeconds)
				v.peerSeq = max(v.peerSeq, p.Cursor)
			}
		}
	}
	return v, nil
}
