package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/testenv"
)

// twoHosts creates two network namespaces joined by a veth pair (hub: v0
// 10.77.0.1, speaker: v1 10.77.0.2), so mDNS and HTTP run between two
// "hosts" without touching the machine's interfaces. It returns the
// exec prefixes of the two.
func twoHosts(t *testing.T) (hub, speaker []string) {
	t.Helper()
	testenv.Root(t, "this test (network namespaces)")
	testenv.Tool(t, "ip", "iproute2")
	a, b := fmt.Sprintf("rc-hub-%d", os.Getpid()), fmt.Sprintf("rc-spk-%d", os.Getpid())
	t.Cleanup(func() {
		exec.Command("ip", "netns", "del", a).Run()
		exec.Command("ip", "netns", "del", b).Run()
	})
	for _, args := range [][]string{
		{"netns", "add", a},
		{"netns", "add", b},
		{"-n", a, "link", "set", "lo", "up"},
		{"-n", b, "link", "set", "lo", "up"},
		{"-n", a, "link", "add", "v0", "type", "veth", "peer", "name", "v1", "netns", b},
		{"-n", a, "addr", "add", "10.77.0.1/24", "dev", "v0"},
		{"-n", b, "addr", "add", "10.77.0.2/24", "dev", "v1"},
		{"-n", a, "link", "set", "v0", "up"},
		{"-n", b, "link", "set", "v1", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	return []string{"ip", "netns", "exec", a}, []string{"ip", "netns", "exec", b}
}

// TestPairThroughTheBroker: a hub (embedded broker) and a fresh speaker
// waiting to be paired find each other over mDNS; `roomcast pair` pairs
// the speaker, which then joins the hub's broker by itself.
func TestPairThroughTheBroker(t *testing.T) {
	hubNS, spkNS := twoHosts(t)
	bin := buildAll(t)
	hub, spk := t.TempDir(), t.TempDir()
	start := func(ns []string, args ...string) {
		cmd := exec.Command(ns[0], append(ns[1:], append([]string{filepath.Join(bin, "roomcastd")}, args...)...)...)
		startProc(t, fmt.Sprintf("roomcastd %v", args), cmd)
	}
	start(hubNS, "--listen", "10.77.0.1:4100", "--state-dir", hub, "--name", "Hub", "--mdns", "v0", "--pair-listen", "10.77.0.1:0", "--output", "none")
	start(spkNS, "--state-dir", spk, "--name", "Bedroom", "--mdns", "v1", "--pair-listen", "10.77.0.2:0", "--wait-for-pairing", "--pin", "2468", "--output", "none")
	roomcast := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		full := append(hubNS[1:], append([]string{filepath.Join(bin, "roomcast"), "--broker", "http://10.77.0.1:4100",
			"--token-file", filepath.Join(hub, "owner.token")}, args...)...)
		out, err := exec.CommandContext(ctx, hubNS[0], full...).CombinedOutput()
		return string(out), err
	}
	// Both advertise; discover lists the waiting speaker as unpaired.
	var out string
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out, "Bedroom") {
		if time.Now().After(deadline) {
			t.Fatalf("discover never listed the speaker:\n%s", out)
		}
		out, _ = roomcast("discover", "--interfaces", "v0", "--timeout", "2s")
	}
	if !strings.Contains(out, "Hub") {
		t.Fatalf("discover:\n%s", out)
	}
	// The wrong PIN is refused; the right one pairs.
	if out, err := roomcast("pair", "Bedroom", "--pin", "1111"); err == nil {
		t.Fatalf("pairing with a wrong PIN succeeded: %s", out)
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		out, err := roomcast("pair", "Bedroom", "--pin", "2468")
		if err == nil && strings.Contains(out, "paired Bedroom") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pair: %v %s", err, out)
		}
		time.Sleep(time.Second) // the broker's browser may not have resolved it yet, or the PIN limiter holds
	}
	// The speaker joins the hub's broker with its new credential.
	deadline = time.Now().Add(15 * time.Second)
	for !strings.Contains(out, "Bedroom") {
		if time.Now().After(deadline) {
			t.Fatalf("the paired speaker never joined:\n%s", out)
		}
		time.Sleep(300 * time.Millisecond)
		out, _ = roomcast("devices")
	}
	// A stranger's re-pairing is refused.
	if out, err := roomcast("pair", "Bedroom", "--pin", "2468"); err == nil || !strings.Contains(out, "already_paired") {
		t.Fatalf("re-pairing a paired speaker: %v %s", err, out)
	}
}
