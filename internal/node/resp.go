package node

import (
	"context"
	"fmt"
	"net"

	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/resp"
	"github.com/cairnstore/cairn/internal/server"
	"github.com/cairnstore/cairn/internal/telemetry"
)

// startRESP serves the Redis-protocol front on Config.RespListen, when
// set, over the same documents, tokens, limiter, request deadline,
// metrics registry, tracer and logger as the HTTP API; with TLS
// configured, over TLS too. It runs after the HTTP listeners, so it uses
// the limiter newAPI made.
func (n *Node) startRESP() error {
	if n.cfg.RespListen == "" {
		return nil
	}
	auth, err := server.NewVerifier(n.cfg.Auth)
	if err != nil {
		return err
	}
	opt := resp.Options{
		Docs: n.docs, Auth: auth, Limiter: n.limiter, Replies: n.bodies,
		MaxBodyBytes: n.cfg.MaxBodyBytes, RequestTimeout: n.cfg.RequestTimeout, MaxClients: n.cfg.RespMaxClients,
		AuthTimeout: n.cfg.RespAuthTimeout, Idle: n.cfg.RespIdleTimeout, TenantCommand: n.tel.Metrics.AddTenantCommand,
		Logger: n.log, Registerer: n.tel.Metrics.Registry(), Version: telemetry.ReadBuild().Version,
	}
	if n.tel.Exporter() != telemetry.ExporterNone {
		opt.Tracer = n.tel.Tracer("github.com/cairnstore/cairn/internal/resp")
	}
	if n.resp, err = resp.New(opt); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", n.cfg.RespListen)
	if err != nil {
		return fault.E(fault.Config, fault.Context{Op: "node.listen"}, fmt.Errorf("--resp-listen %s: %w", n.cfg.RespListen, err))
	}
	n.respLn = n.secure(ln)
	n.serving.Add(1)
	go func() {
		defer n.serving.Done()
		if err := n.resp.Serve(n.respLn); err != nil {
			n.log.Error("listener failed", "addr", ln.Addr().String(), "err", err)
			select {
			case n.serveErr <- err:
			default:
			}
		}
	}()
	return nil
}

// shutdownRESP drains the RESP front (nothing when it is off).
func (n *Node) shutdownRESP(ctx context.Context) error {
	if n.resp == nil {
		return nil
	}
	return n.resp.Shutdown(ctx)
}

// RESPAddr is the RESP listener's address, or "" when it is off.
func (n *Node) RESPAddr() string {
	if n.respLn == nil {
		return ""
	}
	return n.respLn.Addr().String()
}
