// Package events publishes what a speaker does to home-automation users: a
// JSON-lines stream on a unix socket (`--events unix:PATH`) and a hook
// command run for each event (`--onevent CMD`).
//
// Publishing never blocks the player: each sink has a bounded queue, and an
// event that does not fit is dropped and counted (a slow hook or a reader
// that stopped reading cannot stall playback).
package events

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Kinds of events.
const (
	Playing      = "playing"       // playback started or resumed
	Paused       = "paused"        // paused (by a command or a transfer away)
	TrackChanged = "track_changed" // another track became current
	Ended        = "ended"         // the list finished
	Volume       = "volume"        // the volume changed
	Error        = "error"         // a track failed
	Connected    = "connected"     // joined the broker
	Disconnected = "disconnected"  // lost the broker (playback goes on)
	Active       = "active"        // became the active device
	Inactive     = "inactive"      // another device became active
)

// Event is one thing that happened. Fields that do not apply are empty.
type Event struct {
	Event      string `json:"event"`
	TimeMS     int64  `json:"time_ms"`
	DeviceID   string `json:"device_id"`
	TrackURI   string `json:"track_uri,omitempty"`
	Title      string `json:"title,omitempty"`
	Artist     string `json:"artist,omitempty"`
	Album      string `json:"album,omitempty"`
	DurationMS int64  `json:"duration_ms,omitempty"`
	PositionMS int64  `json:"position_ms,omitempty"`
	Volume     int    `json:"volume,omitempty"`
	Error      string `json:"error,omitempty"`
}

// Env is the event as environment variables for a hook:
// ROOMCAST_EVENT, ROOMCAST_TRACK_URI, ..., and ROOMCAST_EVENT_JSON.
func (e Event) Env() []string {
	js, _ := json.Marshal(e)
	env := []string{
		"ROOMCAST_EVENT=" + e.Event,
		"ROOMCAST_DEVICE_ID=" + e.DeviceID,
		"ROOMCAST_TIME_MS=" + strconv.FormatInt(e.TimeMS, 10),
		"ROOMCAST_EVENT_JSON=" + string(js),
	}
	add := func(k, v string) {
		if v != "" {
			env = append(env, "ROOMCAST_"+k+"="+v)
		}
	}
	add("TRACK_URI", e.TrackURI)
	add("TITLE", e.Title)
	add("ARTIST", e.Artist)
	add("ALBUM", e.Album)
	if e.DurationMS > 0 {
		add("DURATION_MS", strconv.FormatInt(e.DurationMS, 10))
	}
	if e.Event == Volume || e.Volume > 0 {
		add("VOLUME", strconv.Itoa(e.Volume))
	}
	add("POSITION_MS", strconv.FormatInt(e.PositionMS, 10))
	add("ERROR", e.Error)
	return env
}

// Sink receives events; Publish must not block.
type Sink interface {
	Publish(Event)
	Run(ctx context.Context) error
}

// Dropped counts events dropped by all sinks (queue full).
var Dropped atomic.Int64

// Hook runs a shell command for each event, one at a time, with the event
// in its environment. A command running longer than Timeout is killed.
type Hook struct {
	Command string
	Timeout time.Duration // default 10 s
	Log     *slog.Logger
	queue   chan Event
}

// NewHook prepares a hook with a queue of 64 events.
func NewHook(command string, log *slog.Logger) *Hook {
	return &Hook{Command: command, Timeout: 10 * time.Second, Log: log, queue: make(chan Event, 64)}
}

// Publish queues e, or drops it when 64 events are waiting.
func (h *Hook) Publish(e Event) {
	select {
	case h.queue <- e:
	default:
		Dropped.Add(1)
		h.Log.Warn("onevent: hook too slow, event dropped", "event", e.Event)
	}
}

// Run executes queued events until ctx ends.
func (h *Hook) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-h.queue:
			cctx, cancel := context.WithTimeout(ctx, h.Timeout)
			cmd := exec.CommandContext(cctx, "/bin/sh", "-c", h.Command)
			cmd.Env = append(os.Environ(), e.Env()...)
			out, err := cmd.CombinedOutput()
			cancel()
			if err != nil && ctx.Err() == nil {
				h.Log.Warn("onevent hook failed", "event", e.Event, "err", err, "output", strings.TrimSpace(string(out)))
			}
		}
	}
}

// Socket serves a JSON-lines stream of events to every client of a unix
// socket. A client that does not keep up loses events (counted), never
// the others.
//
// Concurrency: one goroutine (fanout, started by Run) owns the set of
// clients; Publish and the client connections reach it only with a
// socketMsg. Publish never blocks.
type Socket struct {
	Path  string
	Log   *slog.Logger
	inbox chan socketMsg
}

// socketMsg is what the fanout goroutine receives; the set is sealed.
type socketMsg interface{ isSocketMsg() }

type (
	publish struct{ e Event }          // stream e to every client
	join    struct{ ch chan<- []byte } // a client connected: its line queue
	leave   struct{ ch chan<- []byte } // it went away
)

func (publish) isSocketMsg() {}
func (join) isSocketMsg()    {}
func (leave) isSocketMsg()   {}

// NewSocket prepares a socket server at path.
func NewSocket(path string, log *slog.Logger) *Socket {
	return &Socket{Path: path, Log: log, inbox: make(chan socketMsg, 64)}
}

// Publish queues e for every client, or drops it when 64 messages are
// waiting.
func (s *Socket) Publish(e Event) {
	select {
	case s.inbox <- publish{e: e}:
	default:
		Dropped.Add(1)
	}
}

// post hands m to the fanout goroutine, waiting for room; false once ctx
// ended.
func (s *Socket) post(ctx context.Context, m socketMsg) bool {
	select {
	case s.inbox <- m:
		return true
	case <-ctx.Done():
		return false
	}
}

// Run listens (replacing a stale socket file) and streams until ctx ends.
func (s *Socket) Run(ctx context.Context) error {
	if fi, err := os.Lstat(s.Path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		_ = os.Remove(s.Path)
	}
	ln, err := net.Listen("unix", s.Path)
	if err != nil {
		return fmt.Errorf("events: %w", err)
	}
	_ = os.Chmod(s.Path, 0o660)
	go func() { <-ctx.Done(); ln.Close() }()
	go s.fanout(ctx)
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("events: %w", err)
		}
		go s.serve(ctx, c)
	}
}

// fanout owns the clients: each gets every published line on its own
// queue; a full queue drops the line for that client only.
func (s *Socket) fanout(ctx context.Context) {
	clients := map[chan<- []byte]struct{}{}
	for {
		var m socketMsg
		select {
		case <-ctx.Done():
			return
		case m = <-s.inbox:
		}
		switch m := m.(type) {
		case join:
			clients[m.ch] = struct{}{}
		case leave:
			delete(clients, m.ch)
		case publish:
			line, _ := json.Marshal(m.e)
			line = append(line, '\n')
			for ch := range clients {
				select {
				case ch <- line:
				default:
					Dropped.Add(1)
				}
			}
		default:
			// Unreachable while the set is sealed; never worth a panic.
			s.Log.Error("events: unknown socket message", "type", fmt.Sprintf("%T", m))
		}
	}
}

func (s *Socket) serve(ctx context.Context, c net.Conn) {
	defer c.Close()
	ch := make(chan []byte, 64)
	if !s.post(ctx, join{ch: ch}) {
		return
	}
	defer s.post(ctx, leave{ch: ch})
	// Notice a client that hangs up.
	gone := make(chan struct{})
	go func() {
		_, _ = bufio.NewReader(c).ReadByte()
		close(gone)
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-gone:
			return
		case line := <-ch:
			_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write(line); err != nil {
				return
			}
		}
	}
}

// ParseSpec reads `--events`: "" (none) or "unix:PATH".
func ParseSpec(spec string) (path string, err error) {
	if spec == "" {
		return "", nil
	}
	p, ok := strings.CutPrefix(spec, "unix:")
	if !ok || p == "" {
		return "", fmt.Errorf("--events %q: want unix:PATH", spec)
	}
	return p, nil
}
