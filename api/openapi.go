package api

import _ "embed"

// OpenAPI is the OpenAPI 3.1 description of both listeners (openapi.json
// beside this file), which the server serves at /v1/openapi.json. It is
// written by hand; test/e2e's conformance test keeps it true: every route
// of both listeners described, every described route served, and real
// requests and responses of a running node valid against it.
//
//go:embed openapi.json
var OpenAPI []byte
