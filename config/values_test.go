package config

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseFloat(t *testing.T) {
	for _, c := range []struct {
		in   string
		want float64
		err  string
	}{
		{"-14", -14, ""},
		{" 2.5 ", 2.5, ""},
		{"1e3", 1000, ""},
		{"NaN", 0, "not a finite number"},
		{"nan", 0, "not a finite number"},
		{"Inf", 0, "not a finite number"},
		{"-inf", 0, "not a finite number"},
		{"+Infinity", 0, "not a finite number"},
		{"1e400", 0, "out of range"},
		{"", 0, "not a number"},
		{"soon", 0, "not a number"},
	} {
		got, err := ParseFloat(c.in)
		if c.err == "" && (err != nil || got != c.want) || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("ParseFloat(%q) = %v, %v; want %v, %q", c.in, got, err, c.want, c.err)
		}
	}
}

func TestCheckURL(t *testing.T) {
	for _, c := range []struct {
		in, err string
	}{
		{"http://localhost:4100", ""},
		{"https://music.example.org/roomcast", ""},
		{"HTTP://[::1]:4100/", ""},
		{"ftp://x", `scheme "ftp": want http or https`},
		{"ws://host:4100", `scheme "ws"`},
		{"localhost:4100", `scheme "localhost"`},
		{"//host:4100", "no scheme"},
		{"host", "no scheme"},
		{"http:host", "no host"},
		{"http://", "no host"},
		{"http://:4100", "no host"},
		{"http://host:0", `port "0"`},
		{"http://host:99999", `port "99999"`},
		{"http://host:", "empty port"},
		{"http://user:pw@host", "credentials"},
		{"http://host/?token=x", "no query"},
		{"http://host/#x", "no query or fragment"},
		{"http://host\x7f", "not a URL"},
		{"http://[::1", "not a URL"},
	} {
		err := CheckURL(c.in, "http", "https")
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("CheckURL(%q) = %v, want %q", c.in, err, c.err)
		}
	}
}

// TestCheckedFlagsEverySource: a NaN or a bad URL is refused by the flag
// itself, so from the command line, the environment and the TOML file
// alike; the defaults print in --help.
func TestCheckedFlagsEverySource(t *testing.T) {
	dir := t.TempDir()
	newFS := func() (*flag.FlagSet, *float64, *string) {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		var f float64
		var u string
		FloatVar(fs, &f, "normalize-target", -14, "target in `LUFS`")
		URLVar(fs, &u, "broker", "", "join this `URL`", "http", "https")
		return fs, &f, &u
	}
	for _, c := range []struct {
		source, key, val, mention string
	}{
		{"flag", "normalize-target", "NaN", "not a finite number"},
		{"flag", "normalize-target", "-Inf", "not a finite number"},
		{"flag", "broker", "ftp://x", `scheme "ftp"`},
		{"env", "normalize-target", "NaN", "ROOMCAST_NORMALIZE_TARGET"},
		{"env", "normalize-target", "inf", "not a finite number"},
		{"env", "broker", "ftp://x", "ROOMCAST_BROKER"},
		{"toml", "normalize-target", "nan", "not a finite number"},
		{"toml", "normalize-target", "-inf", "not a finite number"},
		{"toml", "broker", `"gopher://x"`, `scheme "gopher"`},
	} {
		fs, _, _ := newFS()
		var err error
		switch c.source {
		case "flag":
			err = ParseArgs(fs, []string{"--" + c.key, c.val})
		case "env":
			t.Setenv(EnvName(c.key), c.val)
			if err = ParseArgs(fs, nil); err == nil {
				err = Apply(fs, "", false)
			}
			os.Unsetenv(EnvName(c.key))
		case "toml":
			path := filepath.Join(dir, "c.toml")
			if err := os.WriteFile(path, []byte(c.key+" = "+c.val+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err = ParseArgs(fs, nil); err == nil {
				err = Apply(fs, path, false)
			}
		}
		if err == nil || !strings.Contains(err.Error(), c.mention) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s %s=%s: %v; want a one-line error about %s", c.source, c.key, c.val, err, c.mention)
		}
		if c.source == "flag" && !IsUsage(err) {
			t.Errorf("%s %s=%s: %T is not a UsageError", c.source, c.key, c.val, err)
		}
	}
	fs, f, u := newFS()
	if err := ParseArgs(fs, []string{"--normalize-target", "-23.5", "--broker", "https://h:1"}); err != nil || *f != -23.5 || *u != "https://h:1" {
		t.Fatalf("good values: %v %v %q", err, *f, *u)
	}
	var help bytes.Buffer
	fs, _, _ = newFS()
	fs.SetOutput(&help)
	if err := ParseArgs(fs, []string{"--help"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	if h := help.String(); !strings.Contains(h, "-normalize-target LUFS") || !strings.Contains(h, "(default -14)") || !strings.Contains(h, "-broker URL") {
		t.Fatalf("--help:\n%s", h)
	}
	// A bad flag prints nothing itself: the command prints its one line.
	help.Reset()
	fs, _, _ = newFS()
	fs.SetOutput(&help)
	if err := ParseArgs(fs, []string{"--nope"}); err == nil || help.Len() != 0 {
		t.Fatalf("unknown flag: %v, printed %q", err, help.String())
	}
}
