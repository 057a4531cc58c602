package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/testenv"
)

// TestReloadRenamesEverywhere: a speaker's config file is edited and the
// daemon gets SIGHUP (systemctl reload). The new name reaches every
// picker: the broker's device list, mDNS (roomcast discover on the other
// host) and MPRIS (Identity); a config with an error is refused as a
// whole and the daemon keeps running with the old one.
func TestReloadRenamesEverywhere(t *testing.T) {
	hubNS, spkNS := twoHosts(t)
	bus := sessionBus(t)
	dbusSend := testenv.Tool(t, "dbus-send", "dbus-bin")
	bin := buildAll(t)
	hub, spk := t.TempDir(), t.TempDir()
	hubCmd := exec.Command(hubNS[0], append(hubNS[1:], filepath.Join(bin, "roomcastd"), "--listen", "10.77.0.1:4100", "--state-dir", hub,
		"--name", "Hub", "--mdns", "off", "--pair-listen", "10.77.0.1:0", "--output", "none", "--mpris", "off")...)
	startProc(t, "hub roomcastd", hubCmd)
	tokFile := filepath.Join(hub, "owner.token")
	for deadline := time.Now().Add(15 * time.Second); ; {
		if _, err := os.Stat(tokFile); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the hub wrote no owner.token")
		}
		time.Sleep(100 * time.Millisecond)
	}
	cfg := filepath.Join(spk, "roomcastd.toml")
	writeCfg := func(extra string) {
		t.Helper()
		body := "broker = \"http://10.77.0.1:4100\"\ntoken-file = \"" + tokFile + "\"\nmdns = \"v1\"\npair-listen = \"10.77.0.2:0\"\n" +
			"output = \"none\"\nmpris = \"session\"\n" + extra
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeCfg("name = \"Bedroom\"\n")
	spkCmd := exec.Command(spkNS[0], append(spkNS[1:], filepath.Join(bin, "roomcastd"), "--config", cfg, "--state-dir", filepath.Join(spk, "state"))...)
	spkCmd.Env = append(os.Environ(), "DBUS_SESSION_BUS_ADDRESS="+bus)
	startProc(t, "speaker roomcastd", spkCmd)

	roomcast := func(args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		full := append(hubNS[1:], append([]string{filepath.Join(bin, "roomcast"), "--broker", "http://10.77.0.1:4100",
			"--token-file", tokFile}, args...)...)
		out, _ := exec.CommandContext(ctx, hubNS[0], full...).CombinedOutput()
		return string(out)
	}
	deviceNames := func() []string {
		var devs struct{ Devices []struct{ Name string } }
		_ = json.Unmarshal([]byte(roomcast("devices", "--json")), &devs)
		var names []string
		for _, d := range devs.Devices {
			names = append(names, d.Name)
		}
		return names
	}
	discovered := func() []string {
		var res struct{ Speakers []struct{ Name string } }
		_ = json.Unmarshal([]byte(roomcast("discover", "--json", "--interfaces", "v0", "--timeout", "2s")), &res)
		var names []string
		for _, s := range res.Speakers {
			names = append(names, s.Name)
		}
		return names
	}
	identity := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, dbusSend, "--bus="+bus, "--print-reply=literal", "--dest=org.mpris.MediaPlayer2.roomcast",
			"/org/mpris/MediaPlayer2", "org.freedesktop.DBus.Properties.Get", "string:org.mpris.MediaPlayer2", "string:Identity").CombinedOutput()
		if err != nil {
			return "error: " + strings.TrimSpace(string(out))
		}
		return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "variant"))
	}
	// until polls check (which reports ok and what it saw) for up to d.
	until := func(d time.Duration, what string, check func() (bool, any)) {
		t.Helper()
		deadline := time.Now().Add(d)
		for {
			ok, seen := check()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %s; last seen %v", what, d, seen)
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
	has := slices.Contains[[]string]
	until(20*time.Second, "the broker lists Bedroom", func() (bool, any) { n := deviceNames(); return has(n, "Bedroom"), n })
	until(20*time.Second, "discover lists Bedroom", func() (bool, any) { n := discovered(); return has(n, "Bedroom"), n })
	until(10*time.Second, "MPRIS Identity", func() (bool, any) { id := identity(); return id == "roomcast (Bedroom)", id })

	// A config with an error: refused as a whole (the name does not change
	// either), and the daemon keeps running.
	writeCfg("name = \"Attic\"\nvolume-curve = \"loud\"\n")
	if err := spkCmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if n := deviceNames(); !has(n, "Bedroom") || has(n, "Attic") {
		t.Fatalf("after a bad reload the broker lists %v, want Bedroom still", n)
	}
	if err := spkCmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("the speaker died on a bad reload: %v", err)
	}

	// A good one: the new name everywhere, the old one gone.
	writeCfg("name = \"Study\"\nvolume-curve = \"linear\"\n")
	if err := spkCmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	until(10*time.Second, "the broker lists Study, not Bedroom", func() (bool, any) {
		n := deviceNames()
		return has(n, "Study") && !has(n, "Bedroom"), n
	})
	until(20*time.Second, "discover lists Study, not Bedroom", func() (bool, any) {
		n := discovered()
		return has(n, "Study") && !has(n, "Bedroom"), n
	})
	until(10*time.Second, "MPRIS Identity renamed", func() (bool, any) { id := identity(); return id == "roomcast (Study)", id })
}
