package tlscert_test

import (
	"bytes"
	"crypto/tls"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cairnstore/cairn/internal/tlscert"
	"github.com/cairnstore/cairn/internal/tlscert/tlscerttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fixture is a reloader on a certificate of serial 1, a clock the test
// moves, and a record of its log and OnReload calls.
type fixture struct {
	ca                *tlscerttest.CA
	certFile, keyFile string
	now               time.Time
	log               bytes.Buffer
	outcomes          []error
	r                 *tlscert.Reloader
}

func newFixture(t *testing.T) *fixture { return newFixtureAt(t, time.Unix(1_800_000_000, 0)) }

// newFixtureAt is newFixture with its clock at now. The certificates
// issued are valid from an hour before the test ran to a day after.
func newFixtureAt(t *testing.T, now time.Time) *fixture {
	dir := t.TempDir()
	f := &fixture{ca: tlscerttest.NewCA(t, dir), certFile: filepath.Join(dir, "cert.pem"),
		keyFile: filepath.Join(dir, "key.pem"), now: now}
	f.ca.Issue(t, 1, f.certFile, f.keyFile)
	r, err := tlscert.New(tlscert.Options{CertFile: f.certFile, KeyFile: f.keyFile, CheckEvery: 5 * time.Second,
		Now:      func() time.Time { return f.now },
		Logger:   slog.New(slog.NewTextHandler(&f.log, nil)),
		OnReload: func(_ tlscert.Served, err error) { f.outcomes = append(f.outcomes, err) },
	})
	if err != nil {
		t.Fatal(err)
	}
	f.r = r
	return f
}

// touch gives both files a modification time of their own, so a change is
// seen whatever the file system's timestamp resolution.
func (f *fixture) touch(t *testing.T, at time.Time) {
	for _, p := range []string{f.certFile, f.keyFile} {
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) served(t *testing.T) int64 {
	t.Helper()
	c, err := f.r.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	return c.Leaf.SerialNumber.Int64()
}

// TestReloadOnFileChange: replaced files are served from the first
// handshake after CheckEvery, not before.
func TestReloadOnFileChange(t *testing.T) {
	f := newFixture(t)
	f.ca.Issue(t, 2, f.certFile, f.keyFile)
	f.touch(t, f.now.Add(time.Hour))
	f.now = f.now.Add(time.Second)
	if got := f.served(t); got != 1 {
		t.Fatalf("1s after the files changed: serial %d, want 1 (the files are looked at every 5s)", got)
	}
	f.now = f.now.Add(5 * time.Second)
	if got := f.served(t); got != 2 {
		t.Fatalf("after CheckEvery: serial %d, want 2", got)
	}
	if len(f.outcomes) != 1 || f.outcomes[0] != nil {
		t.Errorf("OnReload outcomes %v, want one success", f.outcomes)
	}
	f.now = f.now.Add(time.Minute)
	f.served(t)
	if len(f.outcomes) != 1 {
		t.Errorf("unchanged files were loaded again: outcomes %v", f.outcomes)
	}
}

// TestReloadKeepsCertificateOnFailure: a bad key file, by Reload or by a
// change of the files, keeps the previous certificate, logs an error and
// reports it; a half-replaced pair is retried when the other file lands.
func TestReloadKeepsCertificateOnFailure(t *testing.T) {
	f := newFixture(t)
	if err := os.WriteFile(f.keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.r.Reload(); err == nil {
		t.Fatal("Reload with a garbage key file succeeded")
	}
	if got := f.served(t); got != 1 {
		t.Fatalf("after a failed reload: serial %d, want 1", got)
	}
	if !strings.Contains(f.log.String(), "level=ERROR") || !strings.Contains(f.log.String(), "TLS certificate reload failed") {
		t.Errorf("no error logged for the failed reload:\n%s", f.log.String())
	}

	// The certificate replaced, the key not yet: the pair does not match.
	dir := t.TempDir()
	nextCert, nextKey := filepath.Join(dir, "c"), filepath.Join(dir, "k")
	f.ca.Issue(t, 3, nextCert, nextKey)
	copyFile(t, nextCert, f.certFile)
	f.touch(t, f.now.Add(time.Hour))
	f.now = f.now.Add(10 * time.Second)
	if got := f.served(t); got != 1 {
		t.Fatalf("with a mismatched pair: serial %d, want 1", got)
	}
	f.now = f.now.Add(10 * time.Second)
	f.served(t) // the same broken files are not tried again
	copyFile(t, nextKey, f.keyFile)
	f.touch(t, f.now.Add(2*time.Hour))
	f.now = f.now.Add(10 * time.Second)
	if got := f.served(t); got != 3 {
		t.Fatalf("once the key landed too: serial %d, want 3", got)
	}
	if len(f.outcomes) != 3 || f.outcomes[0] == nil || f.outcomes[1] == nil || f.outcomes[2] != nil {
		t.Errorf("OnReload outcomes %v, want failure, failure, success", f.outcomes)
	}
}

func TestNewNamesMissingFile(t *testing.T) {
	_, err := tlscert.New(tlscert.Options{CertFile: "/nonexistent/cert.pem", KeyFile: "/nonexistent/key.pem"})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/cert.pem") {
		t.Fatalf("New on a missing file: %v; want an error naming it", err)
	}
}

// TestConfigVersions: a real handshake with Config's settings succeeds with
// TLS 1.2 and 1.3 and is refused below 1.2.
func TestConfigVersions(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		max uint16
		ok  bool
	}{{tls.VersionTLS10, false}, {tls.VersionTLS11, false}, {tls.VersionTLS12, true}, {tls.VersionTLS13, true}} {
		cc := f.ca.ClientConfig()
		cc.MinVersion, cc.MaxVersion = tls.VersionTLS10, c.max
		cc.ServerName = "127.0.0.1"
		cerr, serr := handshake(f.r.Config(), cc)
		if (cerr == nil) != c.ok || (serr == nil) != c.ok {
			t.Errorf("client up to %s: client %v, server %v; want success %v", tls.VersionName(c.max), cerr, serr, c.ok)
		}
	}
}

// handshake runs a TLS handshake over an in-memory connection and returns
// both sides' errors.
func handshake(server, client *tls.Config) (cerr, serr error) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	var wg sync.WaitGroup
	wg.Go(func() {
		serr = tls.Server(a, server).Handshake()
		a.Close() // a refused client is waiting for an answer
	})
	cerr = tls.Client(b, client).Handshake()
	b.Close()
	wg.Wait()
	return cerr, serr
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestExpiryWarned: a certificate loaded after its NotAfter, or within 14
// days of it, is warned about at once, with its serial written as openssl
// writes it.
func TestExpiryWarned(t *testing.T) {
	f := newFixture(t) // its clock is past the certificate's NotAfter
	if out := f.log.String(); !strings.Contains(out, "TLS certificate has expired") || !strings.Contains(out, "serial=01") {
		t.Errorf("log %q: want the expired certificate warned about, serial 01", out)
	}
	var log bytes.Buffer
	if _, err := tlscert.New(tlscert.Options{CertFile: f.certFile, KeyFile: f.keyFile,
		Logger: slog.New(slog.NewTextHandler(&log, nil))}); err != nil {
		t.Fatal(err)
	}
	if out := log.String(); !strings.Contains(out, "TLS certificate expires soon") { // it lasts a day
		t.Errorf("log %q: want a certificate of a day warned about", out)
	}
}

// TestReloadRefusesDatesClientsRefuse: while the certificate served is
// valid, one that clients would refuse for its dates (not valid yet,
// expired, an expired intermediate) is a failed reload, reported and
// logged as one; one not valid yet is loaded by the first handshake once
// it is. The expiry served is the chain's earliest.
func TestReloadRefusesDatesClientsRefuse(t *testing.T) {
	now := time.Now()
	f := newFixtureAt(t, now)
	inter := f.ca.Intermediate(t, now.Add(-time.Hour), now.Add(-time.Minute))
	for _, c := range []struct {
		name  string
		issue func(serial int64)
		want  string
	}{
		{"not valid yet", func(n int64) { f.ca.IssueDated(t, n, f.certFile, f.keyFile, now.Add(time.Hour), now.Add(48*time.Hour)) }, "is not valid until "},
		{"expired", func(n int64) {
			f.ca.IssueDated(t, n, f.certFile, f.keyFile, now.Add(-48*time.Hour), now.Add(-time.Minute))
		}, "(leaf): clients would refuse it"},
		{"expired intermediate", func(n int64) { inter.Issue(t, n, f.certFile, f.keyFile) }, `intermediate "CN=cairn test intermediate"`},
	} {
		c.issue(2)
		err := f.r.Reload()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Reload: %v; want a refusal naming %q", c.name, err, c.want)
		}
		if got := f.served(t); got != 1 {
			t.Errorf("%s: serial %d served, want 1", c.name, got)
		}
	}
	if n := len(f.outcomes); n != 3 || f.outcomes[0] == nil || f.outcomes[1] == nil || f.outcomes[2] == nil {
		t.Errorf("OnReload outcomes %v, want three failures", f.outcomes)
	}
	if strings.Count(f.log.String(), "TLS certificate reload failed") != 3 {
		t.Errorf("log %q: want three failed reloads", f.log.String())
	}

	// Not valid yet, then valid: no change of the files is needed.
	f.ca.IssueDated(t, 3, f.certFile, f.keyFile, now.Add(time.Hour), now.Add(48*time.Hour))
	f.touch(t, now.Add(time.Hour))
	f.now = now.Add(10 * time.Second)
	if got := f.served(t); got != 1 {
		t.Fatalf("a certificate not valid yet: serial %d served, want 1", got)
	}
	f.now = now.Add(time.Hour + 10*time.Second)
	if got := f.served(t); got != 3 {
		t.Fatalf("once valid: serial %d served, want 3", got)
	}

	// A chain whose intermediate expires first is served by that date.
	inter = f.ca.Intermediate(t, now.Add(-time.Hour), now.Add(3*time.Hour))
	inter.Issue(t, 4, f.certFile, f.keyFile)
	if err := f.r.Reload(); err != nil {
		t.Fatal(err)
	}
	if sv := f.r.Served(); !sv.NotAfter.Equal(inter.Cert.NotAfter) || !strings.Contains(sv.Limit, "intermediate") {
		t.Errorf("served %v by %s; want the intermediate's NotAfter %v", sv.NotAfter, sv.Limit, inter.Cert.NotAfter)
	}
}

// TestMissingFileReported: a certificate file removed is a failed reload at
// the next look, reported once, and the file put back is loaded again.
func TestMissingFileReported(t *testing.T) {
	f := newFixture(t)
	saved, err := os.ReadFile(f.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(f.keyFile); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		f.now = f.now.Add(10 * time.Second)
		if got := f.served(t); got != 1 {
			t.Fatalf("with the key file gone: serial %d served, want 1", got)
		}
	}
	if len(f.outcomes) != 1 || f.outcomes[0] == nil || !strings.Contains(f.outcomes[0].Error(), "no such file") {
		t.Fatalf("OnReload outcomes %v, want one failure naming the missing file", f.outcomes)
	}
	if err := os.WriteFile(f.keyFile, saved, 0o600); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(10 * time.Second)
	f.served(t)
	if len(f.outcomes) != 2 || f.outcomes[1] != nil {
		t.Errorf("OnReload outcomes %v, want the file put back loaded", f.outcomes)
	}
}

// TestResumptionFollowsReload: a client that resumes its session after a
// reload gets a full handshake and the new certificate, with TLS 1.2 and
// 1.3; before the reload it resumes.
func TestResumptionFollowsReload(t *testing.T) {
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		f := newFixtureAt(t, time.Now())
		server := f.r.Config()
		client := f.ca.ClientConfig()
		client.ServerName, client.MinVersion, client.MaxVersion = "127.0.0.1", v, v
		client.ClientSessionCache = tls.NewLRUClientSessionCache(4)
		first := connect(t, server, client)
		again := connect(t, server, client)
		if first.DidResume || !again.DidResume {
			t.Fatalf("%s: resumed %v then %v; want a full handshake, then a resumed one", tls.VersionName(v), first.DidResume, again.DidResume)
		}
		f.ca.Issue(t, 2, f.certFile, f.keyFile)
		if err := f.r.Reload(); err != nil {
			t.Fatal(err)
		}
		after := connect(t, server, client)
		if after.DidResume || after.PeerCertificates[0].SerialNumber.Int64() != 2 {
			t.Errorf("%s after a reload: resumed %v, serial %v; want a full handshake and serial 2", tls.VersionName(v),
				after.DidResume, after.PeerCertificates[0].SerialNumber)
		}
	}
}

// connect runs a handshake and one byte from the server, which a TLS 1.3
// client reads its session ticket before, and returns the client's state.
func connect(t *testing.T, server, client *tls.Config) tls.ConnectionState {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	var wg sync.WaitGroup
	var serr error
	wg.Go(func() {
		s := tls.Server(a, server)
		if serr = s.Handshake(); serr == nil {
			_, serr = s.Write([]byte{1})
		}
		a.Close()
	})
	c := tls.Client(b, client)
	var one [1]byte
	_, cerr := c.Read(one[:])
	state := c.ConnectionState()
	b.Close()
	wg.Wait()
	if cerr != nil || serr != nil {
		t.Fatalf("handshake: client %v, server %v", cerr, serr)
	}
	return state
}
