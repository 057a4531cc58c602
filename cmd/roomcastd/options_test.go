package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/config"
)

// TestFloatAndURLOptionsRefused: every float and URL option refuses NaN,
// ±Inf and a bad scheme as a one-line usage error, from the command line,
// ROOMCAST_* and the config file alike.
func TestFloatAndURLOptionsRefused(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		key, flagVal, tomlVal, mention string
	}{
		{"normalize-target", "NaN", "nan", "normalize"},
		{"normalize-target", "Inf", "inf", "normalize"},
		{"normalize-target", "-Inf", "-inf", "normalize"},
		{"broker", "ftp://x", `"ftp://x"`, `scheme "ftp"`},
		{"broker", "ws://host:4100", `"ws://host:4100"`, `scheme "ws"`},
		{"broker", "localhost:4100", `"localhost:4100"`, "scheme"},
		{"broker", "http://", `"http://"`, "no host"},
		{"play", "ftp://x", `"ftp://x"`, "--play"},
	}
	for _, c := range cases {
		for _, source := range []string{"flag", "env", "toml"} {
			var args []string
			switch source {
			case "flag":
				args = []string{"--" + c.key + "=" + c.flagVal}
			case "env":
				t.Setenv(config.EnvName(c.key), c.flagVal)
			case "toml":
				cfg := filepath.Join(dir, "bad.toml")
				if err := os.WriteFile(cfg, []byte(c.key+" = "+c.tomlVal+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				args = []string{"--config", cfg}
			}
			var errb strings.Builder
			_, err := parseOptions(append(args, "--state-dir", dir, "--token", "x"), &errb)
			os.Unsetenv(config.EnvName(c.key))
			var ue usageError
			if !errors.As(err, &ue) || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(c.mention)) || strings.Contains(err.Error(), "\n") || errb.Len() != 0 {
				t.Errorf("%s %s=%s: %v (stderr %q); want a one-line usage error about %s", source, c.key, c.flagVal, err, errb.String(), c.mention)
			}
		}
	}
	o, err := parseOptions([]string{"--normalize-target", "-23", "--broker", "https://hub.example:4100", "--token", "x", "--state-dir", dir}, &strings.Builder{})
	if err != nil || o.Gain.TargetLUFS != -23 || o.Broker != "https://hub.example:4100" {
		t.Fatalf("good values: %+v %v", o, err)
	}
}

// TestBadBrokerURLExits2: the real binary given --broker ftp://x exits 2
// with one line at once (it used to keep running, retrying the
// connection forever).
func TestBadBrokerURLExits2(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "roomcastd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for _, args := range [][]string{
		{"--broker", "ftp://x", "--token", "x"},
		{"--normalize-target", "NaN"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		cmd := exec.CommandContext(ctx, bin, append(args, "--state-dir", filepath.Join(dir, "state"), "--mdns", "off",
			"--pair-listen", "127.0.0.1:0", "--listen", "127.0.0.1:0", "--mpris", "off", "--output", "none")...)
		cmd.Env = append(os.Environ(), "NOTIFY_SOCKET=")
		out, err := cmd.CombinedOutput()
		cancel()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
			t.Errorf("roomcastd %v: %v, output %q; want exit 2 with one line", args, err, out)
		}
	}
}
