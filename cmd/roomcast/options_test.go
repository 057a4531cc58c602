package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/roomcast/roomcast/config"
)

// TestFloatAndURLOptionsRefused: a NaN or infinite number and a URL with
// a bad scheme are usage errors (exit 2, one line) before anything is
// sent, from the command line, the environment and the config file.
func TestFloatAndURLOptionsRefused(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir) // no user config file
	cfg := filepath.Join(dir, "bad.toml")
	for _, c := range []struct {
		name    string
		args    []string
		env     map[string]string
		toml    string
		mention string
	}{
		{"seek NaN", []string{"seek", "NaN"}, nil, "", "seek"},
		{"seek nan", []string{"seek", "nan"}, nil, "", "seek"},
		{"seek Inf", []string{"seek", "Inf"}, nil, "", "seek"},
		{"seek -inf", []string{"seek", "--", "-inf"}, nil, "", "seek"},
		{"--broker ftp", []string{"--broker", "ftp://x", "devices"}, nil, "", `scheme "ftp"`},
		{"--broker no host", []string{"--broker", "http://", "devices"}, nil, "", "no host"},
		{"--broker=", []string{"--broker=localhost:4100", "devices"}, nil, "", "scheme"},
		{"env broker", []string{"devices"}, map[string]string{"ROOMCAST_BROKER": "gopher://x"}, "", "ROOMCAST_BROKER"},
		{"toml broker", []string{"--config", cfg, "devices"}, nil, `broker = "file:///tmp/x"`, `scheme "file"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			if c.toml != "" {
				if err := os.WriteFile(cfg, []byte(c.toml+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var out, errb strings.Builder
			// A token, so that nothing but the option can be refused; the
			// broker is a closed port, so a request would fail with exit 1.
			args := append([]string{"--token", "rc_x", "--timeout", "2s"}, c.args...)
			if c.env == nil && c.toml == "" && !strings.HasPrefix(c.args[0], "--broker") {
				args = append([]string{"--broker", "http://127.0.0.1:1"}, args...)
			}
			err := run(context.Background(), args, &out, &errb)
			if !config.IsUsage(err) || !strings.Contains(err.Error(), c.mention) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("roomcast %v: %v; want a one-line usage error about %s", args, err, c.mention)
			}
			if errb.Len() != 0 {
				t.Fatalf("roomcast %v printed on stderr itself:\n%s", args, errb.String())
			}
		})
	}
	// Good values still pass the parser (and then fail at the closed port).
	err := run(context.Background(), []string{"--token", "x", "--timeout", "2s", "--broker", "http://127.0.0.1:1", "seek", "42.5"}, &strings.Builder{}, &strings.Builder{})
	if err == nil || config.IsUsage(err) {
		t.Fatalf("seek 42.5 against a closed port: %v, want a runtime error", err)
	}
}
