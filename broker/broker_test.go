package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/roomcast/roomcast/broker/store"
	"github.com/roomcast/roomcast/client"
	"github.com/roomcast/roomcast/protocol"
)

const wait = 3 * time.Second

func TestStateFanoutAndIsolation(t *testing.T) {
	tb := startBroker(t, "", nil)
	alice, bob := tb.token(t, "alice"), tb.token(t, "bob")
	a := dial(t, tb, alice, speaker("a", "Kitchen"), client.Options{})
	b := dial(t, tb, alice, speaker("b", "Den"), client.Options{})
	c := dial(t, tb, alice, controller("c"), client.Options{})
	bobDev := dial(t, tb, bob, speaker("bob-1", "Bob's"), client.Options{})
	bobCtl := dial(t, tb, bob, controller("bob-c"), client.Options{})

	// A playing device with nobody active claims the role.
	before := time.Now().UnixMilli()
	if err := a.Send("", playing("a", "roomcast:track:1", 1000, 0)); err != nil {
		t.Fatal(err)
	}
	for _, obs := range []*client.Client{b, c} {
		// The new active device is announced before its state.
		d := next(t, obs, wait, func(m *protocol.DeviceStateChanged) bool { return m.ActiveDeviceID == "a" })
		mustf(t, d.Reason == "active", "reason %q", d.Reason)
		m := next(t, obs, wait, func(m *protocol.PlayerStateChanged) bool { return true })
		mustf(t, m.State.Version == 1 && m.State.DeviceID == "a" && m.State.PositionMS == 1000, "state %+v", m.State)
		mustf(t, m.State.ServerTS >= before && m.State.ServerTS <= time.Now().UnixMilli(), "server_ts %d not stamped now", m.State.ServerTS)
		mustf(t, m.TrackChanged, "first state must say the track changed")
	}
	// Same track, new position: not a track change.
	if err := a.Send("", playing("a", "roomcast:track:1", 2000, 0)); err != nil {
		t.Fatal(err)
	}
	m := next(t, c, wait, func(m *protocol.PlayerStateChanged) bool { return m.State.Version == 2 })
	mustf(t, !m.TrackChanged && m.State.PositionMS == 2000, "position update: %+v changed=%v", m.State, m.TrackChanged)
	// Next track: a track change.
	if err := a.Send("", playing("a", "roomcast:track:2", 0, 0)); err != nil {
		t.Fatal(err)
	}
	m = next(t, b, wait, func(m *protocol.PlayerStateChanged) bool { return m.State.Version == 3 })
	mustf(t, m.TrackChanged, "new track must say the track changed")

	// Bob sees none of it, cannot see or command Alice's devices.
	none[*protocol.PlayerStateChanged](t, bobCtl, 200*time.Millisecond)
	mustf(t, len(bobCtl.Welcome().Devices) == 1 && bobCtl.Welcome().Devices[0].ID == "bob-1", "bob's welcome lists %+v", bobCtl.Welcome().Devices)
	for _, req := range []protocol.Message{
		&protocol.Command{Name: protocol.CmdPause, DeviceID: "a"},
		&protocol.Command{Name: protocol.CmdPlay, DeviceID: "b", URIs: []string{"roomcast:track:9"}},
		&protocol.TransferPlayback{DeviceID: "a"},
	} {
		_, err := bobCtl.Request(context.Background(), req)
		var pe *protocol.Error
		mustf(t, errors.As(err, &pe) && pe.Code == protocol.ErrNotFound, "bob's %s on alice's device: %v", req.Type(), err)
	}
	none[*protocol.Command](t, a, 200*time.Millisecond)
	none[*protocol.Command](t, bobDev, 10*time.Millisecond)
	code, body := httpGet(t, tb.url+"/v1/devices", bob)
	mustf(t, code == 200 && !strings.Contains(body, `"Kitchen"`) && strings.Contains(body, `"Bob's"`), "bob's /v1/devices: %d %s", code, body)
	code, body = httpGet(t, tb.url+"/v1/state", alice)
	mustf(t, code == 200 && strings.Contains(body, `"roomcast:track:2"`), "alice's /v1/state: %d %s", code, body)
}

func TestCommandRelayAckIdempotency(t *testing.T) {
	tb := startBroker(t, "", nil)
	tok := tb.token(t, "alice")
	c := dial(t, tb, tok, controller("c"), client.Options{})
	ctx := context.Background()

	// No active device: a clear error.
	_, err := c.Request(ctx, &protocol.Command{Name: protocol.CmdPause})
	var pe *protocol.Error
	mustf(t, errors.As(err, &pe) && pe.Code == protocol.ErrNoActiveDevice, "pause with no device: %v", err)

	a := dial(t, tb, tok, speaker("a", "Kitchen"), client.Options{})
	got := make(chan protocol.Message, 16)
	serveCommands(t, a, "a", got)
	// play --device a makes it active and relays the play.
	ack, err := c.Request(ctx, &protocol.Command{Name: protocol.CmdPlay, DeviceID: "a", ContextURI: "roomcast:album:x"})
	mustf(t, err == nil && ack.State != nil && ack.State.Status == protocol.StatusPlaying && ack.State.DeviceID == "a", "play: %v %+v", err, ack)
	cmd := (<-got).(*protocol.Command)
	mustf(t, cmd.Name == protocol.CmdPlay && cmd.From == "c", "device got %+v", cmd)

	vol := 17
	ack, err = c.RequestID(ctx, "vol-1", &protocol.Command{Name: protocol.CmdVolume, Volume: &vol})
	mustf(t, err == nil && ack.State.Volume == 17, "volume: %v %+v", err, ack)
	<-got
	// The same request id again is answered from the cache, not re-run.
	ack2, err := c.RequestID(ctx, "vol-1", &protocol.Command{Name: protocol.CmdVolume, Volume: &vol})
	mustf(t, err == nil && ack2.State.Version == ack.State.Version, "duplicate: %v %+v vs %+v", err, ack2, ack)
	select {
	case m := <-got:
		t.Fatalf("duplicate command reached the device: %+v", m)
	case <-time.After(200 * time.Millisecond):
	}
	// Volume is reflected in the device list.
	code, body := httpGet(t, tb.url+"/v1/devices", tok)
	mustf(t, code == 200 && strings.Contains(body, `"volume": 17`), "devices after volume: %s", body)

	// A device that never answers: the sender gets a timeout.
	mute := dial(t, tb, tok, speaker("mute", "Mute"), client.Options{})
	_ = mute
	start := time.Now()
	_, err = c.Request(ctx, &protocol.Command{Name: protocol.CmdPlay, DeviceID: "mute", URIs: []string{"roomcast:track:1"}})
	mustf(t, errors.As(err, &pe) && pe.Code == protocol.ErrTimeout, "mute device: %v", err)
	mustf(t, time.Since(start) < 2*time.Second+time.Second, "timeout took %s", time.Since(start))

	// Commands to a known offline device fail fast.
	mute.Close()
	next(t, c, wait, func(m *protocol.DeviceStateChanged) bool { return m.Changed == "mute" && m.Reason == "left" })
	_, err = c.Request(ctx, &protocol.Command{Name: protocol.CmdPause})
	mustf(t, errors.As(err, &pe) && pe.Code == protocol.ErrDeviceOffline, "offline active device: %v", err)
}

func TestTransferHandsOverPosition(t *testing.T) {
	tb := startBroker(t, "", nil)
	tok := tb.token(t, "alice")
	a := dial(t, tb, tok, speaker("a", "Kitchen"), client.Options{})
	b := dial(t, tb, tok, speaker("b", "Den"), client.Options{})
	c := dial(t, tb, tok, controller("c"), client.Options{})
	if err := a.Send("", playing("a", "roomcast:track:7", 10_000, 0)); err != nil {
		t.Fatal(err)
	}
	next(t, c, wait, func(m *protocol.PlayerStateChanged) bool { return m.State.DeviceID == "a" })

	// The old device answers the transfer pause with its exact position.
	go func() {
		for f := range a.Frames() {
			if m, ok := f.Msg.(*protocol.Command); ok && m.Name == protocol.CmdPause && m.Transfer {
				st := playing("a", "roomcast:track:7", 12_345, 1).State
				st.Status = protocol.StatusPaused
				_ = a.Send("", &protocol.Ack{Ref: f.ID, State: &st})
			}
		}
	}()
	got := make(chan protocol.Message, 16)
	serveCommands(t, b, "b", got)

	ack, err := c.Request(context.Background(), &protocol.TransferPlayback{DeviceID: "b"})
	mustf(t, err == nil, "transfer: %v", err)
	var tp *protocol.TransferPlayback
	for tp == nil {
		m := <-got
		tp, _ = m.(*protocol.TransferPlayback)
	}
	mustf(t, tp.State.PositionMS == 12_345 && tp.State.Status == protocol.StatusPlaying && tp.State.DeviceID == "b" &&
		tp.State.Track.URI == "roomcast:track:7", "target got %+v", tp.State)
	mustf(t, ack.State != nil && ack.State.DeviceID == "b", "ack %+v", ack.State)
	d := next(t, c, wait, func(m *protocol.DeviceStateChanged) bool { return m.ActiveDeviceID == "b" })
	for _, dev := range d.Devices {
		mustf(t, dev.Active == (dev.ID == "b"), "device list after transfer: %+v", d.Devices)
	}
	// The old device, writing from before the transfer, is stale and is
	// told to resync.
	_, err = a.Request(context.Background(), playing("a", "roomcast:track:7", 13_000, ack.State.Version-1))
	var pe *protocol.Error
	mustf(t, errors.As(err, &pe) && pe.Code == protocol.ErrStaleState && pe.State != nil && pe.State.DeviceID == "b", "old device's state: %v", err)

	// Transfer to an offline device is refused.
	b.Close()
	next(t, c, wait, func(m *protocol.DeviceStateChanged) bool { return m.Changed == "b" && m.Reason == "left" })
	_, err = c.Request(context.Background(), &protocol.TransferPlayback{DeviceID: "b"})
	mustf(t, errors.As(err, &pe) && pe.Code == protocol.ErrDeviceOffline, "transfer to offline: %v", err)
	_, err = c.Request(context.Background(), &protocol.TransferPlayback{DeviceID: "nope"})
	mustf(t, errors.As(err, &pe) && pe.Code == protocol.ErrNotFound, "transfer to unknown: %v", err)
}

func TestTransferFromUnresponsiveDeviceExtrapolates(t *testing.T) {
	tb := startBroker(t, "", nil)
	tok := tb.token(t, "alice")
	a := dial(t, tb, tok, speaker("a", "Kitchen"), client.Options{})
	b := dial(t, tb, tok, speaker("b", "Den"), client.Options{})
	c := dial(t, tb, tok, controller("c"), client.Options{})
	if err := a.Send("", playing("a", "roomcast:track:7", 10_000, 0)); err != nil {
		t.Fatal(err)
	}
	next(t, c, wait, func(m *protocol.PlayerStateChanged) bool { return m.State.DeviceID == "a" })
	got := make(chan protocol.Message, 16)
	serveCommands(t, b, "b", got)
	start := time.Now()
	ack, err := c.Request(context.Background(), &protocol.TransferPlayback{DeviceID: "b"})
	mustf(t, err == nil, "transfer: %v", err)
	elapsed := time.Since(start).Milliseconds()
	// a never answers: after TransferOutTimeout (500 ms) b starts from the
	// extrapolated position.
	mustf(t, ack.State.PositionMS >= 10_000+450 && ack.State.PositionMS <= 10_000+elapsed+50, "position %d after %d ms", ack.State.PositionMS, elapsed)
}

func TestHeartbeatDropsDeadDevice(t *testing.T) {
	tb := startBroker(t, "", func(o *Options) {
		o.HeartbeatInterval = 100 * time.Millisecond
		o.DropAfter = 600 * time.Millisecond
	})
	tok := tb.token(t, "alice")
	addr := strings.TrimPrefix(tb.url, "http://")
	p := newFreezeProxy(t, addr)
	dead := dial(t, tb, tok, speaker("dead", "Dead"), client.Options{NetDial: p.dialer()})
	watcher := dial(t, tb, tok, controller("w"), client.Options{})
	// Alive while heartbeats flow: no drop within several intervals.
	none[*protocol.DeviceStateChanged](t, watcher, time.Second)
	p.freeze()
	frozen := time.Now()
	m := next(t, watcher, 3*time.Second, func(m *protocol.DeviceStateChanged) bool { return m.Changed == "dead" })
	took := time.Since(frozen)
	// The broker last heard from the device when the proxy last passed
	// its bytes on (a pong up to a heartbeat before the freeze, or later
	// under load): the drop comes DropAfter after that, never sooner.
	silent := time.Since(p.lastUpstream())
	mustf(t, m.Reason == "timeout", "reason %q", m.Reason)
	for _, d := range m.Devices {
		mustf(t, !(d.ID == "dead" && d.Online), "dead device still online: %+v", d)
	}
	mustf(t, silent >= 600*time.Millisecond && took < 1500*time.Millisecond,
		"dropped %s after the device was last heard (%s after the freeze), want DropAfter (600ms) after it", silent, took)
	_ = dead
}

func TestConcurrentWritersLastWriteWins(t *testing.T) {
	tb := startBroker(t, "", nil)
	tok := tb.token(t, "alice")
	a := dial(t, tb, tok, speaker("a", "Kitchen"), client.Options{})
	b := dial(t, tb, tok, speaker("b", "Den"), client.Options{})
	obs := []*client.Client{
		dial(t, tb, tok, controller("o1"), client.Options{FrameBuffer: 8192}),
		dial(t, tb, tok, controller("o2"), client.Options{FrameBuffer: 8192}),
	}
	ctx := context.Background()
	// Drain the writers' own fan-out (pause commands on takeover etc.).
	for _, w := range []*client.Client{a, b} {
		go func() {
			for range w.Frames() {
			}
		}()
	}

	// Two devices write at once, each based on the last version it knows.
	// Every write is either accepted, or rejected as stale / not active with
	// the current state to resync to; never lost silently.
	const n = 150
	type tally struct{ accepted, stale, notActive int }
	results := map[string]*tally{"a": {}, "b": {}}
	var wg sync.WaitGroup
	for _, w := range []struct {
		c  *client.Client
		id string
	}{{a, "a"}, {b, "b"}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var known uint64
			r := results[w.id]
			for i := 1; i <= n; i++ {
				ack, err := w.c.Request(ctx, playing(w.id, "roomcast:track:1", int64(i*10), known))
				var pe *protocol.Error
				switch {
				case err == nil:
					r.accepted++
					known = ack.State.Version
				case errors.As(err, &pe) && pe.State != nil && (pe.Code == protocol.ErrStaleState || pe.Code == protocol.ErrNotActive):
					if pe.Code == protocol.ErrStaleState {
						r.stale++
					} else {
						r.notActive++
					}
					known = pe.State.Version // resync
				default:
					t.Errorf("writer %s: %v", w.id, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	total := results["a"].accepted + results["b"].accepted
	t.Logf("a: %+v b: %+v", *results["a"], *results["b"])
	mustf(t, results["a"].accepted > 0 && results["b"].accepted > 0, "both writers should win sometimes: %+v %+v", *results["a"], *results["b"])
	mustf(t, results["a"].stale+results["b"].stale > 0, "concurrent writers never produced a stale write")

	// The broker's final state is the last accepted write; every observer
	// saw strictly increasing versions and ends on exactly that state.
	_, body := httpGet(t, tb.url+"/v1/state", tok)
	var snap Snapshot
	if err := json.Unmarshal([]byte(body), &snap); err != nil {
		t.Fatal(err)
	}
	mustf(t, snap.State.Version == uint64(total), "final version %d, want %d accepted writes", snap.State.Version, total)
	mustf(t, snap.ActiveDeviceID == snap.State.DeviceID, "active device %q but state written by %q", snap.ActiveDeviceID, snap.State.DeviceID)
	for i, o := range obs {
		var last protocol.PlayerState
		for last.Version < snap.State.Version {
			m := next(t, o, wait, func(m *protocol.PlayerStateChanged) bool { return true })
			mustf(t, m.State.Version > last.Version, "observer %d: version %d after %d", i, m.State.Version, last.Version)
			mustf(t, m.State.ServerTS >= last.ServerTS, "observer %d: server_ts went back", i)
			last = m.State
		}
		mustf(t, last.DeviceID == snap.State.DeviceID && last.PositionMS == snap.State.PositionMS && last.ServerTS == snap.State.ServerTS,
			"observer %d ends on %+v, broker on %+v", i, last, *snap.State)
	}
}

func TestTakeoverPausesOldDevice(t *testing.T) {
	tb := startBroker(t, "", nil)
	tok := tb.token(t, "alice")
	a := dial(t, tb, tok, speaker("a", "Kitchen"), client.Options{})
	b := dial(t, tb, tok, speaker("b", "Den"), client.Options{})
	ctx := context.Background()
	ack, err := a.Request(ctx, playing("a", "roomcast:track:1", 0, 0))
	mustf(t, err == nil, "a: %v", err)
	// b has seen version 1 and starts playing: it takes over.
	_, err = b.Request(ctx, playing("b", "roomcast:track:9", 0, ack.State.Version))
	mustf(t, err == nil, "takeover: %v", err)
	cmd := next(t, a, wait, func(m *protocol.Command) bool { return m.Name == protocol.CmdPause })
	mustf(t, cmd.Transfer && cmd.From == "b", "old device got %+v", cmd)
	// a, still streaming from its old version, is now stale.
	_, err = a.Request(ctx, playing("a", "roomcast:track:1", 500, ack.State.Version))
	var pe *protocol.Error
	mustf(t, errors.As(err, &pe) && pe.Code == protocol.ErrStaleState && pe.State.DeviceID == "b", "old device after takeover: %v", err)
	// A paused report from a device that is not active is refused.
	st := playing("a", "roomcast:track:1", 500, pe.State.Version)
	st.State.Status = protocol.StatusPaused
	_, err = a.Request(ctx, st)
	mustf(t, errors.As(err, &pe) && pe.Code == protocol.ErrNotActive, "paused state from a non-active device: %v", err)
}

func TestStaleStateFromOtherWriter(t *testing.T) {
	tb := startBroker(t, "", nil)
	tok := tb.token(t, "alice")
	a := dial(t, tb, tok, speaker("a", "Kitchen"), client.Options{})
	b := dial(t, tb, tok, speaker("b", "Den"), client.Options{})
	c := dial(t, tb, tok, controller("c"), client.Options{})
	ctx := context.Background()
	if _, err := a.Request(ctx, playing("a", "roomcast:track:1", 0, 0)); err != nil {
		t.Fatal(err)
	}
	// b becomes active through a transfer whose handover it does not ack
	// in time; it then writes based on an old version.
	go func() {
		for f := range b.Frames() {
			_ = f
		}
	}()
	go func() {
		for f := range a.Frames() {
			if m, ok := f.Msg.(*protocol.Command); ok && m.Transfer {
				st := playing("a", "roomcast:track:1", 100, 1).State
				st.Status = protocol.StatusPaused
				_ = a.Send("", &protocol.Ack{Ref: f.ID, State: &st})
			}
		}
	}()
	_, _ = c.Request(ctx, &protocol.TransferPlayback{DeviceID: "b"}) // times out: b never acks
	_, err := b.Request(ctx, playing("b", "roomcast:track:1", 0, 1))
	var pe *protocol.Error
	mustf(t, errors.As(err, &pe) && pe.Code == protocol.ErrStaleState && pe.State != nil && pe.State.Version >= 2, "stale write: %v", err)
	ack, err := b.Request(ctx, playing("b", "roomcast:track:1", 0, pe.State.Version))
	mustf(t, err == nil && ack.State.Version == pe.State.Version+1, "resynced write: %v", err)
}

func TestSlowConsumerIsolated(t *testing.T) {
	// The queue, not the write timeout or the heartbeat (a client that does
	// not read does not answer pings either), must be what cuts the slow
	// client here, even on a loaded machine: long timeouts, and a queue the
	// fast observer never fills.
	tb := startBroker(t, "", func(o *Options) {
		o.SendQueue = 512
		o.WriteTimeout = time.Minute
		o.DropAfter = time.Minute
	})
	tok := tb.token(t, "alice")
	a := dial(t, tb, tok, speaker("a", "Kitchen"), client.Options{})
	fast := dial(t, tb, tok, controller("fast"), client.Options{FrameBuffer: 8192})
	// The slow client's socket buffers are tiny and it never reads.
	slowDial := func(network, addr string) (net.Conn, error) {
		d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048) })
		}}
		return d.Dial(network, addr)
	}
	slow := dial(t, tb, tok, controller("slow"), client.Options{FrameBuffer: 1, NetDial: slowDial})

	const n = 3000
	var uris []string
	for i := 0; i < 100; i++ {
		uris = append(uris, fmt.Sprintf("roomcast:track:%032d", i))
	}
	start := time.Now()
	go func() {
		// About 2000 updates/s: far above what a real device sends, well
		// within what a reading client keeps up with.
		for i := 1; i <= n; i++ {
			m := playing("a", "roomcast:track:1", int64(i), 0)
			m.State.URIs = uris // ~4 KB frames: more than socket buffers absorb
			if err := a.Send("", m); err != nil {
				return
			}
			if i%10 == 0 {
				time.Sleep(5 * time.Millisecond)
			}
		}
	}()
	// Once the broker has cut the slow client (while it was not reading),
	// the client starts reading again and must learn why it was closed.
	cut := make(chan struct{})
	go func() {
		defer close(cut)
		for time.Since(start) < time.Minute {
			resp, err := http.Get(tb.url + "/metrics?token=" + tok)
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if strings.Contains(string(b), `roomcast_broker_disconnects_total{reason="slow_consumer"} 1`) {
					return
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	slowErr := make(chan error, 1)
	go func() {
		<-cut
		for range slow.Frames() {
		}
		slowErr <- slow.Err()
	}()
	for i := 1; i <= n; i++ {
		m := next(t, fast, 10*time.Second, func(m *protocol.PlayerStateChanged) bool { return true })
		mustf(t, m.State.PositionMS == int64(i), "fast observer got position %d, want %d", m.State.PositionMS, i)
	}
	t.Logf("fast observer got all %d updates in %s", n, time.Since(start))
	select {
	case err := <-slowErr:
		mustf(t, closeCode(err) == CloseSlowConsumer, "slow consumer ended with %v, want close %d", err, CloseSlowConsumer)
	case <-time.After(20 * time.Second):
		_, body := httpGet(t, tb.url+"/metrics", tok)
		for _, l := range strings.Split(body, "\n") {
			if strings.Contains(l, "disconnects") || strings.Contains(l, "connections") || strings.Contains(l, "sent_total") {
				t.Log(l)
			}
		}
		t.Fatal("the slow consumer was never disconnected")
	}
}

func TestProtocolErrorsAndLimits(t *testing.T) {
	tb := startBroker(t, "", func(o *Options) { o.MaxFrameBytes = 4096; o.MaxProtocolErrors = 3 })
	tok := tb.token(t, "alice")

	// A bad token never gets a websocket.
	_, err := client.Dial(context.Background(), tb.url, "rc_bogus", speaker("x", "X"), client.Options{})
	var he *client.HandshakeError
	mustf(t, errors.As(err, &he) && he.Status == 401, "bad token: %v", err)

	// A malformed frame gets a protocol error and the connection lives.
	c := dial(t, tb, tok, controller("c"), client.Options{})
	if err := c.SendRaw([]byte(`{"v":1,"type":"COMMAND","seq":99,"id":"x","payload":{"name":"pause","extra":1}}`)); err != nil {
		t.Fatal(err)
	}
	e := next(t, c, wait, func(m *protocol.Error) bool { return true })
	mustf(t, e.Code == protocol.ErrProtocol && strings.Contains(e.Message, "unknown_field"), "error %+v", e)
	_, err = c.Request(context.Background(), &protocol.Command{Name: protocol.CmdPause})
	var pe *protocol.Error
	mustf(t, errors.As(err, &pe) && pe.Code == protocol.ErrNoActiveDevice, "connection unusable after one bad frame: %v", err)
	// Repeated bad frames: disconnected with CloseProtocolErrors.
	for i := 0; i < 4; i++ {
		_ = c.SendRaw([]byte(`not json`))
	}
	err = waitDone(t, c, wait)
	mustf(t, closeCode(err) == CloseProtocolErrors, "after repeated garbage: %v", err)

	// A frame over the limit: close code 1009.
	c2 := dial(t, tb, tok, controller("c2"), client.Options{})
	_ = c2.SendRaw([]byte(`{"v":1,"type":"PING","seq":5,"payload":{"t0_us":1},"x":"` + strings.Repeat("a", 5000) + `"}`))
	err = waitDone(t, c2, wait)
	mustf(t, closeCode(err) == websocket.CloseMessageTooBig, "oversize frame: %v", err)

	// The first frame must be HELLO.
	raw, _, err := websocket.DefaultDialer.Dial(strings.Replace(tb.url, "http", "ws", 1)+"/v1/connect?token="+tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = raw.WriteMessage(websocket.TextMessage, []byte(`{"v":1,"type":"PING","seq":1,"payload":{"t0_us":1}}`))
	_, _, err = raw.ReadMessage()
	mustf(t, closeCode(err) == CloseProtocolErrors, "no hello: %v", err)
	raw.Close()

	// Sequence numbers must increase.
	c3 := dial(t, tb, tok, controller("c3"), client.Options{})
	_ = c3.SendRaw([]byte(`{"v":1,"type":"PING","seq":1,"payload":{"t0_us":1}}`))
	e = next(t, c3, wait, func(m *protocol.Error) bool { return true })
	mustf(t, strings.Contains(e.Message, "seq"), "replayed seq: %+v", e)
}

func TestHTTPEndpoints(t *testing.T) {
	tb := startBroker(t, "", nil)
	tok := tb.token(t, "alice")
	code, body := httpGet(t, tb.url+"/healthz", "")
	mustf(t, code == 200 && strings.Contains(body, `"ok"`), "healthz %d %s", code, body)
	for _, p := range []string{"/metrics", "/v1/devices", "/v1/state", "/v1/connect"} {
		code, _ := httpGet(t, tb.url+p, "")
		mustf(t, code == 401, "%s without token: %d", p, code)
		code, _ = httpGet(t, tb.url+p, "rc_wrong")
		mustf(t, code == 401, "%s with a wrong token: %d", p, code)
	}
	dial(t, tb, tok, speaker("a", "A"), client.Options{})
	code, body = httpGet(t, tb.url+"/metrics", tok)
	mustf(t, code == 200 && strings.Contains(body, "roomcast_broker_connections 1"), "metrics: %d", code)
	mustf(t, strings.Contains(body, `roomcast_broker_messages_received_total{type="HELLO"} 1`), "metrics lack HELLO count")
	mustf(t, strings.Contains(body, "roomcast_broker_fanout_latency_seconds_bucket"), "metrics lack the fan-out histogram")
}

func TestMetricsListenWithoutToken(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	maddr := ln.Addr().String()
	ln.Close()
	tb := startBroker(t, "", func(o *Options) { o.MetricsAddr = maddr })
	var code int
	for i := 0; i < 50; i++ {
		if code, _ = httpGetNoFail("http://" + maddr + "/metrics"); code == 200 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	mustf(t, code == 200, "metrics listener: %d", code)
	_ = tb
}

func TestRestartKeepsStateAndResumes(t *testing.T) {
	dir := t.TempDir()
	tb := startBroker(t, dir, nil)
	tok := tb.token(t, "alice")
	a := dial(t, tb, tok, speaker("a", "Kitchen"), client.Options{})
	c := dial(t, tb, tok, controller("c"), client.Options{})
	ack, err := a.Request(context.Background(), playing("a", "roomcast:track:3", 4242, 0))
	mustf(t, err == nil, "state: %v", err)

	tb.stop()
	// Graceful shutdown: GOODBYE, then close 1012.
	g := next(t, c, wait, func(m *protocol.Goodbye) bool { return true })
	mustf(t, g.Reason == "shutdown" && g.ReconnectMS > 0, "goodbye %+v", g)
	err = waitDone(t, c, wait)
	mustf(t, closeCode(err) == websocket.CloseServiceRestart, "close after shutdown: %v", err)

	tb2 := startBroker(t, dir, nil)
	c2 := dial(t, tb2, tok, controller("c"), client.Options{})
	w := c2.Welcome()
	mustf(t, w.State != nil && w.State.Version == ack.State.Version && w.State.Track.URI == "roomcast:track:3" && w.State.PositionMS == 4242,
		"state after restart: %+v", w.State)
	mustf(t, w.ActiveDeviceID == "a" && len(w.Devices) == 1 && !w.Devices[0].Online && w.Devices[0].Name == "Kitchen", "devices after restart: %+v", w.Devices)
	// The device comes back and resumes its active role.
	h := speaker("a", "Kitchen")
	h.Resume = &protocol.Resume{Active: true, StateVersion: ack.State.Version}
	a2 := dial(t, tb2, tok, h, client.Options{})
	mustf(t, a2.Welcome().Resumed && a2.Welcome().ActiveDeviceID == "a", "resume: %+v", a2.Welcome())
	_, err = a2.Request(context.Background(), playing("a", "roomcast:track:3", 5000, ack.State.Version))
	mustf(t, err == nil, "write after resume: %v", err)
}

func TestReplacedConnection(t *testing.T) {
	tb := startBroker(t, "", nil)
	tok := tb.token(t, "alice")
	old := dial(t, tb, tok, speaker("a", "Kitchen"), client.Options{})
	w := dial(t, tb, tok, controller("w"), client.Options{})
	_ = dial(t, tb, tok, speaker("a", "Kitchen"), client.Options{})
	err := waitDone(t, old, wait)
	mustf(t, closeCode(err) == CloseReplaced, "old connection: %v", err)
	// The replaced connection's end must not mark the device offline.
	deadline := time.After(300 * time.Millisecond)
	for done := false; !done; {
		select {
		case f := <-w.Frames():
			if m, ok := f.Msg.(*protocol.DeviceStateChanged); ok {
				mustf(t, m.Reason == "joined", "device state change %q after replacement", m.Reason)
			}
		case <-deadline:
			done = true
		}
	}
	_, body := httpGet(t, tb.url+"/v1/devices", tok)
	mustf(t, strings.Contains(body, `"online": true`), "device offline after replacement: %s", body)
}

func httpGetNoFail(url string) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

var _ = fmt.Sprint

// albumResolver resolves roomcast:album:a1 to three tracks with loudness.
type albumResolver struct{}

func (albumResolver) ResolveTracks(ctxURI string, uris []string) ([]protocol.Track, error) {
	lufs := -9.0
	if ctxURI == "roomcast:album:a1" {
		return []protocol.Track{{URI: "roomcast:track:1", LoudnessLUFS: &lufs}, {URI: "roomcast:track:2"}, {URI: "roomcast:track:3"}}, nil
	}
	if ctxURI != "" {
		return nil, fmt.Errorf("no album %q", ctxURI)
	}
	var out []protocol.Track
	for _, u := range uris {
		out = append(out, protocol.Track{URI: u, Title: "t " + u})
	}
	return out, nil
}

func TestPlayAndTransferCarryResolvedTracks(t *testing.T) {
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
	_, err := c.Request(ctx, &protocol.Command{Name: protocol.CmdPlay, DeviceID: "a", ContextURI: "roomcast:album:a1", Offset: 1})
	mustf(t, err == nil, "play: %v", err)
	cmd := (<-gotA).(*protocol.Command)
	mustf(t, len(cmd.Tracks) == 3 && cmd.Tracks[0].LoudnessLUFS != nil && *cmd.Tracks[0].LoudnessLUFS == -9, "play carried %+v", cmd.Tracks)
	// Unknown album, offset past the end: clear errors, nothing reaches the device.
	var pe *protocol.Error
	_, err = c.Request(ctx, &protocol.Command{Name: protocol.CmdPlay, ContextURI: "roomcast:album:nope"})
	mustf(t, errors.As(err, &pe) && pe.Code == protocol.ErrNotFound, "unknown album: %v", err)
	_, err = c.Request(ctx, &protocol.Command{Name: protocol.CmdPlay, ContextURI: "roomcast:album:a1", Offset: 3})
	mustf(t, errors.As(err, &pe) && pe.Code == protocol.ErrBadRequest, "offset past the end: %v", err)
	// The transfer target gets the same list.
	_, err = c.Request(ctx, &protocol.TransferPlayback{DeviceID: "b"})
	mustf(t, err == nil, "transfer: %v", err)
	for {
		m := <-gotB
		if tp, ok := m.(*protocol.TransferPlayback); ok {
			mustf(t, len(tp.Tracks) == 3 && tp.State.Index == 1 && tp.State.ContextURI == "roomcast:album:a1", "transfer carried %+v / %+v", tp.Tracks, tp.State)
			break
		}
	}
}

// TestRevokedTokenDisconnects: a token revoked through the database (as
// `roomcast-broker token revoke` does from another process) stops
// working within the poll interval: its live connections close with
// CloseTokenRevoked, HTTP and new connections with it get 401 even though
// it was cached, and the user's other tokens are untouched.
func TestRevokedTokenDisconnects(t *testing.T) {
	tb := startBroker(t, "", func(o *Options) { o.RevocationPoll = 100 * time.Millisecond })
	tokA, tokB := tb.token(t, "alice"), tb.token(t, "alice")
	spk := dial(t, tb, tokA, speaker("a", "Kitchen"), client.Options{})
	ctl := dial(t, tb, tokB, controller("w"), client.Options{})
	code, _ := httpGet(t, tb.url+"/v1/devices", tokA) // now in the authentication cache
	mustf(t, code == 200, "devices with tokA: %d", code)

	other, err := store.OpenDir(tb.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.RevokeToken(context.Background(), store.HashToken(tokA)[:store.TokenIDLen]); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = waitDone(t, spk, wait)
	mustf(t, closeCode(err) == CloseTokenRevoked, "speaker connection: %v, want close %d", err, CloseTokenRevoked)
	t.Logf("closed %v after the revocation", time.Since(start).Round(time.Millisecond))
	code, _ = httpGet(t, tb.url+"/v1/devices", tokA)
	mustf(t, code == http.StatusUnauthorized, "devices with the revoked token: %d", code)
	_, err = client.Dial(context.Background(), tb.url, tokA, speaker("a", "Kitchen"), client.Options{})
	var he *client.HandshakeError
	mustf(t, errors.As(err, &he) && he.Status == http.StatusUnauthorized, "dial with the revoked token: %v", err)
	// The other token's connection and requests still work.
	code, _ = httpGet(t, tb.url+"/v1/devices", tokB)
	mustf(t, code == 200, "devices with tokB: %d", code)
	select {
	case <-ctl.Done():
		t.Fatalf("the other token's connection closed: %v", ctl.Err())
	case <-time.After(300 * time.Millisecond):
	}
}
