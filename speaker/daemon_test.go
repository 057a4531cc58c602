package speaker

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/roomcast/roomcast/audio/dsp"
	"github.com/roomcast/roomcast/client"
	"github.com/roomcast/roomcast/protocol"
)

// syncBuf is a strings.Builder for one writer and concurrent readers.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// singleBox is a single-box configuration on loopback: no mDNS, MPRIS or
// audio.
func singleBox(t *testing.T, name string) Config {
	return Config{Name: name, StateDir: t.TempDir(), Listen: "127.0.0.1:0", MDNS: "off", PairListen: "127.0.0.1:0",
		MPRIS: "off", Output: "none", Heartbeat: 8 * time.Second, DropAfter: 20 * time.Second, Volume: 50,
		Gain: dsp.DefaultGainPolicy(), Prefetch: 10 * time.Second, PeriodMS: 20, Periods: 4}
}

// TestDaemonReloadAndStop runs a single-box daemon in-process: it joins
// its embedded broker, a Reload renames it there, and cancelling Run
// stops every part and returns nil.
func TestDaemonReloadAndStop(t *testing.T) {
	cfg := singleBox(t, "Kitchen")
	var stderr syncBuf
	renamed := cfg
	renamed.Name = "Den"
	d, err := New(cfg, Runtime{Stderr: &stderr, Reload: func() (Config, error) { return renamed, nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()

	re := regexp.MustCompile(`roomcast broker: (http://\S+)`)
	var url string
	for deadline := time.Now().Add(20 * time.Second); url == ""; time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(stderr.String()); m != nil {
			url = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no broker URL: %q", stderr.String())
		}
	}
	tok, err := os.ReadFile(filepath.Join(cfg.StateDir, "owner.token"))
	if err != nil {
		t.Fatal(err)
	}
	names := func() []string {
		c, err := client.Dial(ctx, url, strings.TrimSpace(string(tok)), protocol.Hello{Device: protocol.DeviceInfo{
			ID: "t", Name: "t", Type: protocol.DeviceController}}, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var n []string
		for _, dev := range c.Welcome().Devices {
			if dev.Online {
				n = append(n, dev.Name)
			}
		}
		return n
	}
	waitNames := func(want string) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if n := names(); len(n) == 1 && n[0] == want {
				return
			} else if time.Now().After(deadline) {
				t.Fatalf("devices %v, want [%s]", n, want)
			}
		}
	}
	waitNames("Kitchen")
	d.Reload(ctx)
	waitNames("Den")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// TestDaemonFirstErrorStopsAll: a part that fails (the embedded broker
// cannot listen) ends Run with its error, after the other parts stopped.
func TestDaemonFirstErrorStopsAll(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := singleBox(t, "Kitchen")
	cfg.Listen = taken.Addr().String()
	d, err := New(cfg, Runtime{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(context.Background()) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("Run: %v, want the broker's listen error", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after a part failed")
	}
}
