package resp

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/tidwall/redcon"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/server"
)

// Replies. redcon writes RESP2; the few RESP3 types a client that said
// HELLO 3 expects (null, map) are written raw here.

func writeNull(c redcon.Conn, ss *session) {
	if ss.proto == 3 {
		c.WriteRaw(resp3Null)
		return
	}
	c.WriteNull()
}

var resp3Null = []byte("_\r\n")

// writeMap starts a map of n pairs: a RESP3 map, or a flat array of 2n
// elements in RESP2.
func writeMap(c redcon.Conn, ss *session, n int) {
	if ss.proto == 3 {
		c.WriteRaw([]byte("%" + strconv.Itoa(n) + "\r\n"))
		return
	}
	c.WriteArray(2 * n)
}

// Error replies. The first word is the code clients match on.
const (
	errNoAuth   = "NOAUTH Authentication required: send AUTH tenant token"
	errWrongArg = "ERR wrong number of arguments for '"
	errSyntax   = "ERR syntax error"
)

// errorReply words err for the client, Redis style: the code a client
// acts on, then the message. Shedding and node-side failures are TRYAGAIN,
// which clients (go-redis, redis-py, Lettuce, Jedis' cluster client) treat
// as retryable; BUSY would mean a script is running, and -ERR would not be
// retried.
func errorReply(err error) (msg string, class fault.Class) {
	class = fault.ClassOf(err)
	text := fault.MessageOf(err)
	var ce *server.CatchingUpError
	if errors.As(err, &ce) {
		// Its class is its cause's (not found): the answer HTTP gives as
		// 503 catching_up.
		return "TRYAGAIN tenant " + ce.Tenant + " is catching up with its backends: " + ce.Msg, fault.Transient
	}
	switch class {
	case fault.Invalid:
		return "ERR " + text, class
	case fault.Exhausted, fault.Transient:
		return "TRYAGAIN " + server.ClientMessage(err, 503), class
	case fault.Conflict:
		var se *doc.SiblingsError
		if errors.As(err, &se) {
			// In RESP's terms, with the ETags as GETETAG gives them (no
			// quotes); the HTTP wording of text names If-Match.
			sibs := make([]string, len(se.Siblings))
			for i, e := range se.Siblings {
				sibs[i] = strings.Trim(e, `"`)
			}
			return fmt.Sprintf("CONFLICT the document has %d conflicting versions: siblings %s, the set %s; "+
				"resolve them with SET key value IFMATCH etag, naming a sibling's or the set's, or over HTTP (/conflicts)",
				len(sibs), strings.Join(sibs, ", "), strings.Trim(se.ETag, `"`)), class
		}
		return "CONFLICT " + text, class
	case fault.Unauthorized, fault.Forbidden:
		return "WRONGPASS " + text, class
	case fault.Canceled:
		return "ERR timeout: " + text, class
	}
	// As HTTP answers a 500: what the failure says for clients, never a
	// cause's text (a file, the store's internals); the log has that.
	if msg := server.ClientMessage(err, http.StatusInternalServerError); msg != http.StatusText(http.StatusInternalServerError) {
		return "ERR internal error: " + msg, class
	}
	return "ERR internal error; the node's log has the details", class
}
