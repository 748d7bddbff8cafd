package node

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"

	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/tlscert"
)

// TLS names the certificate both listeners serve. The files are read again
// on a request from Config.Reload and when a handshake finds them changed
// (package tlscert); a failed reload keeps the certificate being served.
type TLS struct {
	CertFile, KeyFile string
}

// setupTLS loads the certificate, if one is configured.
func (n *Node) setupTLS() error {
	c := n.cfg.TLS
	if c == nil {
		return nil
	}
	r, err := tlscert.New(tlscert.Options{CertFile: c.CertFile, KeyFile: c.KeyFile,
		Logger: n.log, OnReload: n.tel.Metrics.TLSReload})
	if err != nil {
		return fault.E(fault.Config, fault.Context{Op: "node.start"}, fmt.Errorf("--tls-cert %s, --tls-key %s: %w", c.CertFile, c.KeyFile, err))
	}
	n.certs = r
	n.tel.Metrics.TLSCertificate(r.Served().NotAfter)
	return nil
}

// secure wraps ln in TLS when the node serves it.
func (n *Node) secure(ln net.Listener) net.Listener {
	if n.certs == nil {
		return ln
	}
	return tls.NewListener(ln, n.certs.Config())
}

// ReloadTLS reads the certificate files again. On failure the previous
// certificate is still served, and the error says why. Without TLS there
// is nothing to reload and it returns nil.
func (n *Node) ReloadTLS() error {
	if n.certs == nil {
		return nil
	}
	return n.certs.Reload()
}

// watchReload serves Config.Reload until Shutdown.
func (n *Node) watchReload() {
	if n.cfg.Reload == nil {
		return
	}
	n.reloadCtx, n.stopReload = context.WithCancel(context.Background())
	n.serving.Go(func() {
		for {
			select {
			case <-n.reloadCtx.Done():
				return
			case <-n.cfg.Reload:
				if n.certs == nil {
					n.log.Info("reload requested: no TLS certificate configured, nothing to reload")
					continue
				}
				n.certs.Reload() // logs and counts its outcome
			}
		}
	})
}

// warnCleartext logs a warning for each listener beyond loopback served
// without TLS, the RESP front's too: tokens cross the network in the clear,
// unless a proxy in front terminates TLS on the same host.
func (n *Node) warnCleartext() {
	if n.certs != nil {
		return
	}
	for _, l := range []struct{ flag, addr, secret string }{
		{"--listen", n.cfg.Listen, "bearer tokens"},
		{"--admin-listen", n.cfg.AdminListen, "bearer tokens"},
		{"--resp-listen", n.cfg.RespListen, "AUTH's tokens"},
	} {
		if l.addr != "" && !IsLoopback(l.addr) {
			n.log.Warn("serving beyond loopback without TLS: "+l.secret+" travel in cleartext; set --tls-cert and --tls-key, or terminate TLS in a proxy in front (docs/tls.md)",
				"flag", l.flag, "addr", l.addr)
		}
	}
}

// URL is the API's base URL, https:// when it serves TLS.
func (n *Node) URL() string {
	if n.certs != nil {
		return "https://" + n.Addr()
	}
	return "http://" + n.Addr()
}
