package broker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/client"
	"github.com/roomcast/roomcast/protocol"
)

// TestActiveAnnouncedBeforeItsState: whichever way playback moves (a
// device starts playing by itself, play --device, a transfer), a client
// that gets a player state and looks at the device list it was sent sees
// that state's device as the active one: the new active device is
// announced before its state, never after.
func TestActiveAnnouncedBeforeItsState(t *testing.T) {
	tb := startBroker(t, "", nil)
	tok := tb.token(t, "alice")
	a := dial(t, tb, tok, speaker("a", "Kitchen"), client.Options{})
	b := dial(t, tb, tok, speaker("b", "Den"), client.Options{})
	c := dial(t, tb, tok, controller("c"), client.Options{})
	obs := dial(t, tb, tok, controller("obs"), client.Options{FrameBuffer: 1024})
	ctx := context.Background()

	// The observer records, for every state, the active device it had
	// been told of when the state arrived.
	type seen struct {
		state  string
		active string
	}
	got := make(chan seen, 64)
	go func() {
		active := obs.Welcome().ActiveDeviceID
		for f := range obs.Frames() {
			switch m := f.Msg.(type) {
			case *protocol.DeviceStateChanged:
				active = m.ActiveDeviceID
			case *protocol.PlayerStateChanged:
				got <- seen{state: m.State.DeviceID, active: active}
			}
		}
	}()
	// a starts playing by itself: a takeover with nobody active.
	if _, err := a.Request(ctx, playing("a", "roomcast:track:1", 0, 0)); err != nil {
		t.Fatal(err)
	}
	serveCommands(t, a, "a", nil)
	serveCommands(t, b, "b", nil)
	steps := []struct {
		name string
		req  protocol.Message
		dev  string // the device whose state the step ends with
	}{
		{"play on another device", &protocol.Command{Name: protocol.CmdPlay, DeviceID: "b", URIs: []string{"roomcast:track:2"}}, "b"},
		{"transfer", &protocol.TransferPlayback{DeviceID: "a"}, "a"},
		{"transfer back", &protocol.TransferPlayback{DeviceID: "b"}, "b"},
	}
	check := func(step, dev string) {
		t.Helper()
		for {
			s := next1(t, got)
			if s.state != s.active {
				t.Errorf("%s: state of %q arrived while the device list said %q is active", step, s.state, s.active)
			}
			if s.state == dev {
				return
			}
		}
	}
	check("takeover", "a")
	for _, s := range steps {
		if _, err := c.Request(ctx, s.req); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		check(s.name, s.dev)
	}
}

func next1[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		var zero T
		t.Fatalf("no %T within %s", zero, wait)
		return zero
	}
}

// TestRefusedPlayChangesNothing: a play on another device that the
// broker refuses (an unknown album, an offset past the end) neither
// pauses the active device nor moves the active role: nothing is
// announced that did not happen.
func TestRefusedPlayChangesNothing(t *testing.T) {
	tb := startBroker(t, "", func(o *Options) { o.Resolver = albumResolver{} })
	tok := tb.token(t, "alice")
	a := dial(t, tb, tok, speaker("a", "Kitchen"), client.Options{})
	b := dial(t, tb, tok, speaker("b", "Den"), client.Options{})
	c := dial(t, tb, tok, controller("c"), client.Options{})
	gotA := make(chan protocol.Message, 16)
	gotB := make(chan protocol.Message, 16)
	serveCommands(t, a, "a", gotA)
	serveCommands(t, b, "b", gotB)
	ctx := context.Background()
	if _, err := c.Request(ctx, &protocol.Command{Name: protocol.CmdPlay, DeviceID: "a", ContextURI: "roomcast:album:a1"}); err != nil {
		t.Fatal(err)
	}
	<-gotA
	for _, bad := range []*protocol.Command{
		{Name: protocol.CmdPlay, DeviceID: "b", ContextURI: "roomcast:album:nope"},
		{Name: protocol.CmdPlay, DeviceID: "b", ContextURI: "roomcast:album:a1", Offset: 3},
	} {
		_, err := c.Request(ctx, bad)
		var pe *protocol.Error
		mustf(t, errors.As(err, &pe) && (pe.Code == protocol.ErrNotFound || pe.Code == protocol.ErrBadRequest), "%+v: %v", bad, err)
	}
	// A command to the active device: had the refused plays paused a, that
	// pause would reach it first (one hub, one queue per connection).
	v := 30
	if _, err := c.Request(ctx, &protocol.Command{Name: protocol.CmdVolume, Volume: &v}); err != nil {
		t.Fatalf("volume on the active device: %v", err)
	}
	m := (<-gotA).(*protocol.Command)
	mustf(t, m.Name == protocol.CmdVolume, "the active device got %s (transfer %v) before the volume", m.Name, m.Transfer)
	select {
	case m := <-gotB:
		t.Fatalf("the refused play reached b: %+v", m)
	default:
	}
	code, body := httpGet(t, tb.url+"/v1/devices", tok)
	mustf(t, code == 200 && strings.Contains(body, `"active_device_id": "a"`), "devices after refused plays: %s", body)
}
