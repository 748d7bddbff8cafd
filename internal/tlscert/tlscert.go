// Package tlscert serves a TLS certificate that follows its files, so an
// operator (or certbot, or a secret mount) can replace the certificate of a
// running node without a restart.
//
// A [Reloader] holds the key pair it last loaded and hands it to every
// handshake through tls.Config.GetCertificate. It loads the files again
// when told to ([Reloader.Reload], on SIGHUP) and when a handshake finds
// that either file's modification time or size changed; handshakes look at
// the files at most once per [Options.CheckEvery].
//
// # Sharp edges
//
// A reload that fails (a missing file, a key that does not match the
// certificate, as when the two are replaced one after the other) keeps the
// previous certificate, logs an error and reports it to [Options.OnReload].
// After a failed attempt the files are tried again only once they change
// again (or on the next Reload), so a half-written pair is retried when the
// second file lands, and a broken one is not logged on every handshake.
package tlscert

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"log/slog"
	"math/big"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCheckEvery is how often handshakes look at the files by default.
const DefaultCheckEvery = 5 * time.Second

// Options configure a Reloader.
type Options struct {
	// CertFile and KeyFile are PEM files as tls.LoadX509KeyPair reads them;
	// CertFile may hold intermediate certificates after the leaf.
	CertFile, KeyFile string
	// CheckEvery is the least time between two looks at the files from a
	// handshake [DefaultCheckEvery].
	CheckEvery time.Duration
	// Now is the clock [time.Now].
	Now func() time.Time
	// Logger receives a line per reload [slog.Default()].
	Logger *slog.Logger
	// OnReload, when not nil, is called after every reload attempt after
	// the first load: leaf is the certificate now served (the new one, or
	// the previous one when err is not nil).
	OnReload func(leaf *x509.Certificate, err error)
}

// Reloader is a key pair loaded from files and reloaded when they change.
// It is safe for concurrent use.
type Reloader struct {
	opts Options
	cur  atomic.Pointer[tls.Certificate] // what handshakes are given; Leaf is set

	mu        sync.Mutex // guards the following and serializes reloads
	lastCheck time.Time  // when a handshake last looked at the files
	tried     stamp      // the files as last loaded or tried
}

// stamp identifies a version of the two files.
type stamp struct {
	certMod, keyMod   time.Time
	certSize, keySize int64
}

// New loads the key pair. The error names the file at fault.
func New(o Options) (*Reloader, error) {
	if o.CheckEvery <= 0 {
		o.CheckEvery = DefaultCheckEvery
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	r := &Reloader{opts: o}
	st, _ := r.stat()
	cert, err := r.load()
	if err != nil {
		return nil, err
	}
	r.cur.Store(cert)
	r.tried = st
	r.lastCheck = o.Now()
	r.warnExpiry(cert.Leaf)
	return r, nil
}

// expirySoon is how close to its NotAfter a certificate loaded is warned
// about, as the documented alert on the expiry metric is.
const expirySoon = 14 * 24 * time.Hour

// warnExpiry logs a certificate just loaded that has expired or soon will:
// clients refuse an expired one, and nothing else would say so until they do.
func (r *Reloader) warnExpiry(leaf *x509.Certificate) {
	now := r.opts.Now()
	switch {
	case now.After(leaf.NotAfter):
		r.opts.Logger.Warn("TLS certificate has expired: clients will refuse it", "cert_file", r.opts.CertFile,
			"serial", serialHex(leaf.SerialNumber), "not_after", leaf.NotAfter)
	case leaf.NotAfter.Sub(now) < expirySoon:
		r.opts.Logger.Warn("TLS certificate expires soon", "cert_file", r.opts.CertFile,
			"serial", serialHex(leaf.SerialNumber), "not_after", leaf.NotAfter)
	}
}

// serialHex writes a serial number as 'openssl x509 -noout -serial' does:
// upper-case hex, whole bytes.
func serialHex(n *big.Int) string {
	if n.Sign() == 0 {
		return "00"
	}
	return strings.ToUpper(hex.EncodeToString(n.Bytes()))
}

// Config returns a server configuration that serves the reloader's
// certificate with TLS 1.2 or later, over HTTP/1.1 only (the listeners'
// timeouts and body limits are per connection, which HTTP/2 would share
// among streams).
func (r *Reloader) Config() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: r.GetCertificate,
		NextProtos:     []string{"http/1.1"},
	}
}

// Leaf is the certificate served now.
func (r *Reloader) Leaf() *x509.Certificate { return r.cur.Load().Leaf }

// GetCertificate is tls.Config.GetCertificate: the current certificate,
// reloaded first if the files changed and CheckEvery has passed since the
// last look. A handshake never waits for another one's look at the files.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if r.mu.TryLock() {
		now := r.opts.Now()
		if now.Sub(r.lastCheck) >= r.opts.CheckEvery {
			r.lastCheck = now
			if st, err := r.stat(); err == nil && st != r.tried {
				r.reloadLocked("files changed", st)
			}
		}
		r.mu.Unlock()
	}
	return r.cur.Load(), nil
}

// Reload reads the files again now, whether or not they changed. On
// failure the previous certificate is kept and the error returned.
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, _ := r.stat() // a missing file fails the load below, which says so
	return r.reloadLocked("reload requested", st)
}

func (r *Reloader) reloadLocked(why string, st stamp) error {
	r.tried = st
	cert, err := r.load()
	log := r.opts.Logger.With("cert_file", r.opts.CertFile, "key_file", r.opts.KeyFile, "trigger", why)
	if err != nil {
		old := r.cur.Load().Leaf
		log.Error("TLS certificate reload failed; serving the previous certificate",
			"err", err, "serial", serialHex(old.SerialNumber), "not_after", old.NotAfter)
		if r.opts.OnReload != nil {
			r.opts.OnReload(old, err)
		}
		return err
	}
	r.cur.Store(cert)
	log.Info("TLS certificate reloaded", "serial", serialHex(cert.Leaf.SerialNumber), "not_after", cert.Leaf.NotAfter)
	r.warnExpiry(cert.Leaf)
	if r.opts.OnReload != nil {
		r.opts.OnReload(cert.Leaf, nil)
	}
	return nil
}

// load reads and checks the key pair.
func (r *Reloader) load() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(r.opts.CertFile, r.opts.KeyFile)
	if err != nil {
		return nil, err // names the file it could not read
	}
	if cert.Leaf == nil { // LoadX509KeyPair fills it since Go 1.23
		return nil, errors.New("no leaf certificate")
	}
	return &cert, nil
}

func (r *Reloader) stat() (stamp, error) {
	c, err := os.Stat(r.opts.CertFile)
	if err != nil {
		return stamp{}, err
	}
	k, err := os.Stat(r.opts.KeyFile)
	if err != nil {
		return stamp{}, err
	}
	return stamp{certMod: c.ModTime(), keyMod: k.ModTime(), certSize: c.Size(), keySize: k.Size()}, nil
}
