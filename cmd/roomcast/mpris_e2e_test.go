package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/testenv"
)

// sessionBus starts a private dbus-daemon and returns its address.
func sessionBus(t *testing.T) string {
	t.Helper()
	testenv.Tool(t, "dbus-daemon", "dbus-daemon")
	testenv.Tool(t, "playerctl", "playerctl")
	sock := filepath.Join(t.TempDir(), "bus")
	cmd := exec.Command("dbus-daemon", "--session", "--nofork", "--nopidfile", "--address=unix:path="+sock)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "unix:path=" + sock
}

// TestMPRISOfIdleSpeakerControlsActiveOne: two real roomcastd processes;
// the media keys (playerctl) of the idle one pause the one that plays.
func TestMPRISOfIdleSpeakerControlsActiveOne(t *testing.T) {
	bus := sessionBus(t)
	bin := buildAll(t)
	stateA := t.TempDir()
	a := startDaemon(t, bin, stateA, "Kitchen")
	tokFile := filepath.Join(stateA, "owner.token")
	// Speaker B joins A's broker and publishes MPRIS on the private bus.
	b := exec.Command(filepath.Join(bin, "roomcastd"), "--broker", a.url, "--token-file", tokFile, "--state-dir", t.TempDir(),
		"--name", "Laptop", "--mdns", "off", "--pair-listen", "127.0.0.1:0", "--mpris", "session", "--output", "none")
	b.Env = append(os.Environ(), "DBUS_SESSION_BUS_ADDRESS="+bus)
	startProc(t, "laptop roomcastd", b)
	g := []string{"--broker", a.url, "--token-file", tokFile}
	run := func(args ...string) string {
		t.Helper()
		out, errOut, code := cli(t, bin, append(g, args...)...)
		if code != 0 {
			t.Fatalf("roomcast %v: %s", args, errOut)
		}
		return out
	}
	playerctl := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "playerctl", append([]string{"-p", "roomcast"}, args...)...)
		cmd.Env = append(os.Environ(), "DBUS_SESSION_BUS_ADDRESS="+bus)
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	type status struct {
		Device string `json:"device_name"`
		Status string `json:"status"`
	}
	var st status
	deadline := time.Now().Add(15 * time.Second)
	for {
		var devs struct{ Devices []struct{ Name string } }
		json.Unmarshal([]byte(run("devices", "--json")), &devs)
		if len(devs.Devices) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("devices: %+v", devs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	run("play", "--device", "Kitchen", "roomcast:track:a", "roomcast:track:b")
	// The laptop's MPRIS shows what plays in the kitchen...
	deadline = time.Now().Add(15 * time.Second)
	for {
		if out, _ := playerctl("status"); out == "Playing" {
			break
		}
		if time.Now().After(deadline) {
			out, err := playerctl("status")
			t.Fatalf("playerctl status: %q %v", out, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// ...and its pause key pauses the kitchen.
	if out, err := playerctl("pause"); err != nil {
		t.Fatalf("playerctl pause: %v %s", err, out)
	}
	deadline = time.Now().Add(10 * time.Second)
	for st.Status != "paused" {
		if time.Now().After(deadline) {
			t.Fatalf("kitchen after the laptop's pause: %+v", st)
		}
		time.Sleep(200 * time.Millisecond)
		json.Unmarshal([]byte(run("status", "--json")), &st)
	}
	if st.Device != "Kitchen" {
		t.Fatalf("paused device %q", st.Device)
	}
	if out, err := playerctl("next"); err != nil {
		t.Fatalf("playerctl next: %v %s", err, out)
	}
}
