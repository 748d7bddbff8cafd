package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// Authentication.
//
// Bearer tokens, configured as SHA-256 hashes ([Auth]). Every presented
// token is hashed and compared in constant time with every configured hash.
// No token or an unknown one is 401; a valid token of another tenant is
// 403; an admin token may act on every tenant. The order on a tenant route
// is: tenant syntax (400), [Options.Middleware], authentication (401/403),
// then the handler (key syntax 400, …).

// Auth is the bearer-token configuration. Tokens are never stored, only their
// SHA-256 hashes ([HashToken]), so a leaked config file grants nothing.
type Auth struct {
	// Tenants maps a tenant id to the hashes of the tokens that may act on it.
	Tenants map[string][][32]byte
	// Admin holds the hashes of tokens that may act on every tenant and on
	// the admin routes.
	Admin [][32]byte
	// Serves, when set, reports whether the node serves a tenant that
	// Tenants does not name (it holds documents of it, here or in a
	// backend). An admin token then acts only on the tenants of Tenants and
	// those: a mistyped name must not make a tenant, which every node
	// sharing a backend would then serve.
	Serves func(ctx context.Context, tenant string) bool
}

// TokenPrefix starts every token made by [NewToken], so that secret
// scanners can recognise a leaked one.
const TokenPrefix = "cairn_"

// NewToken returns a fresh random token (256 bits) and its hash, for the
// configuration. It fails only if the system's random source does.
func NewToken() (token string, hash [32]byte, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", hash, fault.E(fault.Config, fault.Context{Op: "server.newtoken"}, err)
	}
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return token, HashToken(token), nil
}

// HashToken returns the SHA-256 of a token, the form [Auth] holds.
func HashToken(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// ParseTokenHash parses the hex form of a token hash (64 hex digits), as
// given on the command line or in a config file.
func ParseTokenHash(s string) ([32]byte, error) {
	var h [32]byte
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != len(h) {
		return h, fault.New(fault.Config, fault.Context{Op: "server.tokenhash"},
			"token hash must be 64 hex digits (the SHA-256 of the token)")
	}
	copy(h[:], b)
	return h, nil
}

// credential is one configured hash with what it grants.
type credential struct {
	hash   [32]byte
	tenant string // "" for admin
	admin  bool
}

// SharedHash finds a token hash given to two roles: to the admin and a
// tenant, which would let that tenant's token act on every tenant, or to
// two tenants, which would let each act on the other; either is a paste
// gone wrong. It names the roles ("the admin", `tenant "acme"`), first the
// admin, then tenants in name order.
func (a Auth) SharedHash() (first, second string, ok bool) {
	holder := map[[32]byte]string{}
	for _, sum := range a.Admin {
		holder[sum] = "the admin"
	}
	for _, name := range slices.Sorted(maps.Keys(a.Tenants)) {
		who := "tenant " + strconv.Quote(name)
		for _, sum := range a.Tenants[name] {
			if prev, seen := holder[sum]; seen && prev != who {
				return prev, who, true
			}
			holder[sum] = who
		}
	}
	return "", "", false
}

// verifier checks bearer tokens against every configured hash.
type verifier struct {
	creds  []credential
	serves func(ctx context.Context, tenant string) bool // Auth.Serves
}

func newVerifier(a Auth) (*verifier, error) {
	if first, second, ok := a.SharedHash(); ok {
		return nil, fault.New(fault.Config, fault.Context{Op: "server.auth"},
			"the token hash of "+second+" is also given to "+first+": a token acts for one tenant or the admin, never more")
	}
	v := &verifier{serves: a.Serves}
	for t, hashes := range a.Tenants {
		if err := doc.ValidateTenant(t); err != nil {
			return nil, fault.E(fault.Config, fault.Context{Op: "server.auth"}, err)
		}
		for _, h := range hashes {
			v.creds = append(v.creds, credential{hash: h, tenant: t})
		}
	}
	for _, h := range a.Admin {
		v.creds = append(v.creds, credential{hash: h, admin: true})
	}
	return v, nil
}

// grant is what a presented token allows.
type grant struct {
	valid  bool // the token matched some configured hash
	admin  bool // it is an admin token
	tenant bool // it is a token of the requested tenant
}

// check hashes the token and compares it with every configured hash in
// constant time, without stopping at the first match, so the time taken
// depends only on the number of configured hashes, never on which one (or
// how much of one) matched.
func (v *verifier) check(token, tenant string) grant {
	// Copy short tokens to the stack so hashing does not allocate.
	var buf [128]byte
	sum := sha256.Sum256(append(buf[:0], token...))
	var valid, admin, ten int
	for i := range v.creds {
		c := &v.creds[i]
		eq := subtle.ConstantTimeCompare(sum[:], c.hash[:])
		valid |= eq
		if c.admin {
			admin |= eq
		}
		if c.tenant == tenant && tenant != "" {
			ten |= eq
		}
	}
	return grant{valid: valid == 1, admin: admin == 1, tenant: ten == 1}
}

// MaxTokenBytes bounds a presented bearer token. A longer one is refused
// before it is hashed, so an unauthenticated request costs the hash of at
// most this many bytes whatever header it sends. Tokens made by [NewToken]
// are 49 bytes.
const MaxTokenBytes = 256

// bearer extracts the token of an "Authorization: Bearer <token>" header.
// The scheme is case-insensitive (RFC 9110 §11.1).
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const scheme = "bearer "
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", false
	}
	tok := strings.TrimSpace(h[len(scheme):])
	return tok, tok != ""
}

// missingBearer says what is wrong with an Authorization header h that
// carries no bearer token: absent, empty, or another scheme (curl -u sends
// Basic). It names a scheme only from a list: a header holding a bare token
// must not have the token repeated in the answer and the log.
func missingBearer(h string) string {
	scheme, _, _ := strings.Cut(strings.TrimSpace(h), " ")
	switch {
	case scheme == "":
		return "missing bearer token: send Authorization: Bearer TOKEN"
	case strings.EqualFold(scheme, "bearer"):
		return "empty bearer token: send Authorization: Bearer TOKEN"
	}
	for _, known := range []string{"Basic", "Digest", "Token", "Negotiate", "AWS4-HMAC-SHA256"} {
		if strings.EqualFold(scheme, known) {
			return "the Authorization header uses the " + known + " scheme: send Authorization: Bearer TOKEN"
		}
	}
	return "the Authorization header is not of the Bearer scheme: send Authorization: Bearer TOKEN"
}

// authorize decides whether r may act with the given access on tenant.
// Outcomes:
//   - nil: allowed;
//   - Invalid: more than one Authorization header (400);
//   - Unauthorized: no token, a malformed header or an unknown token (401);
//   - Forbidden: a valid token that does not cover tenant, or a tenant token
//     on an admin route (403).
func (v *verifier) authorize(r *http.Request, access Access, tenant string) error {
	if len(r.Header["Authorization"]) > 1 {
		// Which one counts would be a guess, and a proxy in front may
		// guess otherwise.
		return fault.New(fault.Invalid, fault.Context{Op: "auth", Tenant: tenant},
			"more than one Authorization header: send one")
	}
	tok, ok := bearer(r)
	if !ok {
		return &httpError{
			status: http.StatusUnauthorized, code: fault.Unauthorized.String(), challenge: bearerChallenge,
			err: fault.New(fault.Unauthorized, fault.Context{Op: "auth", Tenant: tenant}, missingBearer(r.Header.Get("Authorization"))),
		}
	}
	if len(tok) > MaxTokenBytes {
		return &httpError{
			status: http.StatusUnauthorized, code: fault.Unauthorized.String(), challenge: bearerInvalid,
			err: fault.New(fault.Unauthorized, fault.Context{Op: "auth", Tenant: tenant},
				fmt.Sprintf("bearer token longer than %d bytes", MaxTokenBytes)),
		}
	}
	g := v.check(tok, tenant)
	switch {
	case !g.valid:
		return &httpError{
			status: http.StatusUnauthorized, code: fault.Unauthorized.String(), challenge: bearerInvalid,
			err: fault.New(fault.Unauthorized, fault.Context{Op: "auth", Tenant: tenant}, "invalid bearer token"),
		}
	case g.admin && access == AccessTenant && !v.known(r.Context(), tenant):
		return unknownTenant(tenant)
	case g.admin:
		return nil
	case access == AccessTenant && g.tenant:
		return nil
	case access == AccessAdmin:
		return fault.New(fault.Forbidden, fault.Context{Op: "auth"}, "this route needs an admin token")
	}
	return fault.New(fault.Forbidden, fault.Context{Op: "auth", Tenant: tenant},
		fmt.Sprintf("the token is not valid for tenant %q", tenant))
}

// known reports whether an admin token may act on tenant (Auth.Serves):
// a configured tenant, or one the node serves.
func (v *verifier) known(ctx context.Context, tenant string) bool {
	if v.serves == nil {
		return true
	}
	return v.configured(tenant) || v.serves(ctx, tenant)
}

// configured reports whether tenant has a token of its own (--tenant).
func (v *verifier) configured(tenant string) bool {
	for i := range v.creds {
		if v.creds[i].tenant == tenant {
			return true
		}
	}
	return false
}

// unknownTenant is the answer to an admin token naming a tenant the node
// does not serve.
func unknownTenant(tenant string) error {
	return fault.New(fault.NotFound, fault.Context{Op: "auth", Tenant: tenant}, fmt.Sprintf(
		"no tenant %q on this node: an admin token acts on the tenants the node serves (a --tenant, or one with documents here or in its backends), so that a mistyped name makes no tenant; to add one, give the node --tenant %s:TOKEN_SHA256",
		tenant, tenant))
}

// authBudgetSpent turns the refusal err of a request that failed
// authentication into a 429 when the node has answered too many of those:
// the client is told to back off, and why it failed.
func authBudgetSpent(err error, wait time.Duration) error {
	return &httpError{
		status: http.StatusTooManyRequests, code: fault.Exhausted.String(), unauthenticated: true,
		err: fault.WithRetryAfter(fault.New(fault.Exhausted, fault.Context{Op: "auth", Tenant: fault.ContextOf(err).Tenant},
			fault.MessageOf(err)+"; too many requests fail authentication on this node, retry later"), wait),
	}
}

// WWW-Authenticate challenges (RFC 6750 §3).
const (
	bearerChallenge = `Bearer realm="cairn"`
	bearerInvalid   = `Bearer realm="cairn", error="invalid_token"`
)

// IsAdmin reports whether token is one of the server's admin tokens, with
// the constant-time check of every request (the console's sign-in).
func (s *Server) IsAdmin(token string) bool {
	return len(token) <= MaxTokenBytes && s.auth.check(token, "").admin
}
