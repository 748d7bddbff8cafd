package resp

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/redcon"

	"github.com/cairnstore/cairn/internal/deadline"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/ingest"
	"github.com/cairnstore/cairn/internal/server"
)

// The connection commands.

func cmdPing(_ *Server, c redcon.Conn, ss *session, args [][]byte) result {
	switch len(args) {
	case 1:
		c.WriteString("PONG")
	case 2:
		ss.bulk(c, args[1])
	default:
		c.WriteError(errWrongArg + "ping' command")
		return failed(fault.Invalid)
	}
	return ok
}

func cmdEcho(_ *Server, c redcon.Conn, ss *session, args [][]byte) result {
	ss.bulk(c, args[1])
	return ok
}

// cmdAuth is AUTH tenant token: Redis 6's AUTH username password, so that
// every client's username and password settings carry the tenant and its
// token.
func cmdAuth(s *Server, c redcon.Conn, ss *session, args [][]byte) result {
	if len(args) != 3 {
		c.WriteError("ERR AUTH takes a tenant and a token: AUTH tenant token (Redis 6 form: the username is the tenant, the password its token)")
		return failed(fault.Invalid)
	}
	if res, ok := s.authenticate(c, ss, args[1], args[2]); !ok {
		return res
	}
	c.WriteString("OK")
	return ok
}

// authenticate checks tenant and token and, when they pass, makes tenant
// the session's. A failure is answered here (WRONGPASS, or TRYAGAIN once
// the node's budget of failed attempts is spent) and leaves the session as
// it was, as Redis does.
func (s *Server) authenticate(c redcon.Conn, ss *session, tenant, token []byte) (result, bool) {
	t := string(tenant)
	valid, allowed, unknown := s.opt.Auth.Check(context.Background(), string(token), t)
	if allowed && doc.ValidateTenant(t) == nil {
		ss.tenant = t
		return ok, true
	}
	if s.opt.Limiter != nil {
		if within, wait := s.opt.Limiter.AuthFailed(); !within {
			c.WriteError("TRYAGAIN too many commands fail authentication on this node; retry after " + retryAfter(wait))
			// Past the budget a flood would write a line per attempt:
			// one a period, with how many were held back.
			if ok, suppressed := s.authLog.Allow("budget", time.Now()); ok {
				s.log.Info("resp auth refused: the node's budget of failed authentications is spent",
					"remote", c.RemoteAddr(), s.loggedTenant(t), "suppressed", suppressed)
			}
			return failed(fault.Exhausted), false
		}
	}
	class := fault.Unauthorized
	switch {
	case unknown && doc.ValidateTenant(t) == nil:
		c.WriteError("WRONGPASS " + server.UnknownTenant(t))
		class = fault.NotFound
	case valid && doc.ValidateTenant(t) != nil:
		c.WriteError("WRONGPASS " + strconv.Quote(truncate(tenant)) +
			" is no tenant name: 1 to 63 lower-case letters, digits and '-', starting with a letter or digit")
		class = fault.Invalid
	case valid:
		c.WriteError("WRONGPASS the token is not valid for tenant " + strconv.Quote(truncate(tenant)))
		class = fault.Forbidden
	default:
		c.WriteError("WRONGPASS invalid tenant-token pair")
	}
	// As the HTTP API logs a refused token: the address it came from, for
	// an audit of the tokens tried (the token itself is never logged).
	s.log.Info("resp auth failed", "remote", c.RemoteAddr(), s.loggedTenant(t), "class", class.String())
	return failed(class), false
}

// loggedTenant is how a refused AUTH's log line names the tenant the client
// gave: by name when it is a configured tenant, else by its length only,
// since a client that swapped AUTH's arguments sent its token there.
func (s *Server) loggedTenant(tenant string) slog.Attr {
	if s.opt.Auth.Configured(tenant) {
		return slog.String("tenant", tenant)
	}
	return slog.Int("tenant_bytes", len(tenant))
}

// cmdHello is HELLO [protover [AUTH tenant token] [SETNAME name]].
func cmdHello(s *Server, c redcon.Conn, ss *session, args [][]byte) result {
	proto := ss.proto
	if len(args) > 1 {
		switch string(args[1]) {
		case "2":
			proto = 2
		case "3":
			proto = 3
		default:
			c.WriteError("NOPROTO unsupported protocol version: cairn speaks RESP2 and RESP3")
			return failed(fault.Invalid)
		}
	}
	// Every option is read and checked before any takes effect, as in
	// Redis: a HELLO answered with an error changes nothing, the
	// connection's authentication included.
	var name, tenant, token []byte
	setName, auth := false, false
	for i := 2; i < len(args); i++ {
		switch lower(string(args[i])) {
		case "auth":
			if i+2 >= len(args) {
				c.WriteError(errSyntax + ": HELLO … AUTH tenant token")
				return failed(fault.Invalid)
			}
			tenant, token, auth = args[i+1], args[i+2], true
			i += 2
		case "setname":
			if i+1 >= len(args) {
				c.WriteError(errSyntax + ": HELLO … SETNAME name")
				return failed(fault.Invalid)
			}
			name, setName = args[i+1], true
			i++
		default:
			c.WriteError(errSyntax + " in HELLO option '" + truncate(args[i]) + "'")
			return failed(fault.Invalid)
		}
	}
	if setName {
		if msg := checkName(name); msg != "" {
			c.WriteError(msg)
			return failed(fault.Invalid)
		}
	}
	if auth {
		if res, ok := s.authenticate(c, ss, tenant, token); !ok {
			return res
		}
	}
	if ss.tenant == "" {
		c.WriteError("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <tenant> <token> option can be used")
		return failed(fault.Unauthorized)
	}
	if setName {
		ss.name = string(name)
	}
	ss.proto = proto
	writeMap(c, ss, 7)
	c.WriteBulkString("server")
	c.WriteBulkString("cairn")
	c.WriteBulkString("version")
	c.WriteBulkString(s.version())
	c.WriteBulkString("proto")
	c.WriteInt(proto)
	c.WriteBulkString("id")
	c.WriteUint64(ss.id)
	c.WriteBulkString("mode")
	c.WriteBulkString("standalone")
	c.WriteBulkString("role")
	c.WriteBulkString("master")
	c.WriteBulkString("modules")
	c.WriteArray(0)
	return ok
}

func (s *Server) version() string {
	if s.opt.Version != "" {
		return s.opt.Version
	}
	return "dev"
}

// checkName applies Redis's rule for connection names: no spaces or
// newlines.
func checkName(b []byte) string {
	return checkPrintable(b, "Client names")
}

// checkPrintable is Redis's rule for client names and library
// information: printable ASCII without spaces.
func checkPrintable(b []byte, what string) string {
	for _, ch := range b {
		if ch <= ' ' || ch > '~' {
			return "ERR " + what + " cannot contain spaces, newlines or special characters."
		}
	}
	return ""
}

// cmdClient serves what clients send as they connect: SETNAME, GETNAME,
// ID, INFO, SETINFO.
func cmdClient(_ *Server, c redcon.Conn, ss *session, args [][]byte) result {
	sub := lower(string(args[1]))
	if want, served := clientArgs[sub]; served && len(args) != want {
		c.WriteError(errWrongArg + "client|" + sub + "' command")
		return failed(fault.Invalid)
	}
	switch {
	case sub == "setname":
		if msg := checkName(args[2]); msg != "" {
			c.WriteError(msg)
			return failed(fault.Invalid)
		}
		ss.name = string(args[2])
		c.WriteString("OK")
	case sub == "getname":
		if ss.name == "" {
			writeNull(c, ss)
		} else {
			c.WriteBulkString(ss.name)
		}
	case sub == "id":
		c.WriteUint64(ss.id)
	case sub == "info":
		c.WriteBulkString(ss.clientInfo())
	case sub == "setinfo":
		switch lower(string(args[2])) {
		case "lib-name", "lib-ver":
			if msg := checkPrintable(args[3], lower(string(args[2]))); msg != "" {
				c.WriteError(msg)
				return failed(fault.Invalid)
			}
			c.WriteString("OK") // the library's name and version: accepted, not kept
		default: // as Redis answers
			c.WriteError("ERR Unrecognized option '" + truncate(args[2]) + "': CLIENT SETINFO takes LIB-NAME or LIB-VER")
			return failed(fault.Invalid)
		}
	case sub == "maint_notifications":
		// go-redis asks for push notifications of a server's maintenance
		// on every new connection and goes on without them when refused,
		// as Redis before 8.2 refuses. The refusal is the answer to a
		// question, not the client's mistake: it is not counted as one.
		c.WriteError("ERR unknown subcommand 'MAINT_NOTIFICATIONS': cairn sends no maintenance notifications")
	default:
		c.WriteError("ERR unknown or malformed CLIENT subcommand '" + truncate(args[1]) + "': cairn serves SETNAME, GETNAME, ID, INFO and SETINFO")
		return failed(fault.Invalid)
	}
	return ok
}

// clientArgs is the number of arguments of each CLIENT subcommand served,
// the command's name included.
var clientArgs = map[string]int{"setname": 3, "getname": 2, "id": 2, "info": 2, "setinfo": 4}

func cmdQuit(_ *Server, c redcon.Conn, ss *session, _ [][]byte) result {
	ss.quit = true // the commands pipelined after it are not run (handle)
	c.WriteString("OK")
	c.Close() // sends the replies written so far
	return ok
}

func cmdReset(_ *Server, c redcon.Conn, ss *session, _ [][]byte) result {
	ss.tenant, ss.name, ss.proto, ss.multi = "", "", 2, false
	c.WriteString("RESET")
	return ok
}

// Transactions are refused, but MULTI is not an unknown command: a client
// library pipelines MULTI, its commands and EXEC in one go, and reads a
// failed MULTI as the failure of every command in it. So after MULTI the
// connection refuses every command until EXEC (answered EXECABORT, as
// Redis answers a transaction whose commands could not be queued),
// DISCARD or RESET: none of them runs, which is what the client was told.
const (
	errMultiRefused = "ERR cairn does not run transactions (MULTI): the commands sent until EXEC or DISCARD will not run"
	errInRefusedTx  = "ERR not run: this connection sent MULTI, which cairn refuses; send EXEC or DISCARD to end it"
)

func cmdMulti(_ *Server, c redcon.Conn, ss *session, _ [][]byte) result {
	if ss.multi {
		c.WriteError("ERR MULTI calls can not be nested")
		return failed(fault.Invalid)
	}
	ss.multi = true
	c.WriteError(errMultiRefused)
	return failed(fault.Invalid)
}

func cmdExec(_ *Server, c redcon.Conn, ss *session, _ [][]byte) result {
	if !ss.multi {
		c.WriteError("ERR EXEC without MULTI")
		return failed(fault.Invalid)
	}
	ss.multi = false
	c.WriteError("EXECABORT Transaction discarded because of previous errors: cairn does not run transactions (MULTI)")
	return failed(fault.Invalid)
}

func cmdDiscard(_ *Server, c redcon.Conn, ss *session, _ [][]byte) result {
	if !ss.multi {
		c.WriteError("ERR DISCARD without MULTI")
		return failed(fault.Invalid)
	}
	ss.multi = false
	c.WriteString("OK")
	return ok
}

func cmdSelect(_ *Server, c redcon.Conn, _ *session, args [][]byte) result {
	if string(args[1]) != "0" {
		c.WriteError("ERR cairn has one database per tenant: only SELECT 0 is served")
		return failed(fault.Invalid)
	}
	c.WriteString("OK")
	return ok
}

// cmdInfo answers a small server section. redis_version is the protocol
// level the front speaks, for clients that gate features on it.
//
// Of the sections a client may ask for (several at once, or all with
// default, all or everything), only the server section has anything: the
// keyspace section is empty (a count of the tenant's keys would be a
// scan), and any other section is answered with nothing, as Redis answers
// a section it does not have.
func cmdInfo(s *Server, c redcon.Conn, _ *session, args [][]byte) result {
	server, keyspace := len(args) == 1, len(args) == 1
	for _, a := range args[1:] {
		switch lower(string(a)) {
		case "server":
			server = true
		case "keyspace":
			keyspace = true
		case "default", "all", "everything":
			server, keyspace = true, true
		}
	}
	var b strings.Builder
	if server {
		s.serverInfo(&b)
	}
	if keyspace {
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString("# Keyspace\r\n")
	}
	c.WriteBulkString(b.String())
	return ok
}

// serverInfo writes INFO's server section.
func (s *Server) serverInfo(b *strings.Builder) {
	b.WriteString("# Server\r\nredis_version:7.0.0\r\nredis_mode:standalone\r\ncairn_version:")
	b.WriteString(s.version())
	b.WriteString("\r\nos:" + runtime.GOOS + " " + runtime.GOARCH)
	b.WriteString("\r\nprocess_id:" + strconv.Itoa(os.Getpid()))
	b.WriteString("\r\nuptime_in_seconds:" + strconv.FormatInt(int64(time.Since(s.started).Seconds()), 10))
	b.WriteString("\r\n")
}

// cmdCommand answers COMMAND and its COUNT, INFO, LIST and DOCS
// subcommands from the command table, in Redis 7's form: clients look
// commands up with them (cluster-aware clients to find keys, redis-cli for
// its hints). DOCS answers no documentation: the table is in docs/resp.md.
func cmdCommand(_ *Server, c redcon.Conn, ss *session, args [][]byte) result {
	if len(args) == 1 {
		writeCommandInfos(c, commandList)
		return ok
	}
	switch lower(string(args[1])) {
	case "count":
		if len(args) != 2 {
			c.WriteError(errWrongArg + "command|count' command")
			return failed(fault.Invalid)
		}
		c.WriteInt(len(commandList))
	case "list":
		if len(args) != 2 {
			c.WriteError("ERR cairn serves COMMAND LIST without FILTERBY")
			return failed(fault.Invalid)
		}
		c.WriteArray(len(commandList))
		for _, cmd := range commandList {
			c.WriteBulkString(lower(cmd.name))
		}
	case "info":
		if len(args) == 2 {
			writeCommandInfos(c, commandList)
			break
		}
		c.WriteArray(len(args) - 2)
		for _, name := range args[2:] {
			if cmd := commands[lower(string(name))]; cmd != nil {
				writeCommandInfo(c, cmd)
			} else {
				writeNull(c, ss)
			}
		}
	case "docs":
		writeMap(c, ss, 0)
	default:
		c.WriteError("ERR unknown COMMAND subcommand '" + truncate(args[1]) + "': cairn serves COUNT, DOCS, INFO and LIST")
		return failed(fault.Invalid)
	}
	return ok
}

func writeCommandInfos(c redcon.Conn, cmds []*command) {
	c.WriteArray(len(cmds))
	for _, cmd := range cmds {
		writeCommandInfo(c, cmd)
	}
}

// writeCommandInfo writes Redis 7's ten-element description of cmd: name,
// arity, flags, first key, last key, key step, ACL categories, tips, key
// specifications and subcommands (the last three empty).
func writeCommandInfo(c redcon.Conn, cmd *command) {
	c.WriteArray(10)
	c.WriteBulkString(lower(cmd.name))
	c.WriteInt(cmd.arity)
	c.WriteArray(len(cmd.flags))
	fast := false
	for _, f := range cmd.flags {
		c.WriteString(f)
		fast = fast || f == "fast"
	}
	c.WriteInt(cmd.keys.first)
	c.WriteInt(cmd.keys.last)
	c.WriteInt(cmd.keys.step)
	cats := make([]string, 0, 3)
	switch {
	case !cmd.data:
		cats = append(cats, "@connection")
	case slices.Contains(cmd.flags, "write"):
		cats = append(cats, "@keyspace", "@write")
	default:
		cats = append(cats, "@keyspace", "@read")
	}
	if fast {
		cats = append(cats, "@fast")
	} else {
		cats = append(cats, "@slow")
	}
	c.WriteArray(len(cats))
	for _, cat := range cats {
		c.WriteString(cat)
	}
	c.WriteArray(0)
	c.WriteArray(0)
	c.WriteArray(0)
}

// Argument checks shared by the document commands.

// key returns a document key, or answers why it is not one.
func key(c redcon.Conn, b []byte) (string, bool) {
	k := string(b)
	if err := doc.ValidateKey(k); err != nil {
		c.WriteError("ERR " + fault.MessageOf(err))
		return "", false
	}
	return k, true
}

// value checks a document body exactly as a PUT's is checked, or answers
// why it is refused; a key, when not nil, says whose value it is (for a
// command with several).
func (s *Server) value(c redcon.Conn, b, key []byte) bool {
	if msg := s.valueProblem(b, key); msg != "" {
		c.WriteError(msg)
		return false
	}
	return true
}

// valueProblem is value's check: the error reply refusing b, or "".
func (s *Server) valueProblem(b, key []byte) string {
	which := ""
	if key != nil {
		which = " of key '" + truncate(key) + "'"
	}
	if int64(len(b)) > s.opt.MaxBodyBytes {
		return "ERR value" + which + " of " + strconv.Itoa(len(b)) + " bytes is larger than the limit of " +
			strconv.FormatInt(s.opt.MaxBodyBytes, 10) + " bytes (--max-body-bytes)"
	}
	if err := s.validate(b); err != nil {
		return "ERR value" + which + " is not a JSON document: " + describeInvalid(err)
	}
	return ""
}

func describeInvalid(err error) string {
	var se *ingest.SyntaxError
	if errors.As(err, &se) {
		return "invalid JSON at byte " + strconv.FormatInt(se.Offset, 10) + ": " + se.Msg
	}
	return "invalid JSON: " + err.Error()
}

// writeCtx is the context of one write under parent (the command's, with
// its span): the node's request deadline, carried as a value as over HTTP
// (package deadline): the store checks it as it takes the write and arms a
// timer only where the write waits.
func (s *Server) writeCtx(parent context.Context) context.Context {
	return deadline.With(parent, time.Now().Add(s.opt.RequestTimeout), false)
}
