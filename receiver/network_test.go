package receiver

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/roomcast/roomcast/broker"
	"github.com/roomcast/roomcast/internal/netfault"
	"github.com/roomcast/roomcast/protocol"
)

// TestNetworkOutage: the network to the broker goes silent; the device
// keeps playing, notices the dead path by the missing heartbeats, and is
// back within 2 s of the network's return, still active, still playing.
func TestNetworkOutage(t *testing.T) {
	dir := t.TempDir()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	b, err := broker.New(broker.Options{Listener: ln, StateDir: dir, HeartbeatInterval: 300 * time.Millisecond, DropAfter: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.Run(ctx)
	tok := createToken(t, dir)
	direct := "http://" + ln.Addr().String()
	p, err := netfault.Listen(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	via := "http://" + p.Addr()

	eng := newClockEngine()
	r, err := New(Options{Broker: via, Token: tok, StateDir: t.TempDir(), Engine: eng, MinBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	go r.Run(ctx)
	waitDevice(t, direct, tok, r.DeviceID())
	ctl := dialController(t, direct, tok)
	if _, err := ctl.Request(ctx, &protocol.Command{Name: protocol.CmdPlay, DeviceID: r.DeviceID(),
		URIs: []string{"roomcast:track:a"}}); err != nil {
		t.Fatal(err)
	}

	p.Block()
	time.Sleep(4 * time.Second) // long past the heartbeat timeouts on both sides
	if _, devs := snapshot(direct, tok); len(devs) != 1 || devs[0].Online {
		t.Fatalf("the broker still sees the device online during the outage: %+v", devs)
	}
	if _, pos := eng.Position(); pos < 3500 {
		t.Fatalf("playback stopped during the outage: position %d ms", pos)
	}
	back := time.Now()
	p.Unblock()
	for {
		st, devs := snapshot(direct, tok)
		if len(devs) == 1 && devs[0].Online && devs[0].Active && st != nil && st.Status == protocol.StatusPlaying {
			break
		}
		if time.Since(back) > 2*time.Second {
			t.Fatalf("not back within 2 s of the network's return: %+v %+v", st, devs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("back %v after the network returned", time.Since(back).Round(time.Millisecond))
}
