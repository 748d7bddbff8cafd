package node

import "github.com/cairnstore/cairn/internal/server"

// Routes returns the routes the node's two listeners serve, as mounted:
// the API's, then the admin listener's (nil without one). The OpenAPI
// conformance test walks them.
func (n *Node) Routes() (apiRoutes, adminRoutes []server.RouteInfo) {
	apiRoutes = n.api.Routes()
	if n.admin != nil {
		adminRoutes = n.admin.Routes()
	}
	return apiRoutes, adminRoutes
}
