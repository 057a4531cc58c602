package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/roomcast/roomcast/client"
	"github.com/roomcast/roomcast/protocol"
)

// testBroker is a real broker serving on a loopback port.
type testBroker struct {
	b    *Broker
	url  string
	dir  string
	stop func()
}

func startBroker(t *testing.T, dir string, tweak func(*Options)) *testBroker {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Listener: ln, StateDir: dir, HeartbeatInterval: time.Second, DropAfter: 5 * time.Second,
		CommandTimeout: 2 * time.Second, TransferOutTimeout: 500 * time.Millisecond, PersistInterval: 20 * time.Millisecond}
	if tweak != nil {
		tweak(&opts)
	}
	b, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- b.Run(ctx) }()
	var once sync.Once
	tb := &testBroker{b: b, url: "http://" + ln.Addr().String(), dir: dir}
	tb.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-errc; err != nil {
				t.Errorf("broker Run: %v", err)
			}
		})
	}
	t.Cleanup(tb.stop)
	return tb
}

func (tb *testBroker) token(t *testing.T, user string) string {
	t.Helper()
	tok, err := tb.b.Store().CreateToken(context.Background(), user, "test")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func speaker(id, name string) protocol.Hello {
	return protocol.Hello{ProtocolVersion: protocol.Version, Device: protocol.DeviceInfo{
		ID: id, Name: name, Type: protocol.DeviceSpeaker, Volume: 50,
		Capabilities: []string{protocol.CapPlay, protocol.CapVolume, protocol.CapSeek}}}
}

func controller(id string) protocol.Hello {
	return protocol.Hello{ProtocolVersion: protocol.Version, Device: protocol.DeviceInfo{
		ID: id, Name: "picker " + id, Type: protocol.DeviceController}}
}

func dial(t *testing.T, tb *testBroker, tok string, hello protocol.Hello, opts client.Options) *client.Client {
	t.Helper()
	c, err := client.Dial(context.Background(), tb.url, tok, hello, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", hello.Device.ID, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// next returns the next frame whose message is a T satisfying ok (nil:
// any), skipping others; it fails the test after timeout.
func next[T protocol.Message](t *testing.T, c *client.Client, timeout time.Duration, ok func(T) bool) T {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case f, open := <-c.Frames():
			if !open {
				var zero T
				t.Fatalf("connection ended while waiting for %T: %v", zero, c.Err())
			}
			if m, is := f.Msg.(T); is && (ok == nil || ok(m)) {
				return m
			}
		case <-deadline:
			var zero T
			t.Fatalf("no %T within %s", zero, timeout)
		}
	}
}

// none asserts that no frame of type T arrives within d.
func none[T protocol.Message](t *testing.T, c *client.Client, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case f, open := <-c.Frames():
			if !open {
				return
			}
			if _, is := f.Msg.(T); is {
				t.Fatalf("unexpected %s: %+v", f.Msg.Type(), f.Msg)
			}
		case <-deadline:
			return
		}
	}
}

func playing(dev, track string, pos int64, basedOn uint64) *protocol.PlayerStateChanged {
	return &protocol.PlayerStateChanged{State: protocol.PlayerState{
		DeviceID: dev, Status: protocol.StatusPlaying, ContextURI: "roomcast:album:a1",
		Track:      &protocol.Track{URI: track, DurationMS: 300_000},
		PositionMS: pos, Volume: 50, Repeat: protocol.RepeatOff, BasedOn: basedOn}}
}

// serveCommands makes c behave like a speaker: it answers every COMMAND
// and TRANSFER_PLAYBACK with an ACK carrying the resulting state, and
// reports on a channel what it was asked to do.
func serveCommands(t *testing.T, c *client.Client, id string, got chan<- protocol.Message) {
	st := protocol.PlayerState{DeviceID: id, Status: protocol.StatusIdle, Volume: 50}
	go func() {
		for f := range c.Frames() {
			switch m := f.Msg.(type) {
			case *protocol.Command:
				switch m.Name {
				case protocol.CmdPause:
					st.Status = protocol.StatusPaused
				case protocol.CmdResume:
					st.Status = protocol.StatusPlaying
				case protocol.CmdSeek:
					st.PositionMS = *m.PositionMS
				case protocol.CmdVolume:
					st.Volume = *m.Volume
				case protocol.CmdPlay:
					st.Status = protocol.StatusPlaying
					st.ContextURI, st.URIs, st.Index = m.ContextURI, m.URIs, m.Offset
					st.Track = &protocol.Track{URI: "roomcast:track:x", DurationMS: 300_000}
				}
				s := st
				_ = c.Send("", &protocol.Ack{Ref: f.ID, State: &s})
			case *protocol.TransferPlayback:
				st = *m.State
				st.BasedOn = m.State.Version
				s := st
				_ = c.Send("", &protocol.Ack{Ref: f.ID, State: &s})
			case *protocol.PlayerStateChanged:
				st.BasedOn = m.State.Version
			}
			if got != nil && (f.Msg.Type() == protocol.TypeCommand || f.Msg.Type() == protocol.TypeTransferPlayback) {
				select {
				case got <- f.Msg:
				default:
				}
			}
		}
	}()
}

func httpGet(t *testing.T, url, tok string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func closeCode(err error) int {
	var ce *client.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return -1
}

// waitDone waits for c's connection to end and returns its error.
func waitDone(t *testing.T, c *client.Client, timeout time.Duration) error {
	t.Helper()
	go func() {
		for range c.Frames() {
		}
	}()
	select {
	case <-c.Done():
		return c.Err()
	case <-time.After(timeout):
		t.Fatalf("connection still open after %s", timeout)
	}
	return nil
}

// freezeProxy forwards TCP to target until frozen; frozen, it keeps both
// sockets open but moves no byte, like a network that went silent.
type freezeProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex // guards upstream
	// upstream is when bytes from a client were last passed on to the
	// target: the target cannot have heard from the client after that.
	upstream time.Time
	frozen   chan struct{}
	closed   chan struct{}
}

func newFreezeProxy(t *testing.T, target string) *freezeProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezeProxy{ln: ln, target: target, frozen: make(chan struct{}), closed: make(chan struct{})}
	t.Cleanup(func() { ln.Close(); close(p.closed) })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			t.Cleanup(func() { in.Close(); out.Close() })
			go p.pipe(in, out, false)
			go p.pipe(out, in, true)
		}
	}()
	return p
}

func (p *freezeProxy) pipe(dst, src net.Conn, upstream bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		select {
		case <-p.frozen:
			<-p.closed // hold the bytes until the test ends
			return
		default:
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
		if upstream {
			p.mu.Lock()
			p.upstream = time.Now()
			p.mu.Unlock()
		}
	}
}

// lastUpstream is when the target last received bytes from a client.
func (p *freezeProxy) lastUpstream() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.upstream
}

func (p *freezeProxy) freeze() { close(p.frozen) }

func (p *freezeProxy) dialer() func(string, string) (net.Conn, error) {
	return func(network, _ string) (net.Conn, error) { return net.Dial(network, p.ln.Addr().String()) }
}

func mustf(t *testing.T, ok bool, format string, args ...any) {
	t.Helper()
	if !ok {
		t.Fatalf(format, args...)
	}
}

var _ = fmt.Sprint
