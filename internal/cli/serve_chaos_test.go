package cli

import (
	"strings"
	"testing"
)

func TestServeChaosSettings(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"CAIRN_FAILPOINTS": "store.commit.after-sync=kill@1"}, "--failpoints (CAIRN_FAILPOINTS) \"store.commit.after-sync=kill@1\" needs --enable-chaos"},
		{map[string]string{"CAIRN_CHAOS_BALLAST": "1MiB"}, "--chaos-ballast (CAIRN_CHAOS_BALLAST) needs --enable-chaos"},
		{map[string]string{"CAIRN_CHAOS_SEED": "5"}, "--chaos-seed (CAIRN_CHAOS_SEED) needs --enable-chaos"},
		{map[string]string{"CAIRN_ENABLE_CHAOS": "maybe"}, "CAIRN_ENABLE_CHAOS"},
	} {
		code, _, stderr := run(t, c.env, "", "serve", "--data-dir", dir)
		if code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("env %v: exit %d, stderr %q; want exit %d and %q", c.env, code, stderr, exitUsage, c.want)
		}
	}
	// The environment twins fill the node's chaos settings.
	fs, f := newServeFlags()
	env := map[string]string{"CAIRN_ENABLE_CHAOS": "1", "CAIRN_CHAOS_SEED": "77",
		"CAIRN_FAILPOINTS": "store.commit.after-sync=kill@3,reconcile.apply.before=kill%0.5", "CAIRN_CHAOS_BALLAST": "2MiB"}
	if err := fs.Parse([]string{"--data-dir", dir}); err != nil {
		t.Fatal(err)
	}
	if err := settle(fs, func(k string) string { return env[k] }, "config"); err != nil {
		t.Fatal(err)
	}
	cfg, err := f.nodeConfig(Env{Stderr: &strings.Builder{}, Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	ch := cfg.Chaos
	if ch == nil || ch.Seed != 77 || ch.Ballast != 2<<20 || ch.Failpoints != env["CAIRN_FAILPOINTS"] {
		t.Fatalf("chaos config %+v", ch)
	}
	// Without a seed, one is chosen (and printed by the node).
	f.chaos.seed = 0
	if cfg, _ = f.nodeConfig(Env{Stderr: &strings.Builder{}, Getenv: func(string) string { return "" }}); cfg.Chaos.Seed == 0 {
		t.Fatal("no seed chosen")
	}
}
