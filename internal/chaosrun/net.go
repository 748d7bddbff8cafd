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
