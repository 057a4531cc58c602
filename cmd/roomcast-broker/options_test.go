package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/roomcast/roomcast/config"
)

// TestURLOptionRefused: --public-url with a bad scheme (or no host) is a
// one-line usage error before anything listens, from the command line,
// ROOMCAST_PUBLIC_URL and the config file alike.
func TestURLOptionRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bad.toml")
	for _, c := range []struct {
		source, val, mention string
	}{
		{"flag", "ftp://x", `scheme "ftp"`},
		{"flag", "hub.local:4100", "scheme"},
		{"flag", "http://:4100", "no host"},
		{"env", "gopher://x", "ROOMCAST_PUBLIC_URL"},
		{"toml", "ws://hub:4100", `scheme "ws"`},
	} {
		args := []string{"--listen", "127.0.0.1:0", "--state-dir", dir, "--mdns", "off"}
		switch c.source {
		case "flag":
			args = append(args, "--public-url", c.val)
		case "env":
			t.Setenv("ROOMCAST_PUBLIC_URL", c.val)
		case "toml":
			if err := os.WriteFile(cfg, []byte(`public-url = "`+c.val+"\"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			args = append(args, "--config", cfg)
		}
		var out, errb strings.Builder
		err := run(args, &out, &errb)
		os.Unsetenv("ROOMCAST_PUBLIC_URL")
		if !config.IsUsage(err) || !strings.Contains(err.Error(), c.mention) || strings.Contains(err.Error(), "\n") || errb.Len() != 0 {
			t.Errorf("%s --public-url %s: %v (stderr %q); want a one-line usage error about %s", c.source, c.val, err, errb.String(), c.mention)
		}
	}
}
