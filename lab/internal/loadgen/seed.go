package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// seed stores Body(Size) under every key that get and mixed read, with
// Conns PUTs in flight. Any response but 200 or 201 fails it.
func seed(ctx context.Context, c *Config, t *target) error {
	tr := &http.Transport{MaxIdleConnsPerHost: c.Conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for w := range min(c.Conns, len(t.paths)) {
		wg.Go(func() {
			for i := w; i < len(t.paths) && ctx.Err() == nil; i += c.Conns {
				if err := seedOne(ctx, client, t, t.paths[i]); err != nil {
					cancel(err)
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return fmt.Errorf("loadgen: seed: %w", err)
	}
	return nil
}

func seedOne(ctx context.Context, client *http.Client, t *target, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, t.base+path, bytes.NewReader(t.body))
	if err != nil {
		return err
	}
	if t.auth != "" {
		req.Header.Set("Authorization", t.auth)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("PUT %s: %s: %s", path, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}
