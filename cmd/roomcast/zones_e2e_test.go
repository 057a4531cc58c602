package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTwoZonesOnOneBox: two roomcastd on one box (a Pi with two DACs),
// neither given --pair-listen, both run: the second takes another pairing
// port by itself and advertises it. A hub on the LAN sees both speakers,
// each at its own port, and pairs each through that port; both then join
// the hub. A --pair-listen the user chose that is taken is an error.
func TestTwoZonesOnOneBox(t *testing.T) {
	hubNS, boxNS := twoHosts(t)
	bin := buildAll(t)
	roomcastd := func(ns []string, args ...string) *exec.Cmd {
		return exec.Command(ns[0], append(ns[1:], append([]string{filepath.Join(bin, "roomcastd")}, args...)...)...)
	}
	hub := t.TempDir()
	startProc(t, "hub", roomcastd(hubNS, "--listen", "10.77.0.1:4100", "--state-dir", hub, "--name", "Hub", "--mdns", "v0",
		"--pair-listen", "10.77.0.1:0", "--mpris", "off", "--output", "none"))
	zone := func(name string, extra ...string) *exec.Cmd {
		return roomcastd(boxNS, append([]string{"--state-dir", t.TempDir(), "--name", name, "--mdns", "v1",
			"--wait-for-pairing", "--mpris", "off", "--output", "none"}, extra...)...)
	}
	startProc(t, "kitchen", zone("Kitchen"))
	startProc(t, "den", zone("Den"))
	roomcast := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		full := append(hubNS[1:], append([]string{filepath.Join(bin, "roomcast"), "--broker", "http://10.77.0.1:4100",
			"--token-file", filepath.Join(hub, "owner.token")}, args...)...)
		out, err := exec.CommandContext(ctx, hubNS[0], full...).Output()
		return string(out), err
	}

	ports := map[string]int{}
	deadline := time.Now().Add(30 * time.Second)
	for ports["Kitchen"] == 0 || ports["Den"] == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("discover did not list both zones: %v", ports)
		}
		out, _ := roomcast("discover", "--interfaces", "v0", "--timeout", "2s", "--json")
		var list struct {
			Speakers []struct {
				Name string `json:"name"`
				Port int    `json:"port"`
			} `json:"speakers"`
		}
		_ = json.Unmarshal([]byte(out), &list)
		for _, s := range list.Speakers {
			ports[s.Name] = s.Port
		}
	}
	if k, d := ports["Kitchen"], ports["Den"]; k == d || (k != 4101 && d != 4101) {
		t.Fatalf("pairing ports: Kitchen %d, Den %d; want 4101 and another", k, d)
	}
	// The hub pairs each zone through its advertised port.
	for _, name := range []string{"Kitchen", "Den"} {
		deadline := time.Now().Add(20 * time.Second)
		for {
			out, err := roomcast("pair", name)
			if err == nil && strings.Contains(out, "paired "+name) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("pair %s: %v %s", name, err, out)
			}
			time.Sleep(time.Second) // the hub's browser may not have resolved it yet
		}
	}
	deadline = time.Now().Add(15 * time.Second)
	for {
		out, _ := roomcast("devices")
		if strings.Contains(out, "Kitchen") && strings.Contains(out, "Den") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the two zones never joined the hub:\n%s", out)
		}
		time.Sleep(300 * time.Millisecond)
	}
	// The default port given explicitly, and taken: refused.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	hall := zone("Hall", "--pair-listen", ":4101")
	out, err := exec.CommandContext(ctx, hall.Args[0], hall.Args[1:]...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--pair-listen") || !strings.Contains(string(out), "address already in use") {
		t.Fatalf("an explicit, taken --pair-listen: %v\n%s", err, out)
	}
}
