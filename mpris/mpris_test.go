package mpris

import (
	"encoding/xml"
	"errors"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/roomcast/roomcast/internal/testenv"
	"github.com/roomcast/roomcast/protocol"
)

// fixture is a real broker, a fake speaker "a" that is active and plays
// the album, and the MPRIS service of another device ("b", not connected:
// a controller only) on a private session bus, with a godbus client
// subscribed to the player's signals.
type fixture struct {
	tb   *testBroker
	a    *fakeSpeaker
	bus  *dbusDaemon
	conn *dbus.Conn
	sigs chan *dbus.Signal
	obj  dbus.BusObject
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	testenv.Tool(t, "playerctl", "playerctl")
	fx := &fixture{tb: startBroker(t)}
	fx.a = newFakeSpeaker(t, fx.tb, "a", "Kitchen")
	fx.a.playAlbum(t, 0, 10_000)
	fx.bus = sessionBus(t, t.TempDir())
	fx.conn = testConn(t, fx.bus.addr)
	fx.sigs = signals(t, fx.conn)
	startService(t, Options{Bus: BusSession, BusAddress: fx.bus.addr, Broker: fx.tb.url, Token: fx.tb.tok,
		DeviceID: "b", Identity: "roomcast (Den)"})
	waitName(t, fx.conn, BusName)
	fx.obj = fx.conn.Object(BusName, objectPath)
	// The service has seen the session once Metadata names the track.
	eventually(t, wait, "service follows the session", func() (bool, string) {
		out, _ := playerctl(t, fx.bus.addr, "-p", "roomcast", "metadata", "xesam:title")
		return out == "First Light", out
	})
	return fx
}

func (fx *fixture) get(t *testing.T, iface, name string) any {
	t.Helper()
	v, err := fx.obj.GetProperty(iface + "." + name)
	if err != nil {
		t.Fatalf("get %s.%s: %v", iface, name, err)
	}
	return v.Value()
}

func TestPlayerctlControlsTheSession(t *testing.T) {
	fx := newFixture(t)
	addr := fx.bus.addr
	// pc runs playerctl on the roomcast player.
	pc := func(t *testing.T, args ...string) string {
		t.Helper()
		return mustPlayerctl(t, addr, append([]string{"-p", "roomcast"}, args...)...)
	}

	t.Run("list and identity", func(t *testing.T) {
		out := mustPlayerctl(t, addr, "-l")
		mustf(t, strings.Split(out, "\n")[0] == "roomcast", "playerctl -l: %q", out)
		mustf(t, fx.get(t, ifaceRoot, "Identity") == "roomcast (Den)", "Identity %v", fx.get(t, ifaceRoot, "Identity"))
		mustf(t, fx.get(t, ifaceRoot, "CanQuit") == false && fx.get(t, ifacePlayer, "CanControl") == true, "CanQuit/CanControl")
		schemes := fx.get(t, ifaceRoot, "SupportedUriSchemes").([]string)
		mustf(t, len(schemes) == 1 && schemes[0] == "roomcast", "schemes %v", schemes)
	})

	t.Run("status and metadata", func(t *testing.T) {
		mustf(t, pc(t, "status") == "Playing", "status %q", pc(t, "status"))
		got := pc(t, "metadata", "--format",
			"{{mpris:trackid}}|{{mpris:length}}|{{mpris:artUrl}}|{{xesam:title}}|{{xesam:artist}}|{{xesam:album}}|{{xesam:albumArtist}}|{{xesam:trackNumber}}|{{xesam:url}}")
		// playerctl prints an object path the GVariant way, quoted.
		want := "'/org/roomcast/track/" + hexOf("roomcast:track:t1") + "'|240000000|http://127.0.0.1/art/a1.jpg|First Light|The Testers|Fixtures|Various Testers|1|roomcast:track:t1"
		mustf(t, got == want, "metadata\n got %s\nwant %s", got, want)
		md := fx.get(t, ifacePlayer, "Metadata").(map[string]dbus.Variant)
		for key, sig := range map[string]string{"mpris:trackid": "o", "mpris:length": "x", "mpris:artUrl": "s", "xesam:title": "s",
			"xesam:artist": "as", "xesam:album": "s", "xesam:albumArtist": "as", "xesam:trackNumber": "i"} {
			mustf(t, md[key].Signature().String() == sig, "Metadata %s has signature %q, want %q", key, md[key].Signature(), sig)
		}
		mustf(t, pc(t, "loop") == "None" && pc(t, "shuffle") == "Off", "loop %q shuffle %q", pc(t, "loop"), pc(t, "shuffle"))
		mustf(t, pc(t, "volume") == "0.400000", "volume %q", pc(t, "volume"))
	})

	t.Run("position advances in seconds", func(t *testing.T) {
		p1 := seconds(t, pc(t, "position"))
		time.Sleep(600 * time.Millisecond)
		p2 := seconds(t, pc(t, "position"))
		// Started at 10 s a moment ago; playerctl prints seconds from µs.
		mustf(t, p1 >= 10 && p1 < 20, "position %v, want just after 10 s", p1)
		mustf(t, p2-p1 > 0.4 && p2-p1 < 2, "position %v then %v: not advancing in real time", p1, p2)
		us := fx.get(t, ifacePlayer, "Position").(int64)
		mustf(t, us > 10_000_000 && us < 20_000_000, "Position %d µs", us)
	})

	t.Run("play-pause", func(t *testing.T) {
		drain(fx.sigs)
		pc(t, "play-pause")
		cmd := fx.a.nextCommand(t)
		mustf(t, cmd.Name == protocol.CmdPause, "speaker got %s, want pause", cmd.Name)
		st := fx.tb.state(t).State
		mustf(t, st.Status == protocol.StatusPaused && st.DeviceID == "a", "broker state %s on %s", st.Status, st.DeviceID)
		s := nextSignal(t, fx.sigs, "org.freedesktop.DBus.Properties.PropertiesChanged", func(s *dbus.Signal) bool {
			_, ok := s.Body[1].(map[string]dbus.Variant)["PlaybackStatus"]
			return ok
		})
		mustf(t, s.Body[0] == ifacePlayer && s.Body[1].(map[string]dbus.Variant)["PlaybackStatus"].Value() == "Paused", "signal %v", s.Body)
		mustf(t, pc(t, "status") == "Paused", "status %q", pc(t, "status"))
		p1 := seconds(t, pc(t, "position"))
		time.Sleep(300 * time.Millisecond)
		mustf(t, seconds(t, pc(t, "position")) == p1, "position moves while paused")

		pc(t, "play-pause")
		mustf(t, fx.a.nextCommand(t).Name == protocol.CmdResume, "play-pause while paused must resume")
		mustf(t, fx.tb.state(t).State.Status == protocol.StatusPlaying, "broker state %s", fx.tb.state(t).State.Status)
		eventually(t, wait, "status Playing", func() (bool, string) { s := pc(t, "status"); return s == "Playing", s })
	})

	t.Run("next and previous", func(t *testing.T) {
		pc(t, "next")
		mustf(t, fx.a.nextCommand(t).Name == protocol.CmdSkipNext, "next")
		st := fx.tb.state(t).State
		mustf(t, st.Track.URI == "roomcast:track:t2" && st.Index == 1, "broker state after next: %+v", st.Track)
		eventually(t, wait, "title after next", func() (bool, string) { s := pc(t, "metadata", "xesam:title"); return s == "Second Wind", s })
		pc(t, "previous")
		mustf(t, fx.a.nextCommand(t).Name == protocol.CmdSkipPrev, "previous")
		mustf(t, fx.tb.state(t).State.Track.URI == "roomcast:track:t1", "broker state after previous: %+v", fx.tb.state(t).State.Track)
		eventually(t, wait, "title after previous", func() (bool, string) { s := pc(t, "metadata", "xesam:title"); return s == "First Light", s })
	})

	t.Run("position 30 seeks and announces Seeked", func(t *testing.T) {
		drain(fx.sigs)
		pc(t, "position", "30")
		cmd := fx.a.nextCommand(t)
		mustf(t, cmd.Name == protocol.CmdSeek && *cmd.PositionMS == 30_000, "speaker got %+v", cmd)
		st := fx.tb.state(t).State
		mustf(t, st.PositionAt(time.Now().UnixMilli()) >= 30_000 && st.PositionAt(time.Now().UnixMilli()) < 32_000, "broker position %d", st.PositionMS)
		s := nextSignal(t, fx.sigs, ifacePlayer+".Seeked", nil)
		pos := s.Body[0].(int64)
		mustf(t, pos >= 30_000_000 && pos < 32_000_000, "Seeked(%d)", pos)
		p := seconds(t, pc(t, "position"))
		mustf(t, p >= 30 && p < 32, "position after seek %v", p)
		// Relative seek: playerctl position 5- is Seek(-5 s).
		pc(t, "position", "5-")
		cmd = fx.a.nextCommand(t)
		mustf(t, cmd.Name == protocol.CmdSeek && *cmd.PositionMS >= 25_000 && *cmd.PositionMS < 27_000, "relative seek: %+v", cmd)
		nextSignal(t, fx.sigs, ifacePlayer+".Seeked", nil)
	})

	t.Run("volume loop shuffle", func(t *testing.T) {
		pc(t, "volume", "0.5")
		cmd := fx.a.nextCommand(t)
		mustf(t, cmd.Name == protocol.CmdVolume && *cmd.Volume == 50, "speaker got %+v", cmd)
		// Property writes do not wait for the broker: poll its state.
		fx.tb.eventually(t, "broker volume 50", func(st *protocol.PlayerState) bool { return st.Volume == 50 })
		eventually(t, wait, "volume", func() (bool, string) { s := pc(t, "volume"); return s == "0.500000", s })

		pc(t, "loop", "Track")
		cmd = fx.a.nextCommand(t)
		mustf(t, cmd.Name == protocol.CmdRepeat && cmd.Repeat == protocol.RepeatTrack, "speaker got %+v", cmd)
		fx.tb.eventually(t, "broker repeat track", func(st *protocol.PlayerState) bool { return st.Repeat == protocol.RepeatTrack })
		pc(t, "loop", "Playlist")
		mustf(t, fx.a.nextCommand(t).Repeat == protocol.RepeatContext, "Playlist is repeat context")
		fx.tb.eventually(t, "broker repeat context", func(st *protocol.PlayerState) bool { return st.Repeat == protocol.RepeatContext })
		eventually(t, wait, "loop", func() (bool, string) { s := pc(t, "loop"); return s == "Playlist", s })

		pc(t, "shuffle", "On")
		cmd = fx.a.nextCommand(t)
		mustf(t, cmd.Name == protocol.CmdShuffle && *cmd.Shuffle, "speaker got %+v", cmd)
		fx.tb.eventually(t, "broker shuffle on", func(st *protocol.PlayerState) bool { return st.Shuffle })
		eventually(t, wait, "shuffle", func() (bool, string) { s := pc(t, "shuffle"); return s == "On", s })
	})

	t.Run("invalid writes refused", func(t *testing.T) {
		err := fx.obj.SetProperty(ifacePlayer+".Rate", dbus.MakeVariant(2.0))
		var de dbus.Error
		mustf(t, errors.As(err, &de) && de.Name == "org.freedesktop.DBus.Error.InvalidArgs", "Rate 2.0: %v", err)
		mustf(t, fx.get(t, ifacePlayer, "Rate") == 1.0, "Rate changed")
		err = fx.obj.SetProperty(ifacePlayer+".LoopStatus", dbus.MakeVariant("Sometimes"))
		mustf(t, errors.As(err, &de) && de.Name == "org.freedesktop.DBus.Error.InvalidArgs", "LoopStatus Sometimes: %v", err)
	})

	t.Run("read-only properties refuse Set", func(t *testing.T) {
		for _, p := range []struct {
			iface, name string
			v           any
		}{
			{ifacePlayer, "PlaybackStatus", "Playing"}, {ifacePlayer, "Position", int64(0)}, {ifacePlayer, "Metadata", map[string]dbus.Variant{}},
			{ifacePlayer, "CanControl", false}, {ifacePlayer, "MinimumRate", 0.5}, {ifaceRoot, "Identity", "x"}, {ifaceRoot, "CanQuit", true},
		} {
			err := fx.obj.SetProperty(p.iface+"."+p.name, dbus.MakeVariant(p.v))
			var de dbus.Error
			mustf(t, errors.As(err, &de) && de.Name == "org.freedesktop.DBus.Properties.Error.ReadOnly", "Set %s: %v", p.name, err)
		}
		mustf(t, fx.get(t, ifacePlayer, "PlaybackStatus") == "Playing", "PlaybackStatus changed by a refused Set")
	})

	t.Run("Seeked on a jump made elsewhere", func(t *testing.T) {
		drain(fx.sigs)
		// Another picker seeks on the speaker: the state jumps to 100 s.
		fx.a.report(t, func(f *fakeSpeaker) { f.seek(100_000) })
		s := nextSignal(t, fx.sigs, ifacePlayer+".Seeked", nil)
		pos := s.Body[0].(int64)
		mustf(t, pos >= 100_000_000 && pos < 102_000_000, "Seeked(%d)", pos)
		// An ordinary progress report (consistent with playback) is not a jump.
		time.Sleep(200 * time.Millisecond)
		fx.a.report(t, func(*fakeSpeaker) {})
		noSignal(t, fx.sigs, ifacePlayer+".Seeked", 500*time.Millisecond)
	})

	t.Run("SetPosition needs the current track id", func(t *testing.T) {
		st := fx.tb.state(t).State
		err := fx.obj.Call(ifacePlayer+".SetPosition", 0, TrackID("roomcast:track:other"), int64(5_000_000)).Err
		mustf(t, err == nil, "SetPosition with another track id: %v", err)
		fx.a.noCommand(t, 300*time.Millisecond)
		err = fx.obj.Call(ifacePlayer+".SetPosition", 0, TrackID(st.Track.URI), int64(5_000_000)).Err
		mustf(t, err == nil, "SetPosition: %v", err)
		cmd := fx.a.nextCommand(t)
		mustf(t, cmd.Name == protocol.CmdSeek && *cmd.PositionMS == 5_000, "speaker got %+v", cmd)
		// Our own seek is announced even when it is too small to look
		// like a jump (here +300 ms).
		drain(fx.sigs)
		err = fx.obj.Call(ifacePlayer+".Seek", 0, int64(300_000)).Err
		mustf(t, err == nil, "Seek: %v", err)
		cmd = fx.a.nextCommand(t)
		mustf(t, cmd.Name == protocol.CmdSeek && *cmd.PositionMS >= 5_300 && *cmd.PositionMS < 6_500, "speaker got %+v", cmd)
		s := nextSignal(t, fx.sigs, ifacePlayer+".Seeked", nil)
		mustf(t, s.Body[0].(int64) >= 5_300_000 && s.Body[0].(int64) < 6_500_000, "Seeked(%d)", s.Body[0])
		noSignal(t, fx.sigs, ifacePlayer+".Seeked", 300*time.Millisecond) // exactly once

		// Past the end: SetPosition does nothing, Seek acts as Next.
		err = fx.obj.Call(ifacePlayer+".SetPosition", 0, TrackID(st.Track.URI), int64(241_000_000)).Err
		mustf(t, err == nil, "SetPosition past the end: %v", err)
		fx.a.noCommand(t, 200*time.Millisecond)
		err = fx.obj.Call(ifacePlayer+".Seek", 0, int64(1_000_000_000)).Err
		mustf(t, err == nil, "Seek past the end: %v", err)
		mustf(t, fx.a.nextCommand(t).Name == protocol.CmdSkipNext, "Seek past the end must act as Next")
		fx.tb.eventually(t, "next track", func(st *protocol.PlayerState) bool { return st.Track.URI == "roomcast:track:t2" })
	})

	t.Run("open and stop", func(t *testing.T) {
		pc(t, "open", "roomcast:album:b2")
		cmd := fx.a.nextCommand(t)
		mustf(t, cmd.Name == protocol.CmdPlay && cmd.ContextURI == "roomcast:album:b2" && cmd.DeviceID == "", "open: speaker got %+v", cmd)
		err := fx.obj.Call(ifacePlayer+".OpenUri", 0, "roomcast:track:t3").Err
		mustf(t, err == nil, "OpenUri track: %v", err)
		cmd = fx.a.nextCommand(t)
		mustf(t, cmd.Name == protocol.CmdPlay && len(cmd.URIs) == 1 && cmd.URIs[0] == "roomcast:track:t3", "OpenUri track: %+v", cmd)
		err = fx.obj.Call(ifacePlayer+".OpenUri", 0, "https://example.com/x.ogg").Err
		var de dbus.Error
		mustf(t, errors.As(err, &de) && de.Name == "org.freedesktop.DBus.Error.NotSupported", "OpenUri https: %v", err)
		fx.a.noCommand(t, 200*time.Millisecond)

		pc(t, "stop")
		mustf(t, fx.a.nextCommand(t).Name == protocol.CmdPause, "stop pauses")
		mustf(t, fx.tb.state(t).State.Status == protocol.StatusPaused, "broker state %s", fx.tb.state(t).State.Status)
		err = fx.conn.Object(BusName, objectPath).Call(ifaceRoot+".Quit", 0).Err
		mustf(t, errors.As(err, &de) && de.Name == "org.freedesktop.DBus.Error.NotSupported", "Quit: %v", err)
	})
}

// TestIntrospection checks every interface, method, signal and property
// signature against the MPRIS specification, from the introspection XML
// that dbus-send fetches.
func TestIntrospection(t *testing.T) {
	testenv.Tool(t, "dbus-send", "dbus-bin")
	tb := startBroker(t)
	bus := sessionBus(t, t.TempDir())
	conn := testConn(t, bus.addr)
	startService(t, Options{BusAddress: bus.addr, Broker: tb.url, Token: tb.tok, DeviceID: "b"})
	waitName(t, conn, BusName)
	out, err := exec.Command("dbus-send", "--bus="+bus.addr, "--print-reply=literal", "--dest="+BusName,
		string(objectPath), "org.freedesktop.DBus.Introspectable.Introspect").CombinedOutput()
	if err != nil {
		t.Fatalf("dbus-send Introspect: %v: %s", err, out)
	}
	type arg struct {
		Name      string `xml:"name,attr"`
		Type      string `xml:"type,attr"`
		Direction string `xml:"direction,attr"`
	}
	type member struct {
		Name   string `xml:"name,attr"`
		Args   []arg  `xml:"arg"`
		Type   string `xml:"type,attr"`
		Access string `xml:"access,attr"`
	}
	var node struct {
		Interfaces []struct {
			Name       string   `xml:"name,attr"`
			Methods    []member `xml:"method"`
			Signals    []member `xml:"signal"`
			Properties []member `xml:"property"`
		} `xml:"interface"`
	}
	if err := xml.Unmarshal([]byte(strings.TrimSpace(string(out))), &node); err != nil {
		t.Fatalf("introspection XML: %v\n%s", err, out)
	}
	got := map[string]string{}
	for _, in := range node.Interfaces {
		for _, m := range in.Methods {
			var sig []string
			for _, a := range m.Args {
				sig = append(sig, a.Direction+":"+a.Type)
			}
			got[in.Name+"."+m.Name] = "method(" + strings.Join(sig, ",") + ")"
		}
		for _, s := range in.Signals {
			var sig []string
			for _, a := range s.Args {
				sig = append(sig, a.Type)
			}
			got[in.Name+"."+s.Name] = "signal(" + strings.Join(sig, ",") + ")"
		}
		for _, p := range in.Properties {
			got[in.Name+"."+p.Name] = p.Type + " " + p.Access
		}
	}
	want := map[string]string{
		"org.freedesktop.DBus.Introspectable.Introspect":    "method(out:s)",
		"org.freedesktop.DBus.Properties.Get":               "method(in:s,in:s,out:v)",
		"org.freedesktop.DBus.Properties.GetAll":            "method(in:s,out:a{sv})",
		"org.freedesktop.DBus.Properties.Set":               "method(in:s,in:s,in:v)",
		"org.freedesktop.DBus.Properties.PropertiesChanged": "signal(s,a{sv},as)",
		"org.mpris.MediaPlayer2.Raise":                      "method()",
		"org.mpris.MediaPlayer2.Quit":                       "method()",
		"org.mpris.MediaPlayer2.CanQuit":                    "b read",
		"org.mpris.MediaPlayer2.CanRaise":                   "b read",
		"org.mpris.MediaPlayer2.HasTrackList":               "b read",
		"org.mpris.MediaPlayer2.Identity":                   "s read",
		"org.mpris.MediaPlayer2.DesktopEntry":               "s read",
		"org.mpris.MediaPlayer2.SupportedUriSchemes":        "as read",
		"org.mpris.MediaPlayer2.SupportedMimeTypes":         "as read",
		"org.mpris.MediaPlayer2.Player.Next":                "method()",
		"org.mpris.MediaPlayer2.Player.Previous":            "method()",
		"org.mpris.MediaPlayer2.Player.Pause":               "method()",
		"org.mpris.MediaPlayer2.Player.PlayPause":           "method()",
		"org.mpris.MediaPlayer2.Player.Stop":                "method()",
		"org.mpris.MediaPlayer2.Player.Play":                "method()",
		"org.mpris.MediaPlayer2.Player.Seek":                "method(in:x)",
		"org.mpris.MediaPlayer2.Player.SetPosition":         "method(in:o,in:x)",
		"org.mpris.MediaPlayer2.Player.OpenUri":             "method(in:s)",
		"org.mpris.MediaPlayer2.Player.Seeked":              "signal(x)",
		"org.mpris.MediaPlayer2.Player.PlaybackStatus":      "s read",
		"org.mpris.MediaPlayer2.Player.LoopStatus":          "s readwrite",
		"org.mpris.MediaPlayer2.Player.Rate":                "d readwrite",
		"org.mpris.MediaPlayer2.Player.Shuffle":             "b readwrite",
		"org.mpris.MediaPlayer2.Player.Metadata":            "a{sv} read",
		"org.mpris.MediaPlayer2.Player.Volume":              "d readwrite",
		"org.mpris.MediaPlayer2.Player.Position":            "x read",
		"org.mpris.MediaPlayer2.Player.MinimumRate":         "d read",
		"org.mpris.MediaPlayer2.Player.MaximumRate":         "d read",
		"org.mpris.MediaPlayer2.Player.CanGoNext":           "b read",
		"org.mpris.MediaPlayer2.Player.CanGoPrevious":       "b read",
		"org.mpris.MediaPlayer2.Player.CanPlay":             "b read",
		"org.mpris.MediaPlayer2.Player.CanPause":            "b read",
		"org.mpris.MediaPlayer2.Player.CanSeek":             "b read",
		"org.mpris.MediaPlayer2.Player.CanControl":          "b read",
	}
	for k, w := range want {
		mustf(t, got[k] == w, "%s: introspected %q, want %q", k, got[k], w)
	}
	for k := range got {
		if strings.HasPrefix(k, "org.mpris.") {
			_, ok := want[k]
			mustf(t, ok, "unexpected member %s (%s)", k, got[k])
		}
	}
	// The methods named in the XML are the ones that answer.
	err = conn.Object(BusName, objectPath).Call(ifaceRoot+".Raise", 0).Err
	mustf(t, err == nil, "Raise: %v", err)
}

func hexOf(s string) string { return strings.TrimPrefix(string(TrackID(s)), "/org/roomcast/track/") }

func seconds(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) {
		t.Fatalf("not a position in seconds: %q", s)
	}
	return f
}
