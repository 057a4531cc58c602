package main

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/roomcast/roomcast/client"
	"github.com/roomcast/roomcast/protocol"
)

// TestSystemdNotify runs the real binary under a NOTIFY_SOCKET the test
// listens on, as systemd would, and follows the daemon's life: READY,
// STATUS, WATCHDOG pings, RELOADING on SIGHUP (which renames the device),
// STOPPING on SIGTERM.
func TestSystemdNotify(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "roomcastd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	sockPath := filepath.Join(dir, "notify.sock")
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	msgs := make(chan string, 256)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := sock.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	cfg := filepath.Join(dir, "roomcastd.toml")
	if err := os.WriteFile(cfg, []byte("name = \"Kitchen\"\nlisten = \"127.0.0.1:0\"\nmdns = \"off\"\npair-listen = \"127.0.0.1:0\"\nmpris = \"off\"\noutput = \"none\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	cmd := exec.Command(bin, "--config", cfg, "--state-dir", state)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sockPath, "WATCHDOG_USEC=400000")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	urlc := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`roomcast broker: (http://\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				urlc <- m[1]
			}
		}
	}()
	// expect waits for a datagram containing want; seen keeps them all.
	var seen []string
	expect := func(want string) string {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					t.Fatalf("notify socket closed waiting for %q", want)
				}
				seen = append(seen, m)
				if strings.Contains(m, want) {
					return m
				}
			case <-deadline:
				t.Fatalf("no %q from roomcastd", want)
			}
		}
	}
	expect("READY=1")
	url := <-urlc
	tok, err := os.ReadFile(filepath.Join(state, "owner.token"))
	if err != nil {
		t.Fatal(err)
	}
	// Pings every half interval while the control loop is healthy.
	expect("WATCHDOG=1")
	start := time.Now()
	for i := 0; i < 4; i++ {
		expect("WATCHDOG=1")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("4 watchdog pings took %s, want about 0.8 s", d)
	}
	if !strings.Contains(strings.Join(seen, "\n"), "STATUS=Idle") {
		t.Fatalf("no STATUS=Idle among %q", seen)
	}

	// SIGHUP: reload renames the device.
	if err := os.WriteFile(cfg, []byte("name = \"Den\"\nlisten = \"127.0.0.1:0\"\nmdns = \"off\"\npair-listen = \"127.0.0.1:0\"\nmpris = \"off\"\noutput = \"none\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	if m := expect("RELOADING=1"); !strings.Contains(m, "MONOTONIC_USEC=") {
		t.Fatalf("RELOADING without MONOTONIC_USEC: %q", m)
	}
	expect("READY=1")
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := client.Dial(context.Background(), url, strings.TrimSpace(string(tok)), protocol.Hello{ProtocolVersion: protocol.Version,
			Device: protocol.DeviceInfo{ID: "t", Name: "t", Type: protocol.DeviceController}}, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		devs := c.Welcome().Devices
		c.Close()
		if len(devs) == 1 && devs[0].Name == "Den" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after SIGHUP the device list is %+v, want the name Den", devs)
		}
		time.Sleep(100 * time.Millisecond)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	expect("STOPPING=1")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}
