package api

import (
	"encoding/json"
	"time"
)

// Item is one row of a listing (GET /v1/tenants/{tenant}/docs).
type Item struct {
	Key  string `json:"key"`
	ETag string `json:"etag"`
	Size int    `json:"size"`
	// Conflict marks a document with open siblings: reading it answers
	// 409 until it is resolved.
	Conflict bool `json:"conflict"`
}

// Conflict is a document whose concurrent versions were kept as siblings
// (the tenant's conflict policy is manual): one row of
// GET /v1/tenants/{tenant}/conflicts, or the body of
// GET /v1/tenants/{tenant}/conflicts/{key}.
type Conflict struct {
	Key string `json:"key"`
	// ETag is the sibling set's: a write with If-Match of it, or of one
	// sibling, resolves exactly these siblings.
	ETag     string    `json:"etag"`
	Siblings []Sibling `json:"siblings"` // last writer first
}

// Sibling is one of a conflict's versions.
type Sibling struct {
	ETag    string    `json:"etag"`
	Deleted bool      `json:"deleted"` // a delete against an update
	Writer  string    `json:"writer"`  // the writing node's incarnation, hex
	Time    time.Time `json:"time"`    // when it was written (its hybrid logical clock)
	Size    int       `json:"size"`
	// Body is the sibling's document: present for one conflict, null in
	// listings and for a deleted sibling.
	Body json.RawMessage `json:"body"`
}

// Lost is a version of a document that a conflict resolution discarded: a
// last-writer-wins loser, or a sibling a resolution did not keep. Rows of
// GET /v1/tenants/{tenant}/conflicts/{key}?history=1.
type Lost struct {
	Sibling
	Winner string `json:"winner"` // the ETag of the version that replaced it
	Reason string `json:"reason"`
}

// ResolveRequest is the body of
// POST /v1/tenants/{tenant}/conflicts/{key}/resolve: exactly one member.
type ResolveRequest struct {
	Choose *string         `json:"choose,omitempty"` // a sibling's ETag, quotes optional
	Body   json.RawMessage `json:"body,omitempty"`   // a new document
	Delete *bool           `json:"delete,omitempty"` // true: resolve by deleting
}
