package server

import (
	"context"

	"github.com/cairnstore/cairn/internal/fault"
)

// Verifier checks a token against an [Auth] for fronts other than HTTP
// (the RESP front), with the same rule as a bearer token: the token hashed
// once and compared in constant time with every configured hash.
type Verifier struct{ v *verifier }

// NewVerifier returns the Verifier of a, or a Config-class error naming a
// bad tenant id.
func NewVerifier(a Auth) (*Verifier, error) {
	v, err := newVerifier(a)
	if err != nil {
		return nil, err
	}
	return &Verifier{v}, nil
}

// Check reports whether token is a configured token at all (valid) and
// whether it may act on tenant (allowed: the tenant's own token, or an
// admin token on a tenant the node serves, see [Auth.Serves]; unknown
// says an admin token was refused for that). A token longer than
// [MaxTokenBytes] is invalid and not hashed.
func (v *Verifier) Check(ctx context.Context, token, tenant string) (valid, allowed, unknown bool) {
	if len(token) > MaxTokenBytes {
		return false, false, false
	}
	g := v.v.check(token, tenant)
	if g.admin && !g.tenant && !v.v.known(ctx, tenant) {
		return true, false, true
	}
	return g.valid, g.admin || g.tenant, false
}

// Configured reports whether tenant has a token of its own configured
// (--tenant), without a lookup in the store.
func (v *Verifier) Configured(tenant string) bool { return v.v.configured(tenant) }

// UnknownTenant is the message of Check's unknown.
func UnknownTenant(tenant string) string { return fault.MessageOf(unknownTenant(tenant)) }
