package server

import (
	"net/http"
	"strconv"

	"github.com/cairnstore/cairn/api"
)

// OpenAPIPath serves the API's OpenAPI description on both listeners.
const OpenAPIPath = "/v1/openapi.json"

// serveOpenAPI answers with the embedded description. It needs no token
// on the API listener: it says nothing about any tenant, and clients
// generate their code from it before they have one.
func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h.Set("Content-Length", strconv.Itoa(len(api.OpenAPI)))
	w.Write(api.OpenAPI)
}
