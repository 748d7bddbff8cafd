package node

import "context"

// maxUnnamedNamed is how many tenants warnUnnamedTenants names.
const maxUnnamedNamed = 10

// warnUnnamedTenants logs the tenants the store holds documents of that no
// configured tenant names: only the admin token reaches them. The usual
// cause is a tenant name mistyped in --tenant or in 'cairn import --tenant',
// whose documents then look lost; a tenant removed from the configuration
// on purpose is named too, its data being still held (deploy.md, "Remove a
// tenant").
func (n *Node) warnUnnamedTenants(ctx context.Context) {
	if len(n.cfg.Auth.Tenants) == 0 {
		return
	}
	var unnamed []string
	for t, err := range n.store.Tenants(ctx) {
		if err != nil {
			return
		}
		if _, ok := n.cfg.Auth.Tenants[t]; !ok {
			unnamed = append(unnamed, t)
			if len(unnamed) == maxUnnamedNamed {
				break
			}
		}
	}
	if len(unnamed) > 0 {
		n.log.Warn("the store holds documents of tenants no --tenant names: only the admin token reaches them (a name mistyped in --tenant or at 'cairn import'?)",
			"tenants", unnamed, "named_at_most", maxUnnamedNamed)
	}
}
