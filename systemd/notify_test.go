package systemd

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"
)

var socketKinds = []struct {
	name     string
	abstract bool
}{
	{"path", false},
	{"abstract", true},
}

func TestNotifierMessages(t *testing.T) {
	cases := []struct {
		name string
		call func(n *Notifier) error
		want []string
	}{
		{"ready", (*Notifier).Ready, []string{"READY=1"}},
		{"stopping", (*Notifier).Stopping, []string{"STOPPING=1"}},
		{"watchdog", (*Notifier).Watchdog, []string{"WATCHDOG=1"}},
		{"status", func(n *Notifier) error { return n.Status("playing: kitchen") },
			[]string{"STATUS=playing: kitchen"}},
		{"status newline flattened", func(n *Notifier) error { return n.Status("a\nb") },
			[]string{"STATUS=a b"}},
		{"status deduplicated", func(n *Notifier) error {
			for _, s := range []string{"idle", "idle", "playing", "playing", "idle"} {
				if err := n.Status(s); err != nil {
					return err
				}
			}
			return nil
		}, []string{"STATUS=idle", "STATUS=playing", "STATUS=idle"}},
		{"send joins fields", func(n *Notifier) error {
			return n.Send("EXTEND_TIMEOUT_USEC=5000000", "STATUS=migrating")
		}, []string{"EXTEND_TIMEOUT_USEC=5000000\nSTATUS=migrating"}},
		{"ready after status keeps status dedup", func(n *Notifier) error {
			if err := n.Status("x"); err != nil {
				return err
			}
			if err := n.Ready(); err != nil {
				return err
			}
			return n.Status("x")
		}, []string{"STATUS=x", "READY=1"}},
	}
	for _, kind := range socketKinds {
		for _, tc := range cases {
			t.Run(kind.name+"/"+tc.name, func(t *testing.T) {
				l := listenDgram(t, kind.abstract)
				n := NewNotifier(l.addr)
				if err := tc.call(n); err != nil {
					t.Fatalf("call: %v", err)
				}
				for _, want := range tc.want {
					if got := string(l.recv(t, time.Second).data); got != want {
						t.Fatalf("datagram = %q, want %q", got, want)
					}
				}
				l.expectNone(t, 50*time.Millisecond)
			})
		}
	}
}

func TestNotifierReloading(t *testing.T) {
	re := regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=([0-9]+)$`)
	for _, kind := range socketKinds {
		t.Run(kind.name, func(t *testing.T) {
			l := listenDgram(t, kind.abstract)
			n := NewNotifier(l.addr)
			before, err := monotonicUsec()
			if err != nil {
				t.Fatal(err)
			}
			if err := n.Reloading(); err != nil {
				t.Fatal(err)
			}
			after, _ := monotonicUsec()
			got := string(l.recv(t, time.Second).data)
			m := re.FindStringSubmatch(got)
			if m == nil {
				t.Fatalf("datagram = %q, want RELOADING=1 + MONOTONIC_USEC", got)
			}
			usec, _ := strconv.ParseUint(m[1], 10, 64)
			if usec < before || usec > after {
				t.Fatalf("MONOTONIC_USEC=%d not within CLOCK_MONOTONIC [%d, %d] µs", usec, before, after)
			}
		})
	}
}

func TestNotifierFromEnv(t *testing.T) {
	for _, kind := range socketKinds {
		t.Run(kind.name, func(t *testing.T) {
			l := listenDgram(t, kind.abstract)
			t.Setenv("NOTIFY_SOCKET", l.addr)
			n := NotifierFromEnv()
			if !n.Enabled() {
				t.Fatal("Enabled() = false with NOTIFY_SOCKET set")
			}
			if err := n.Ready(); err != nil {
				t.Fatal(err)
			}
			if got := string(l.recv(t, time.Second).data); got != "READY=1" {
				t.Fatalf("datagram = %q", got)
			}
		})
	}
}

// TestNotifierSilentWithoutSocket checks the "not under systemd" case: no
// errors, no log output, and the watchdog just waits for its context.
func TestNotifierSilentWithoutSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	os.Unsetenv("NOTIFY_SOCKET")
	t.Setenv("WATCHDOG_USEC", "100000")

	var logBuf syncBuffer
	log := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for name, n := range map[string]*Notifier{"env": NotifierFromEnv(), "nil": nil, "zero": {}, "empty": NewNotifier("")} {
		t.Run(name, func(t *testing.T) {
			if n.Enabled() {
				t.Fatal("Enabled() = true without a socket")
			}
			calls := map[string]func() error{
				"Ready": n.Ready, "Stopping": n.Stopping, "Reloading": n.Reloading,
				"Watchdog": n.Watchdog, "Status": func() error { return n.Status("x") },
				"Send": func() error { return n.Send("FOO=1") },
			}
			for cname, call := range calls {
				if err := call(); err != nil {
					t.Errorf("%s() = %v, want nil", cname, err)
				}
			}
			wd := NewWatchdog(n, log)
			hb := wd.Register("audio", time.Millisecond)
			_ = hb // never beats: stuck, but nothing to withhold
			ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
			defer cancel()
			start := time.Now()
			if err := wd.Run(ctx); err != nil {
				t.Fatalf("Run = %v", err)
			}
			if time.Since(start) < 140*time.Millisecond {
				t.Fatal("Run returned before its context was done")
			}
		})
	}
	if logBuf.Len() != 0 {
		t.Fatalf("unexpected log output: %s", logBuf.String())
	}
}

func TestNotifierErrors(t *testing.T) {
	cases := []struct {
		name   string
		socket string
		call   func(n *Notifier) error
	}{
		{"missing socket file", filepath.Join(t.TempDir(), "nope"), (*Notifier).Ready},
		{"unsupported address", "vsock:2:1234", (*Notifier).Ready},
		{"newline in assignment", "@unused", func(n *Notifier) error { return n.Send("A=1\nB=2") }},
		{"assignment without =", "@unused", func(n *Notifier) error { return n.Send("READY") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(NewNotifier(tc.socket)); err == nil {
				t.Fatal("want error, got nil")
			}
		})
	}
}

// TestNotifierStatusRetriesAfterFailure: a status that failed to send is not
// remembered, so sending it again is attempted once the socket works.
func TestNotifierStatusRetriesAfterFailure(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "s")
	n := NewNotifier(sock)
	if err := n.Status("up"); err == nil {
		t.Fatal("want error while the socket does not exist")
	}
	l := listenDgramAt(t, sock)
	if err := n.Status("up"); err != nil {
		t.Fatal(err)
	}
	if got := string(l.recv(t, time.Second).data); got != "STATUS=up" {
		t.Fatalf("datagram = %q", got)
	}
}

func TestNotifierConcurrent(t *testing.T) {
	l := listenDgram(t, true)
	n := NewNotifier(l.addr)
	const workers, each = 8, 25
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := n.Status(strconv.Itoa(w*each + i)); err != nil {
					t.Error(err)
				}
				if err := n.Watchdog(); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	for range 2 * workers * each {
		l.recv(t, time.Second)
	}
	l.expectNone(t, 50*time.Millisecond)
}

// syncBuffer is a bytes.Buffer safe for concurrent Write/String.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}
