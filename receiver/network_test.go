package receiver

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/roomcast/roomcast/broker"
	"github.com/roomcast/roomcast/protocol"
)

// blockProxy forwards TCP to target. Blocked, it holds every byte of the
// open connections and drops new ones: the network to the broker is gone.
type blockProxy struct {
	ln      net.Listener
	target  string
	blocked atomic.Bool
	mu      sync.Mutex
	wake    chan struct{} // closed on unblock
}

func newBlockProxy(t *testing.T, target string) *blockProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &blockProxy{ln: ln, target: target, wake: make(chan struct{})}
	t.Cleanup(func() { ln.Close(); p.unblock() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			if p.blocked.Load() {
				in.Close()
				continue
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			go p.pipe(in, out)
			go p.pipe(out, in)
		}
	}()
	return p
}

func (p *blockProxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		if p.blocked.Load() {
			p.mu.Lock()
			w := p.wake
			p.mu.Unlock()
			<-w
			return // the old connection is dead after the outage
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

func (p *blockProxy) block() {
	p.mu.Lock()
	p.wake = make(chan struct{})
	p.mu.Unlock()
	p.blocked.Store(true)
}

func (p *blockProxy) unblock() {
	if p.blocked.CompareAndSwap(true, false) {
		p.mu.Lock()
		close(p.wake)
		p.mu.Unlock()
	}
}

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
	p := newBlockProxy(t, ln.Addr().String())
	via := "http://" + p.ln.Addr().String()

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

	p.block()
	time.Sleep(4 * time.Second) // long past the heartbeat timeouts on both sides
	if _, devs := snapshot(direct, tok); len(devs) != 1 || devs[0].Online {
		t.Fatalf("the broker still sees the device online during the outage: %+v", devs)
	}
	if _, pos := eng.Position(); pos < 3500 {
		t.Fatalf("playback stopped during the outage: position %d ms", pos)
	}
	back := time.Now()
	p.unblock()
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
