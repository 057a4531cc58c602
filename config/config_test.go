package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newFS() (*flag.FlagSet, *string, *int, *bool, *string) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	name := fs.String("name", "host", "")
	vol := fs.Int("volume", 50, "")
	on := fs.Bool("enabled", false, "")
	ifs := fs.String("mdns", "", "")
	fs.String("config", "", "")
	return fs, name, vol, on, ifs
}

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.toml")
	os.WriteFile(path, []byte("name = \"Kitchen\"\nvolume = 30\nenabled = true\nmdns = [\"eth0\", \"wlan0\"]\n"), 0o600)

	cases := []struct {
		args    []string
		env     map[string]string
		name    string
		vol     int
		enabled bool
	}{
		{nil, nil, "Kitchen", 30, true},
		{[]string{"--volume", "70"}, nil, "Kitchen", 70, true},
		{nil, map[string]string{"ROOMCAST_VOLUME": "80", "ROOMCAST_NAME": "Den"}, "Den", 80, true},
		{[]string{"--name", "Flag"}, map[string]string{"ROOMCAST_NAME": "Env"}, "Flag", 30, true},
		{[]string{"--enabled=false"}, nil, "Kitchen", 30, false},
	}
	for i, c := range cases {
		for k, v := range c.env {
			t.Setenv(k, v)
		}
		fs, name, vol, on, ifs := newFS()
		if err := fs.Parse(c.args); err != nil {
			t.Fatal(err)
		}
		if err := Apply(fs, path, false, "config"); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if *name != c.name || *vol != c.vol || *on != c.enabled || *ifs != "eth0,wlan0" {
			t.Errorf("case %d: got %q %d %v %q", i, *name, *vol, *on, *ifs)
		}
		for k := range c.env {
			os.Unsetenv(k)
		}
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct{ file, want string }{
		{"nmae = \"typo\"", `unknown option "nmae"`},
		{"volume = \"loud\"", `volume = "loud"`},
		{"volume = 1\nvolume = 2", "line"},
		{"[table]\nx = 1", "unsupported value"},
		{"name = ", "line 1"},
		{"config = \"/etc/x\"", `unknown option "config"`},
		{"mdns = [1, 2]", "lists may only hold strings"},
	}
	for _, c := range cases {
		path := filepath.Join(dir, "c.toml")
		os.WriteFile(path, []byte(c.file), 0o600)
		fs, _, _, _, _ := newFS()
		fs.Parse(nil)
		err := Apply(fs, path, false, "config")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want an error containing %q", c.file, err, c.want)
		}
	}
	fs, _, _, _, _ := newFS()
	fs.Parse(nil)
	t.Setenv("ROOMCAST_VOLUME", "many")
	if err := Apply(fs, "", false); err == nil || !strings.Contains(err.Error(), "ROOMCAST_VOLUME") {
		t.Errorf("bad env value: %v", err)
	}
	os.Unsetenv("ROOMCAST_VOLUME")
	if err := Apply(fs, filepath.Join(dir, "missing.toml"), false); err == nil {
		t.Error("a missing required file is not an error")
	}
	if err := Apply(fs, filepath.Join(dir, "missing.toml"), true); err != nil {
		t.Errorf("a missing optional file: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("name = \"Kitchen\"\nvolume = 30\n"))
	f.Add([]byte("[a.b]\nc = [1, {d = 2}]\n"))
	f.Add([]byte("x = 1979-05-27T07:32:00Z\ny = inf\nz = \"\\u0000\""))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			return
		}
		for k := range m {
			if k == "" && len(data) == 0 {
				t.Fatal("empty key from empty input")
			}
		}
	})
}
