package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/roomcast/roomcast/client"
	"github.com/roomcast/roomcast/internal/testenv"
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

// TestAutoOutputWithoutSoundCard: on a machine with no sound card and no
// sound server, --output auto plays to the null output, says so once in
// the log, and libasound's configuration errors never reach stderr.
// On a machine that has a sound card, the daemon runs in a mount namespace
// where an empty /proc/asound hides it.
func TestAutoOutputWithoutSoundCard(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "roomcastd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	command := func(args ...string) *exec.Cmd { return exec.Command(bin, args...) }
	if b, err := os.ReadFile("/proc/asound/cards"); err == nil && !strings.Contains(string(b), "no soundcards") && strings.TrimSpace(string(b)) != "" {
		testenv.Root(t, "hiding this machine's sound cards in a mount namespace")
		unshare := testenv.Tool(t, "unshare", "util-linux")
		command = func(args ...string) *exec.Cmd {
			return exec.Command(unshare, append([]string{"--mount", "--propagation", "private", "sh", "-c",
				`mount -t tmpfs none /proc/asound && exec "$@"`, "sh", bin}, args...)...)
		}
		t.Log("this machine has a sound card: hidden from the daemon by an empty /proc/asound")
	}
	cmd := command("--listen", "127.0.0.1:0", "--state-dir", filepath.Join(dir, "state"), "--mdns", "off",
		"--pair-listen", "127.0.0.1:0", "--mpris", "off", "--output", "auto")
	cmd.Env = append(os.Environ(), "PULSE_SERVER=unix:"+filepath.Join(dir, "no-pulse"), "NOTIFY_SOCKET=")
	var stderr syncBuf
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Ready once the broker URL is printed; the output is opened before.
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stderr.String(), "roomcast broker: http://") {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("no broker URL:\n%s", stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, stderr.String())
	}
	logs := stderr.String()
	if n := strings.Count(logs, "playing to the null output"); n != 1 {
		t.Fatalf("the null fallback is said %d times, want once:\n%s", n, logs)
	}
	if strings.Contains(logs, "ALSA lib") {
		t.Fatalf("libasound errors on stderr:\n%s", logs)
	}

	// --list-outputs: every output once on stdout, the backends it could
	// not list named on stderr, exit 0.
	list := command("--list-outputs")
	list.Env = cmd.Env
	var out, errb strings.Builder
	list.Stdout, list.Stderr = &out, &errb
	if err := list.Run(); err != nil {
		t.Fatalf("--list-outputs: %v\n%s%s", err, out.String(), errb.String())
	}
	for _, spec := range []string{"auto", "null", "wav:PATH"} {
		n := 0
		for _, l := range strings.Split(out.String(), "\n") {
			if f := strings.Fields(l); len(f) > 0 && f[0] == spec {
				n++
			}
		}
		if n != 1 {
			t.Errorf("--list-outputs lists %s %d times:\n%s", spec, n, out.String())
		}
	}
	if e := errb.String(); !strings.Contains(e, "PulseAudio") || !strings.Contains(e, "no sound card") || strings.Contains(e, "ALSA lib") {
		t.Errorf("--list-outputs stderr: %q", e)
	}
}

// syncBuf is a strings.Builder safe for one writer and concurrent readers.
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

// TestBadOptionsRefused: every bad value is a usage error naming the
// option, from flags and from the config file alike (a SIGHUP reload uses
// the same parser, so a bad edit is refused the same way).
func TestBadOptionsRefused(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		key, val, flagVal string // config value (TOML) and flag value
		mention           string
	}{
		{"name", `"` + strings.Repeat("x", 257) + `"`, strings.Repeat("x", 257), "--name"},
		{"name", `"Kitchen\u0007"`, "Kitchen\a", "--name"},
		{"volume-curve", `"loud"`, "loud", "volume curve"},
		{"volume-curve", `"log:5"`, "log:5", "volume curve"},
		{"crossfade", `"31s"`, "31s", "--crossfade"},
		{"volume", `101`, "101", "--volume"},
		{"normalize-target", `-80.0`, "-80", "--normalize-target"},
		{"period-ms", `0`, "0", "--period-ms"},
	}
	for _, c := range cases {
		var errb strings.Builder
		_, err := parseOptions([]string{"--" + c.key, c.flagVal, "--state-dir", dir}, &errb)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.mention) {
			t.Errorf("flag --%s %.20q: %v, want a usage error about %s", c.key, c.flagVal, err, c.mention)
		}
		cfg := filepath.Join(dir, "bad.toml")
		if err := os.WriteFile(cfg, []byte(c.key+" = "+c.val+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err = parseOptions([]string{"--config", cfg, "--state-dir", dir}, &errb)
		if !errors.As(err, &ue) {
			t.Errorf("config %s = %.20s: %v, want a usage error", c.key, c.val, err)
		}
	}
	o, err := parseOptions([]string{"--name", "Küche", "--volume-curve", "log:60", "--state-dir", dir}, io.Discard)
	if err != nil || o.Name != "Küche" || o.VolumeCurve.String() != "log:60" {
		t.Fatalf("good options: %+v %v", o, err)
	}
}
