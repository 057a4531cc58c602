package mpris

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/roomcast/roomcast/protocol"
)

func TestParseBus(t *testing.T) {
	for in, want := range map[string]Bus{"": BusSession, "session": BusSession, "System": BusSystem, " off ": BusOff} {
		got, err := ParseBus(in)
		mustf(t, err == nil && got == want, "ParseBus(%q) = %q, %v; want %q", in, got, err, want)
	}
	for _, in := range []string{"user", "sessions", "on"} {
		_, err := ParseBus(in)
		mustf(t, err != nil, "ParseBus(%q) accepted", in)
	}
	_, err := New(Options{Bus: "bogus", Broker: "http://x"})
	mustf(t, err != nil, "New accepted bus bogus")
	_, err = New(Options{})
	mustf(t, err != nil, "New without broker or session accepted")
	s, err := New(Options{Bus: BusOff})
	mustf(t, err == nil, "New off: %v", err)
	mustf(t, s.Run(context.Background()) == nil, "Run off")
}

func TestTrackID(t *testing.T) {
	a, b := TrackID("roomcast:track:a-b_c.d:é/ x"), TrackID("roomcast:track:a-b_c.d:é/ y")
	mustf(t, a.IsValid() && b.IsValid(), "invalid object paths %q %q", a, b)
	mustf(t, a != b && strings.HasPrefix(string(a), "/org/roomcast/track/"), "track ids %q %q", a, b)
	mustf(t, TrackID("") == noTrack, "empty URI: %q", TrackID(""))
}

func TestMappings(t *testing.T) {
	for in, want := range map[float64]int{-1: 0, 0: 0, 0.004: 0, 0.005: 1, 0.5: 50, 0.999: 100, 1: 100, 7: 100} {
		mustf(t, volumePercent(in) == want, "volumePercent(%v) = %d, want %d", in, volumePercent(in), want)
	}
	for st, want := range map[protocol.Status]string{protocol.StatusPlaying: "Playing", protocol.StatusLoading: "Playing",
		protocol.StatusPaused: "Paused", protocol.StatusIdle: "Stopped", protocol.StatusEnded: "Stopped", protocol.StatusError: "Stopped"} {
		mustf(t, playbackStatus(st) == want, "%s -> %s", st, playbackStatus(st))
	}
	for _, loop := range []string{"None", "Track", "Playlist"} {
		r, ok := repeatOf(loop)
		mustf(t, ok && loopStatus(r) == loop, "LoopStatus %s round trip: %s", loop, r)
	}
	_, ok := repeatOf("none")
	mustf(t, !ok, "LoopStatus is case-sensitive")

	// Nothing played yet.
	v := viewOf(&Snapshot{Connected: true}, "b")
	mustf(t, v.PlaybackStatus == "Stopped" && !v.CanPlay && !v.CanSeek && v.Metadata["mpris:trackid"].Value() == noTrack, "empty view %+v", v)
}

func TestJumped(t *testing.T) {
	tr := &protocol.Track{URI: "roomcast:track:1", DurationMS: 300_000}
	prev := &protocol.PlayerState{Status: protocol.StatusPlaying, Track: tr, PositionMS: 10_000, ServerTS: 1_000_000}
	at := func(pos, ts int64, status protocol.Status) *protocol.PlayerState {
		return &protocol.PlayerState{Status: status, Track: tr, PositionMS: pos, ServerTS: ts}
	}
	other := &protocol.PlayerState{Status: protocol.StatusPlaying, Track: &protocol.Track{URI: "roomcast:track:2"}, ServerTS: 1_005_000}
	cases := []struct {
		next *protocol.PlayerState
		want bool
	}{
		{at(15_000, 1_005_000, protocol.StatusPlaying), false}, // played on
		{at(15_800, 1_005_000, protocol.StatusPlaying), false}, // drift within 1 s
		{at(17_000, 1_005_000, protocol.StatusPlaying), true},  // forward jump
		{at(2_000, 1_005_000, protocol.StatusPlaying), true},   // back
		{at(15_000, 1_005_000, protocol.StatusPaused), false},  // paused where it was
		{other, false}, // another track
	}
	for i, c := range cases {
		mustf(t, jumped(prev, c.next, time.Second) == c.want, "case %d: jumped = %v", i, !c.want)
	}
}

// fakeSession is a Session whose commands wait until the test releases
// them, so a test can act while a command is in flight.
type fakeSession struct {
	updates chan struct{}
	cmds    chan *protocol.Command
	release chan *protocol.PlayerState

	mu   sync.Mutex
	snap Snapshot
}

func (f *fakeSession) Snapshot() Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snap
}

func (f *fakeSession) Updates() <-chan struct{} { return f.updates }

func (f *fakeSession) Command(ctx context.Context, cmd *protocol.Command) (*protocol.PlayerState, error) {
	f.cmds <- cmd
	select {
	case st := <-f.release:
		f.set(st)
		return st, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (f *fakeSession) set(st *protocol.PlayerState) {
	f.mu.Lock()
	cp := *st
	f.snap.State = &cp
	f.mu.Unlock()
	select {
	case f.updates <- struct{}{}:
	default:
	}
}

// TestWriteInFlightKeepsValue: while a property write waits for the
// broker, session updates do not flip the property back to the old value.
func TestWriteInFlightKeepsValue(t *testing.T) {
	tr := &protocol.Track{URI: "roomcast:track:1", DurationMS: 300_000}
	st := &protocol.PlayerState{DeviceID: "a", Status: protocol.StatusPlaying, Track: tr, PositionMS: 1000,
		ServerTS: time.Now().UnixMilli(), Volume: 40, Version: 1}
	fs := &fakeSession{updates: make(chan struct{}, 1), cmds: make(chan *protocol.Command, 1), release: make(chan *protocol.PlayerState),
		snap: Snapshot{Connected: true, State: st, ActiveDeviceID: "a",
			Devices: []protocol.DeviceInfo{{ID: "a", Name: "A", Type: protocol.DeviceSpeaker, Online: true, Active: true}}}}
	bus := sessionBus(t, t.TempDir())
	conn := testConn(t, bus.addr)
	startService(t, Options{BusAddress: bus.addr, Session: fs})
	waitName(t, conn, BusName)
	obj := conn.Object(BusName, objectPath)
	sigs := signals(t, conn)
	volume := func() any {
		v, err := obj.GetProperty(ifacePlayer + ".Volume")
		if err != nil {
			t.Fatal(err)
		}
		return v.Value()
	}
	mustf(t, volume() == 0.4, "Volume %v", volume())

	if err := obj.SetProperty(ifacePlayer+".Volume", dbus.MakeVariant(0.9)); err != nil {
		t.Fatal(err)
	}
	cmd := <-fs.cmds
	mustf(t, cmd.Name == protocol.CmdVolume && *cmd.Volume == 90, "command %+v", cmd)
	// A progress report arrives while the volume command is in flight.
	next := *st
	next.Version, next.ServerTS, next.PositionMS = 2, time.Now().UnixMilli(), 1500
	fs.set(&next)
	time.Sleep(300 * time.Millisecond)
	mustf(t, volume() == 0.9, "Volume flipped back to %v during the write", volume())
	for len(sigs) > 0 {
		s := <-sigs
		if v, ok := s.Body[1].(map[string]dbus.Variant)["Volume"]; ok {
			mustf(t, v.Value() == 0.9, "PropertiesChanged Volume %v during the write", v.Value())
		}
	}
	done := next
	done.Version, done.Volume = 3, 90
	fs.release <- &done
	eventually(t, wait, "Volume after the answer", func() (bool, string) { v := volume(); return v == 0.9, fmt.Sprint(v) })
}

// TestMetadataReplaced: a new track's Metadata replaces the old one as a
// whole (keys the new track lacks disappear), in Get and in the signal.
func TestMetadataReplaced(t *testing.T) {
	withArt := &protocol.Track{URI: "roomcast:track:1", Title: "One", ArtURL: "http://x/1.jpg", DurationMS: 1000}
	st := &protocol.PlayerState{DeviceID: "a", Status: protocol.StatusPlaying, Track: withArt, Version: 1, Volume: 10}
	fs := &fakeSession{updates: make(chan struct{}, 1), cmds: make(chan *protocol.Command, 1), release: make(chan *protocol.PlayerState),
		snap: Snapshot{Connected: true, State: st, ActiveDeviceID: "a",
			Devices: []protocol.DeviceInfo{{ID: "a", Name: "A", Type: protocol.DeviceSpeaker, Online: true, Active: true}}}}
	bus := sessionBus(t, t.TempDir())
	conn := testConn(t, bus.addr)
	startService(t, Options{BusAddress: bus.addr, Session: fs})
	waitName(t, conn, BusName)
	obj := conn.Object(BusName, objectPath)
	sigs := signals(t, conn)
	metadata := func() map[string]dbus.Variant {
		v, err := obj.GetProperty(ifacePlayer + ".Metadata")
		if err != nil {
			t.Fatal(err)
		}
		return v.Value().(map[string]dbus.Variant)
	}
	mustf(t, metadata()["mpris:artUrl"].Value() == "http://x/1.jpg", "Metadata %v", metadata())

	next := *st
	next.Version, next.Track = 2, &protocol.Track{URI: "roomcast:track:2", Title: "Two"}
	fs.set(&next)
	s := nextSignal(t, sigs, "org.freedesktop.DBus.Properties.PropertiesChanged", func(s *dbus.Signal) bool {
		_, ok := s.Body[1].(map[string]dbus.Variant)["Metadata"]
		return ok
	})
	md := s.Body[1].(map[string]dbus.Variant)["Metadata"].Value().(map[string]dbus.Variant)
	_, art := md["mpris:artUrl"]
	_, length := md["mpris:length"]
	mustf(t, md["xesam:title"].Value() == "Two" && !art && !length, "signalled Metadata %v", md)
	got := metadata()
	_, art = got["mpris:artUrl"]
	mustf(t, got["xesam:title"].Value() == "Two" && !art && len(got) == len(md), "Metadata %v", got)
	// Nothing playing: only the NoTrack id is left.
	none := next
	none.Version, none.Track, none.Status = 3, nil, protocol.StatusIdle
	fs.set(&none)
	eventually(t, wait, "NoTrack", func() (bool, string) {
		got := metadata()
		return len(got) == 1 && got["mpris:trackid"].Value() == noTrack, fmt.Sprint(got)
	})
}
