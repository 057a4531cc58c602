package events

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSocketStreamsJSONLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.sock")
	s := NewSocket(path, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var c net.Conn
	var err error
	for i := 0; i < 100; i++ {
		if c, err = net.Dial("unix", path); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A second client that never reads must not hold the first back.
	idle, _ := net.Dial("unix", path)
	defer idle.Close()
	time.Sleep(50 * time.Millisecond) // let both register
	for i := 0; i < 3; i++ {
		s.Publish(Event{Event: Playing, DeviceID: "d", TrackURI: "roomcast:track:" + string(rune('a'+i))})
	}
	sc := bufio.NewScanner(c)
	for i := 0; i < 3; i++ {
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		if !sc.Scan() {
			t.Fatalf("line %d: %v", i, sc.Err())
		}
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Event != Playing || e.TrackURI != "roomcast:track:"+string(rune('a'+i)) {
			t.Fatalf("line %d: %s (%v)", i, sc.Text(), err)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestHookGetsTheEventInItsEnvironment(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	h := NewHook(`printf '%s|%s|%s|%s\n' "$ROOMCAST_EVENT" "$ROOMCAST_TRACK_URI" "$ROOMCAST_VOLUME" "$ROOMCAST_EVENT_JSON" >> `+out, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.Run(ctx)
	h.Publish(Event{Event: Volume, DeviceID: "d", Volume: 35})
	h.Publish(Event{Event: TrackChanged, DeviceID: "d", TrackURI: "roomcast:track:x", Title: "It's \"quoted\"; $(rm -rf /)"})
	var lines []string
	for i := 0; i < 100 && len(lines) < 2; i++ {
		time.Sleep(20 * time.Millisecond)
		b, _ := os.ReadFile(out)
		lines = strings.Split(strings.TrimSpace(string(b)), "\n")
		if lines[0] == "" {
			lines = nil
		}
	}
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "volume||35|") || !strings.HasPrefix(lines[1], "track_changed|roomcast:track:x|") {
		t.Fatalf("hook ran as %q", lines)
	}
	// The title travels as data, never as shell code.
	if !strings.Contains(lines[1], `$(rm -rf /)`) {
		t.Fatalf("title mangled: %q", lines[1])
	}
}

func TestHookDropsWhenSlow(t *testing.T) {
	h := NewHook("sleep 5", slog.New(slog.DiscardHandler))
	before := Dropped.Load()
	for i := 0; i < 100; i++ {
		h.Publish(Event{Event: Playing})
	}
	if Dropped.Load()-before != 100-64 {
		t.Fatalf("dropped %d, want %d", Dropped.Load()-before, 100-64)
	}
}

func TestParseSpec(t *testing.T) {
	for in, want := range map[string]string{"": "", "unix:/run/x.sock": "/run/x.sock"} {
		if got, err := ParseSpec(in); err != nil || got != want {
			t.Errorf("%q: %q %v", in, got, err)
		}
	}
	for _, bad := range []string{"unix:", "tcp:1.2.3.4:5", "/tmp/x"} {
		if _, err := ParseSpec(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
