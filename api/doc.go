// Package api holds the JSON bodies of cairn's HTTP API and admin API: the
// requests, the replies and the error body. The server writes them, and the
// Go client, the CLI and the chaos harness read them, from this one
// definition, so a field cannot drift between the two sides.
//
// The package has no behaviour beyond encoding/json tags and a few
// accessors. Document bodies are not here: they are the tenant's JSON,
// carried as raw bytes. [OpenAPI] describes every route of both listeners
// in OpenAPI 3.1, for clients in other languages.
//
// # Sharp edges
//
// The server writes the listing rows and the error body with hand-written
// encoders on its hot paths (package server, list.go and errors.go): a field
// added to Item, Conflict, Sibling, Lost or Error here must be written there
// too.
package api
