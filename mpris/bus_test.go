package mpris

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"

	"github.com/roomcast/roomcast/internal/testenv"
	"github.com/roomcast/roomcast/protocol"
)

// TestRemoteControl: speaker a plays; the MPRIS service belongs to
// device b, which is idle. Media keys on b's bus control a, through the
// broker, and b itself receives nothing. When a goes away, Play on b
// starts the session on b.
func TestRemoteControl(t *testing.T) {
	testenv.Tool(t, "playerctl", "playerctl")
	tb := startBroker(t)
	a := newFakeSpeaker(t, tb, "a", "Kitchen")
	b := newFakeSpeaker(t, tb, "b", "Den")
	a.playAlbum(t, 1, 42_000)
	bus := sessionBus(t, t.TempDir())
	conn := testConn(t, bus.addr)
	startService(t, Options{BusAddress: bus.addr, Broker: tb.url, Token: tb.tok, DeviceID: "b", Identity: "roomcast (Den)"})
	waitName(t, conn, BusName)
	obj := conn.Object(BusName, objectPath)
	eventually(t, wait, "b's MPRIS shows a's session", func() (bool, string) {
		v, err := obj.GetProperty(ifacePlayer + ".PlaybackStatus")
		return err == nil && v.Value() == "Playing", fmt.Sprint(v, err)
	})

	if err := obj.Call(ifacePlayer+".Pause", 0).Err; err != nil {
		t.Fatalf("Pause on b's bus name: %v", err)
	}
	cmd := a.nextCommand(t)
	mustf(t, cmd.Name == protocol.CmdPause && cmd.From == "b.mpris", "a got %+v", cmd)
	snap := tb.state(t)
	mustf(t, snap.ActiveDeviceID == "a" && snap.State.DeviceID == "a" && snap.State.Status == protocol.StatusPaused,
		"broker: active %s, state %s on %s", snap.ActiveDeviceID, snap.State.Status, snap.State.DeviceID)
	b.noCommand(t, 200*time.Millisecond)
	pausedAt := snap.State.PositionMS

	// a leaves (its session stays the user's); Play on b takes it over here.
	a.c.Close()
	eventually(t, wait, "CanPause false once a is offline", func() (bool, string) {
		v, err := obj.GetProperty(ifacePlayer + ".CanPause")
		return err == nil && v.Value() == false, fmt.Sprint(v, err)
	})
	mustPlayerctl(t, bus.addr, "-p", "roomcast", "play")
	cmd = b.nextCommand(t)
	mustf(t, cmd.Name == protocol.CmdPlay && cmd.DeviceID == "b" && cmd.ContextURI == album && cmd.Offset == 1 &&
		cmd.PositionMS != nil && *cmd.PositionMS == pausedAt, "b got %+v", cmd)
	snap = tb.state(t)
	mustf(t, snap.ActiveDeviceID == "b" && snap.State.DeviceID == "b" && snap.State.Status == protocol.StatusPlaying,
		"broker: active %s, state %s on %s", snap.ActiveDeviceID, snap.State.Status, snap.State.DeviceID)
}

// TestBusNameFallback: when another connection owns the well-known name,
// the service takes the per-instance name, and playerctl finds it.
func TestBusNameFallback(t *testing.T) {
	testenv.Tool(t, "playerctl", "playerctl")
	tb := startBroker(t)
	a := newFakeSpeaker(t, tb, "a", "Kitchen")
	a.playAlbum(t, 0, 0)
	bus := sessionBus(t, t.TempDir())
	squatter := testConn(t, bus.addr)
	if r, err := squatter.RequestName(BusName, dbus.NameFlagDoNotQueue); err != nil || r != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("take %s first: %v %v", BusName, r, err)
	}
	startService(t, Options{BusAddress: bus.addr, Broker: tb.url, Token: tb.tok, DeviceID: "b"})
	instance := fmt.Sprintf("%s.instance%d", BusName, os.Getpid())
	conn := testConn(t, bus.addr)
	waitName(t, conn, instance)
	player := strings.TrimPrefix(instance, "org.mpris.MediaPlayer2.")
	list := mustPlayerctl(t, bus.addr, "-l")
	mustf(t, strings.Contains(list, player), "playerctl -l: %q, want %s", list, player)
	eventually(t, wait, "status through the instance name", func() (bool, string) {
		out, _ := playerctl(t, bus.addr, "-p", player, "status")
		return out == "Playing", out
	})
	mustPlayerctl(t, bus.addr, "-p", player, "pause")
	mustf(t, a.nextCommand(t).Name == protocol.CmdPause, "pause through the instance name")
}

// TestBusLossSurvived kills the session bus's dbus-daemon and starts a
// new one at the same address: the service reconnects, takes its name
// again and works.
func TestBusLossSurvived(t *testing.T) {
	testenv.Tool(t, "playerctl", "playerctl")
	tb := startBroker(t)
	a := newFakeSpeaker(t, tb, "a", "Kitchen")
	a.playAlbum(t, 0, 0)
	dir := t.TempDir()
	bus := sessionBus(t, dir)
	conn := testConn(t, bus.addr)
	startService(t, Options{BusAddress: bus.addr, Broker: tb.url, Token: tb.tok, DeviceID: "b"})
	waitName(t, conn, BusName)

	bus.kill()
	// The session changes while the bus is away (paused on the speaker
	// itself); the service must come back showing that.
	a.report(t, func(f *fakeSpeaker) {
		f.seek(f.position())
		f.st.Status = protocol.StatusPaused
	})
	time.Sleep(200 * time.Millisecond)
	_ = os.Remove(dir + "/bus")
	bus2 := sessionBus(t, dir)
	mustf(t, bus2.addr != "", "no address")
	conn2 := testConn(t, bus2.addr)
	waitName(t, conn2, BusName)
	// Everything was exported again, with the current values.
	eventually(t, wait, "status after the restart", func() (bool, string) {
		out, _ := playerctl(t, bus2.addr, "-p", "roomcast", "status")
		return out == "Paused", out
	})
	mustf(t, mustPlayerctl(t, bus2.addr, "-p", "roomcast", "metadata", "xesam:title") == "First Light", "metadata after the restart")
	mustPlayerctl(t, bus2.addr, "-p", "roomcast", "play-pause")
	mustf(t, a.nextCommand(t).Name == protocol.CmdResume, "command after the restart")
	mustf(t, tb.state(t).State.Status == protocol.StatusPlaying, "broker state %s", tb.state(t).State.Status)
}

// TestBrokerRestartSurvived: the service's own controller connection
// comes back after the broker restarts, and commands flow again.
func TestBrokerRestartSurvived(t *testing.T) {
	dir := t.TempDir()
	tb := startBrokerAt(t, dir, "127.0.0.1:0")
	tok, err := tb.b.Store().CreateToken(context.Background(), "alice", "test")
	if err != nil {
		t.Fatal(err)
	}
	tb.tok = tok
	a := newFakeSpeaker(t, tb, "a", "Kitchen")
	a.playAlbum(t, 0, 0)
	bus := sessionBus(t, t.TempDir())
	conn := testConn(t, bus.addr)
	startService(t, Options{BusAddress: bus.addr, Broker: tb.url, Token: tok, DeviceID: "b"})
	waitName(t, conn, BusName)
	obj := conn.Object(BusName, objectPath)
	prop := func(name string) any {
		v, err := obj.GetProperty(ifacePlayer + "." + name)
		if err != nil {
			t.Fatal(err)
		}
		return v.Value()
	}
	eventually(t, wait, "CanPause", func() (bool, string) { return prop("CanPause") == true, fmt.Sprint(prop("CanPause")) })

	// Down: nothing can be controlled.
	tb.stop()
	eventually(t, wait, "CanPause false while the broker is down", func() (bool, string) {
		return prop("CanPause") == false, fmt.Sprint(prop("CanPause"))
	})
	// Back on the same address and state; the speaker rejoins.
	tb2 := startBrokerAt(t, dir, strings.TrimPrefix(tb.url, "http://"))
	tb2.tok = tok
	a2 := newFakeSpeaker(t, tb2, "a", "Kitchen")
	a2.playAlbum(t, 1, 0)
	eventually(t, wait, "the session after the restart", func() (bool, string) {
		md := prop("Metadata").(map[string]dbus.Variant)
		return md["xesam:title"].Value() == "Second Wind" && prop("CanPause") == true, fmt.Sprint(md["xesam:title"])
	})
	if err := obj.Call(ifacePlayer+".Pause", 0).Err; err != nil {
		t.Fatalf("Pause after the broker restart: %v", err)
	}
	mustf(t, a2.nextCommand(t).Name == protocol.CmdPause, "pause after the broker restart")
	mustf(t, tb2.state(t).State.Status == protocol.StatusPaused, "broker state %s", tb2.state(t).State.Status)
}

// TestSetBroker: after SetBroker (a new pairing) the service follows the
// session on the other broker.
func TestSetBroker(t *testing.T) {
	tb1, tb2 := startBroker(t), startBroker(t)
	a1 := newFakeSpeaker(t, tb1, "a", "Kitchen")
	a1.playAlbum(t, 0, 0)
	a2 := newFakeSpeaker(t, tb2, "a", "Kitchen")
	a2.playAlbum(t, 2, 0)
	bus := sessionBus(t, t.TempDir())
	conn := testConn(t, bus.addr)
	s := startService(t, Options{BusAddress: bus.addr, Broker: tb1.url, Token: tb1.tok, DeviceID: "b"})
	waitName(t, conn, BusName)
	obj := conn.Object(BusName, objectPath)
	title := func() (bool, string) {
		v, err := obj.GetProperty(ifacePlayer + ".Metadata")
		if err != nil {
			return false, err.Error()
		}
		return true, fmt.Sprint(v.Value().(map[string]dbus.Variant)["xesam:title"].Value())
	}
	eventually(t, wait, "first broker's session", func() (bool, string) { ok, s := title(); return ok && s == "First Light", s })
	s.SetBroker(tb2.url, tb2.tok)
	eventually(t, wait, "second broker's session", func() (bool, string) { ok, s := title(); return ok && s == "Third Time", s })
	if err := obj.Call(ifacePlayer+".Pause", 0).Err; err != nil {
		t.Fatalf("Pause: %v", err)
	}
	mustf(t, a2.nextCommand(t).Name == protocol.CmdPause, "pause reaches the second broker's speaker")
	a1.noCommand(t, 100*time.Millisecond)
}

// TestSetPropAfterBusLoss: publishing to a connection that just closed
// is an error, not prop's panic.
func TestSetPropAfterBusLoss(t *testing.T) {
	bus := sessionBus(t, t.TempDir())
	c, err := dbus.Connect(bus.addr)
	if err != nil {
		t.Fatal(err)
	}
	p, err := prop.Export(c, objectPath, prop.Map{ifacePlayer: {"PlaybackStatus": {Value: "Stopped", Emit: prop.EmitTrue}}})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	err = setProp(p, ifacePlayer, "PlaybackStatus", "Playing")
	mustf(t, err != nil, "setProp on a closed connection: no error")
	mustf(t, p.GetMust(ifacePlayer, "PlaybackStatus") == "Playing", "value not stored")
}

// TestWritesRevertWhenRefused: a property write the broker refuses does
// not stick (the property returns to the session's value, announced), and
// a refused method call reports the broker's error to the D-Bus caller.
func TestWritesRevertWhenRefused(t *testing.T) {
	tb := startBroker(t)
	a := newFakeSpeaker(t, tb, "a", "Kitchen")
	a.playAlbum(t, 0, 0)
	bus := sessionBus(t, t.TempDir())
	conn := testConn(t, bus.addr)
	startService(t, Options{BusAddress: bus.addr, Broker: tb.url, Token: tb.tok, DeviceID: "b"})
	waitName(t, conn, BusName)
	obj := conn.Object(BusName, objectPath)
	sigs := signals(t, conn)
	eventually(t, wait, "volume 0.4", func() (bool, string) {
		v, err := obj.GetProperty(ifacePlayer + ".Volume")
		return err == nil && v.Value() == 0.4, fmt.Sprint(v, err)
	})
	// The speaker goes offline: the broker refuses the volume command
	// (device_offline) and Volume goes back to the session's value.
	a.c.Close()
	eventually(t, wait, "CanPause false once a is offline", func() (bool, string) {
		v, err := obj.GetProperty(ifacePlayer + ".CanPause")
		return err == nil && v.Value() == false, fmt.Sprint(v, err)
	})
	drain(sigs)
	if err := obj.SetProperty(ifacePlayer+".Volume", dbus.MakeVariant(0.9)); err != nil {
		t.Fatalf("Set Volume: %v", err)
	}
	nextSignal(t, sigs, "org.freedesktop.DBus.Properties.PropertiesChanged", func(s *dbus.Signal) bool {
		v, ok := s.Body[1].(map[string]dbus.Variant)["Volume"]
		return ok && v.Value() == 0.4
	})
	v, err := obj.GetProperty(ifacePlayer + ".Volume")
	mustf(t, err == nil && v.Value() == 0.4, "Volume after a refused write: %v %v", v, err)
	// A method call that the broker refuses reports the error to the caller.
	err = obj.Call(ifacePlayer+".OpenUri", 0, "roomcast:album:zz").Err
	var de dbus.Error
	mustf(t, errors.As(err, &de) && strings.Contains(fmt.Sprint(de.Body...), "offline"), "OpenUri with the device offline: %v", err)
}

// TestSetIdentity: a rename (roomcastd's SIGHUP reload) changes Identity
// and announces it with PropertiesChanged on the root interface.
func TestSetIdentity(t *testing.T) {
	tb := startBroker(t)
	bus := sessionBus(t, t.TempDir())
	conn := testConn(t, bus.addr)
	s := startService(t, Options{BusAddress: bus.addr, Broker: tb.url, Token: tb.tok, DeviceID: "b", Identity: "roomcast (Kitchen)"})
	waitName(t, conn, BusName)
	obj := conn.Object(BusName, objectPath)
	v, err := obj.GetProperty(ifaceRoot + ".Identity")
	mustf(t, err == nil && v.Value() == "roomcast (Kitchen)", "Identity at start: %v %v", v, err)
	sigs := signals(t, conn)
	s.SetIdentity("roomcast (Den)")
	nextSignal(t, sigs, "org.freedesktop.DBus.Properties.PropertiesChanged", func(sg *dbus.Signal) bool {
		v, ok := sg.Body[1].(map[string]dbus.Variant)["Identity"]
		return sg.Body[0] == ifaceRoot && ok && v.Value() == "roomcast (Den)"
	})
	v, err = obj.GetProperty(ifaceRoot + ".Identity")
	mustf(t, err == nil && v.Value() == "roomcast (Den)", "Identity after SetIdentity: %v %v", v, err)
	s.SetIdentity("") // ignored
	time.Sleep(100 * time.Millisecond)
	v, err = obj.GetProperty(ifaceRoot + ".Identity")
	mustf(t, err == nil && v.Value() == "roomcast (Den)", "Identity after SetIdentity(\"\"): %v %v", v, err)
}
