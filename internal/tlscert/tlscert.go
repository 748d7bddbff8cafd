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
// So does a certificate that clients would refuse for its dates (not yet
// valid, expired, or issued by an intermediate given with it that has
// expired) while the one served is valid. After a failed attempt the files are tried again only
// once they change again (or on the next Reload), so a half-written pair is
// retried when the second file lands, and a broken one is not logged on
// every handshake; a certificate refused as not valid yet is tried again
// by the first handshake once it is. A file that disappears is a failed
// reload when a handshake next looks, reported once.
//
// A session resumed from a ticket issued before a reload would skip the new
// certificate: tickets carry the generation of the certificate they were
// issued under, and one of an earlier generation is not resumed.
package tlscert

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"slices"
	"strconv"
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
	// the first load: served is the certificate now served (the new one, or
	// the previous one when err is not nil).
	OnReload func(served Served, err error)
}

// Served describes a certificate chain as clients judge its dates.
type Served struct {
	Leaf *x509.Certificate
	// NotBefore and NotAfter bound when the leaf and the intermediate that
	// issued it (the certificate after it in the file, if it did) are both
	// valid. Certificates further up are left out: a bundle may carry an
	// expired cross-signature that clients build their path around.
	NotBefore, NotAfter time.Time
	// Limit names the certificate whose date is NotAfter: "leaf", or the
	// subject of the issuing intermediate.
	Limit string
}

// validAt reports whether clients accept the chain's dates at t.
func (s Served) validAt(t time.Time) bool { return !t.Before(s.NotBefore) && !t.After(s.NotAfter) }

// served reads the dates of cert's leaf and of its issuer, when the file
// gives it.
func served(cert *tls.Certificate) (Served, error) {
	s := Served{Leaf: cert.Leaf, NotBefore: cert.Leaf.NotBefore, NotAfter: cert.Leaf.NotAfter, Limit: "leaf"}
	if len(cert.Certificate) < 2 {
		return s, nil
	}
	c, err := x509.ParseCertificate(cert.Certificate[1])
	if err != nil {
		return s, fmt.Errorf("the certificate after the leaf: %w", err)
	}
	if cert.Leaf.CheckSignatureFrom(c) != nil {
		return s, nil // not the leaf's issuer: clients find their own path
	}
	if c.NotBefore.After(s.NotBefore) {
		s.NotBefore = c.NotBefore
	}
	if c.NotAfter.Before(s.NotAfter) {
		s.NotAfter, s.Limit = c.NotAfter, "intermediate "+strconv.Quote(c.Subject.String())
	}
	return s, nil
}

// Reloader is a key pair loaded from files and reloaded when they change.
// It is safe for concurrent use.
type Reloader struct {
	opts Options
	cur  atomic.Pointer[loaded] // what handshakes are given

	mu        sync.Mutex // guards the following and serializes reloads
	lastCheck time.Time  // when a handshake last looked at the files
	tried     stamp      // the files as last loaded or tried; zero after a failed stat
	// notYet: the files tried hold a certificate refused as not valid yet,
	// tried again from this time on; zero otherwise.
	notYet time.Time
}

// loaded is a certificate served and the generation of its load, which
// session tickets carry.
type loaded struct {
	cert   *tls.Certificate
	served Served
	gen    uint64
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
	l, err := r.load()
	if err != nil {
		return nil, err
	}
	r.cur.Store(l)
	r.tried = st
	r.lastCheck = o.Now()
	r.warnDates(l.served)
	return r, nil
}

// expirySoon is how close to its NotAfter a certificate loaded is warned
// about, as the documented alert on the expiry metric is.
const expirySoon = 14 * 24 * time.Hour

// warnDates logs a certificate just loaded that clients refuse for its
// dates, or soon will: nothing else would say so until they do.
func (r *Reloader) warnDates(sv Served) {
	now := r.opts.Now()
	log := r.opts.Logger.With("cert_file", r.opts.CertFile, "serial", serialHex(sv.Leaf.SerialNumber))
	switch {
	case now.Before(sv.NotBefore):
		log.Warn("TLS certificate is not valid yet: clients will refuse it", "not_before", sv.NotBefore)
	case now.After(sv.NotAfter):
		log.Warn("TLS certificate has expired: clients will refuse it", "not_after", sv.NotAfter, "expired", sv.Limit)
	case sv.NotAfter.Sub(now) < expirySoon:
		log.Warn("TLS certificate expires soon", "not_after", sv.NotAfter, "expires", sv.Limit)
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
// among streams). It resumes only sessions issued under the certificate
// served now.
func (r *Reloader) Config() *tls.Config {
	c := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: r.GetCertificate,
		NextProtos:     []string{"http/1.1"},
	}
	c.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		ss.Extra = append(ss.Extra, r.ticketGen())
		return c.EncryptTicket(cs, ss)
	}
	c.UnwrapSession = func(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
		ss, err := c.DecryptTicket(identity, cs)
		if ss == nil || err != nil {
			return ss, err
		}
		want := r.ticketGen()
		if !slices.ContainsFunc(ss.Extra, func(e []byte) bool { return bytes.Equal(e, want) }) {
			return nil, nil // issued under an earlier certificate: a full handshake
		}
		return ss, nil
	}
	return c
}

// ticketGen is the entry of a session ticket's Extra that holds the
// generation of the certificate served now, which a ticket issued under an
// earlier one lacks.
func (r *Reloader) ticketGen() []byte {
	return binary.BigEndian.AppendUint64([]byte("cairn-tls-gen\x00"), r.cur.Load().gen)
}

// Served is the certificate chain served now.
func (r *Reloader) Served() Served { return r.cur.Load().served }

// GetCertificate is tls.Config.GetCertificate: the current certificate,
// reloaded first if the files changed and CheckEvery has passed since the
// last look. A handshake never waits for another one's look at the files.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if r.mu.TryLock() {
		now := r.opts.Now()
		if now.Sub(r.lastCheck) >= r.opts.CheckEvery {
			r.lastCheck = now
			st, err := r.stat()
			switch {
			case err != nil && r.tried != (stamp{}):
				// Gone (or unreadable) since the last look: reported once,
				// and loaded again when it is back.
				r.tried = stamp{}
				r.failed("files changed", err)
			case err == nil && st != r.tried:
				r.reloadLocked("files changed", st)
			case err == nil && !r.notYet.IsZero() && !now.Before(r.notYet):
				r.reloadLocked("certificate now valid", st)
			}
		}
		r.mu.Unlock()
	}
	return r.cur.Load().cert, nil
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
	r.tried, r.notYet = st, time.Time{}
	l, err := r.load()
	if err != nil {
		return r.failed(why, err)
	}
	now := r.opts.Now()
	if cur := r.cur.Load().served; !l.served.validAt(now) && cur.validAt(now) {
		if now.Before(l.served.NotBefore) && l.served.NotBefore.Before(l.served.NotAfter) {
			r.notYet = l.served.NotBefore
		}
		state := "expired at " + l.served.NotAfter.UTC().Format(time.RFC3339) + " (" + l.served.Limit + ")"
		if now.Before(l.served.NotBefore) {
			state = "not valid until " + l.served.NotBefore.UTC().Format(time.RFC3339)
		}
		return r.failed(why, fmt.Errorf("the certificate in %s (serial %s) is %s: clients would refuse it",
			r.opts.CertFile, serialHex(l.cert.Leaf.SerialNumber), state))
	}
	l.gen = r.cur.Load().gen + 1
	r.cur.Store(l)
	r.opts.Logger.Info("TLS certificate reloaded", "cert_file", r.opts.CertFile, "key_file", r.opts.KeyFile, "trigger", why,
		"serial", serialHex(l.cert.Leaf.SerialNumber), "not_after", l.served.NotAfter)
	r.warnDates(l.served)
	if r.opts.OnReload != nil {
		r.opts.OnReload(l.served, nil)
	}
	return nil
}

// failed logs and reports a reload that keeps the previous certificate.
func (r *Reloader) failed(why string, err error) error {
	old := r.cur.Load()
	r.opts.Logger.Error("TLS certificate reload failed; serving the previous certificate",
		"cert_file", r.opts.CertFile, "key_file", r.opts.KeyFile, "trigger", why,
		"err", err, "serial", serialHex(old.cert.Leaf.SerialNumber), "not_after", old.served.NotAfter)
	if r.opts.OnReload != nil {
		r.opts.OnReload(old.served, err)
	}
	return err
}

// load reads and checks the key pair.
func (r *Reloader) load() (*loaded, error) {
	cert, err := tls.LoadX509KeyPair(r.opts.CertFile, r.opts.KeyFile)
	if err != nil {
		return nil, err // names the file it could not read
	}
	if cert.Leaf == nil { // LoadX509KeyPair fills it since Go 1.23
		return nil, errors.New("no leaf certificate")
	}
	sv, err := served(&cert)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.opts.CertFile, err)
	}
	return &loaded{cert: &cert, served: sv}, nil
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
