package client

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/roomcast/roomcast/broker"
	"github.com/roomcast/roomcast/protocol"
)

// TestClockOffsetOnLoopback measures the NTP-style estimate against a real
// broker on the same machine, where the true offset is zero.
func TestClockOffsetOnLoopback(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.New(broker.Options{Listener: ln, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	tok, err := b.Store().CreateToken(ctx, "u", "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Dial(ctx, "http://"+ln.Addr().String(), tok, protocol.Hello{Device: protocol.DeviceInfo{
		ID: "c", Name: "c", Type: protocol.DeviceController}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() {
		for range c.Frames() {
		}
	}()
	if _, _, ok := c.ClockEstimate(); ok {
		t.Fatal("an offset before any ping")
	}
	for i := 0; i < 8; i++ {
		if err := c.Ping(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	off, rtt, ok := c.ClockEstimate()
	if !ok {
		t.Fatal("no offset after 8 pings")
	}
	t.Logf("loopback: offset %v, rtt %v", off, rtt)
	if off < -time.Millisecond || off > time.Millisecond {
		t.Fatalf("offset %v on loopback, want within ±1 ms of 0", off)
	}
	if rtt <= 0 || rtt > 50*time.Millisecond {
		t.Fatalf("rtt %v", rtt)
	}
}

// stallingServer is a websocket peer that welcomes the client, then for
// stall reads nothing while it pings every 100 ms (a broker whose hub is
// backed up: the client's writes block), then reads everything. It
// reports how many pongs it received after the stall.
func stallingServer(t *testing.T, stall time.Duration) (url string, pongs <-chan int) {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048) })
	}}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan int, 1)
	up := websocket.Upgrader{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		if _, _, err := ws.ReadMessage(); err != nil { // HELLO
			return
		}
		b, err := protocol.Encode(protocol.Frame{Seq: 1, Msg: &protocol.Welcome{ProtocolVersion: protocol.Version,
			SessionID: "s1", User: "u", HeartbeatMS: 100, DropAfterMS: 30_000, Devices: []protocol.DeviceInfo{}}})
		if err != nil {
			t.Error(err)
			return
		}
		if ws.WriteMessage(websocket.TextMessage, b) != nil {
			return
		}
		for end := time.Now().Add(stall); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			if ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second)) != nil {
				return
			}
		}
		n := 0
		ws.SetPongHandler(func(string) error { n++; return nil })
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				out <- n
				return
			}
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String(), out
}

// TestPongWaitsBehindABlockedWrite: while a Send is stuck because the
// broker is not reading, the broker's pings are answered once the write
// goes through; the connection is not given up after a second (it was:
// the pong's own 1 s deadline failed the reader, and the stuck Send then
// failed on a closed connection).
func TestPongWaitsBehindABlockedWrite(t *testing.T) {
	url, pongs := stallingServer(t, 2*time.Second)
	smallSend := func(network, addr string) (net.Conn, error) {
		d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 2048) })
		}}
		return d.Dial(network, addr)
	}
	c, err := Dial(context.Background(), url, "tok", protocol.Hello{Device: protocol.DeviceInfo{
		ID: "s", Name: "s", Type: protocol.DeviceSpeaker}}, Options{NetDial: smallSend})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var uris []string
	for i := 0; i < 100; i++ {
		uris = append(uris, fmt.Sprintf("roomcast:track:%032d", i))
	}
	// About 400 KB: far more than the socket buffers hold, so Send blocks
	// until the server reads again.
	for i := 0; i < 100; i++ {
		m := &protocol.PlayerStateChanged{State: protocol.PlayerState{DeviceID: "s", Status: protocol.StatusPlaying,
			URIs: uris, Repeat: protocol.RepeatOff}}
		if err := c.Send("", m); err != nil {
			t.Fatalf("send %d: %v (connection: %v)", i, err, c.Err())
		}
	}
	if err := c.Err(); err != nil {
		t.Fatalf("connection ended: %v", err)
	}
	c.Close()
	if n := <-pongs; n == 0 {
		t.Fatal("no pong reached the server after the stall")
	}
}
