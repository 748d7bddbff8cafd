package chaosrun

import (
	"context"
	"fmt"
	"strings"
)

// Inject puts a network fault on node i's link to S3:
//
//	latency     every byte waits param ms (jitter param/4) in both directions
//	timeout     data stops flowing; connections hang until the fault ends
//	reset_peer  connections are reset (TCP RST) as soon as they carry data
//	bandwidth   param KB/s in each direction
//	down        the proxy stops: connections are refused and open ones cut
func (c *Cluster) Inject(i int, kind string, param int) error {
	p := c.links[i]
	if kind == "down" {
		p.Stop()
		return nil
	}
	var attrs string
	switch kind {
	case "latency":
		attrs = fmt.Sprintf(`{"latency":%d,"jitter":%d}`, param, param/4)
	case "timeout":
		attrs = fmt.Sprintf(`{"timeout":%d}`, param)
	case "reset_peer":
		attrs = `{"timeout":0}`
	case "bandwidth":
		attrs = fmt.Sprintf(`{"rate":%d}`, param)
	default:
		return fmt.Errorf("chaosrun: unknown network fault %q", kind)
	}
	for _, stream := range []string{"upstream", "downstream"} {
		js := fmt.Sprintf(`{"name":"%s_%s","type":"%s","stream":"%s","toxicity":1,"attributes":%s}`, kind, stream, kind, stream, attrs)
		if _, err := p.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
			return fmt.Errorf("chaosrun: %s on node%d's link: %w", kind, i, err)
		}
	}
	return nil
}

// SimKinds are the faults the node's own simulator injects into its s3
// backend (cairn serve --enable-chaos, PUT /v1/admin/chaos/s3): failures
// before the call reaches S3, and SlowDown throttling.
var SimKinds = []string{"sim-fail", "sim-throttle"}

// simProfiles are the simulator's profiles for SimKinds.
var simProfiles = map[string]string{
	"sim-fail":     `{"fail_before":0.5}`,
	"sim-throttle": `{"throttle":0.5,"retry_after_s":0.2}`,
}

// SimInject sets node i's s3 simulator profile for kind (a SimKinds
// name); SimHeal clears it. The nodes must run with Options.Chaos.
func (c *Cluster) SimInject(ctx context.Context, i int, kind string) error {
	p, ok := simProfiles[kind]
	if !ok {
		return fmt.Errorf("chaosrun: unknown simulator fault %q", kind)
	}
	return c.Nodes[i].adminBody(ctx, "PUT", "/v1/admin/chaos/s3", []byte(p), nil)
}

// SimHeal clears node i's s3 simulator profile.
func (c *Cluster) SimHeal(ctx context.Context, i int) error {
	return c.Nodes[i].adminBody(ctx, "DELETE", "/v1/admin/chaos/s3", nil, nil)
}

// Heal removes every fault from node i's link.
func (c *Cluster) Heal(i int) error {
	p := c.links[i]
	p.Toxics.ResetToxics(context.Background())
	if !p.Enabled {
		if err := p.Start(); err != nil {
			return fmt.Errorf("chaosrun: restarting node%d's proxy: %w", i, err)
		}
	}
	return nil
}

// HealAll heals every link.
func (c *Cluster) HealAll() error {
	for i := range c.links {
		if err := c.Heal(i); err != nil {
			return err
		}
	}
	return nil
}
