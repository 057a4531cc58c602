package receiver

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/broker"
	"github.com/roomcast/roomcast/broker/store"
	"github.com/roomcast/roomcast/client"
	"github.com/roomcast/roomcast/protocol"
)

// runBroker serves a real broker on addr ("127.0.0.1:0" for any port)
// until the returned stop is called.
func runBroker(t *testing.T, dir, addr string) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.New(broker.Options{Listener: ln, StateDir: dir, PersistInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}

func TestReconnectResumesActiveRoleAndVolume(t *testing.T) {
	brokerDir, state := t.TempDir(), t.TempDir()
	addr, stop := runBroker(t, brokerDir, "127.0.0.1:0")
	url := "http://" + addr
	tok := createToken(t, brokerDir)

	r, err := New(Options{Broker: url, Token: tok, StateDir: state, Name: "Kitchen", Volume: 40,
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, StateInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	ctl := dialController(t, url, tok)
	waitDevice(t, url, tok, r.DeviceID())
	if _, err := ctl.Request(ctx, &protocol.Command{Name: protocol.CmdPlay, DeviceID: r.DeviceID(), URIs: []string{"roomcast:track:a", "roomcast:track:b"}}); err != nil {
		t.Fatal(err)
	}
	v := 23
	if _, err := ctl.Request(ctx, &protocol.Command{Name: protocol.CmdVolume, Volume: &v}); err != nil {
		t.Fatal(err)
	}

	// The broker goes away and comes back on the same address.
	stop()
	time.Sleep(300 * time.Millisecond)
	_, _ = runBroker(t, brokerDir, addr)
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, devs := snapshot(url, tok)
		online := false
		for _, d := range devs {
			online = online || (d.ID == r.DeviceID() && d.Online && d.Active)
		}
		if online && st != nil && st.DeviceID == r.DeviceID() && st.Status == protocol.StatusPlaying && st.Volume == 23 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after broker restart: state %+v devices %+v", st, devs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	// Identity and volume persist for the next start.
	r2, err := New(Options{Broker: url, Token: tok, StateDir: state, Volume: 90})
	if err != nil {
		t.Fatal(err)
	}
	if r2.DeviceID() != r.DeviceID() || r2.transport.volume != 23 {
		t.Fatalf("after restart: id %s vol %d, want %s 23", r2.DeviceID(), r2.transport.volume, r.DeviceID())
	}
}

func TestBadTokenIsFatal(t *testing.T) {
	addr, _ := runBroker(t, t.TempDir(), "127.0.0.1:0")
	r, err := New(Options{Broker: "http://" + addr, Token: "rc_nope", StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	err = r.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("Run with a bad token: %v", err)
	}
}

func createToken(t *testing.T, dir string) string {
	t.Helper()
	s, err := store.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tok, err := s.CreateToken(context.Background(), "owner", "")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func dialController(t *testing.T, url, tok string) *client.Client {
	t.Helper()
	c, err := client.Dial(context.Background(), url, tok, protocol.Hello{ProtocolVersion: protocol.Version,
		Device: protocol.DeviceInfo{ID: "ctl", Name: "ctl", Type: protocol.DeviceController}}, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		for range c.Frames() {
		}
	}()
	return c
}

func waitDevice(t *testing.T, url, tok, id string) {
	t.Helper()
	for i := 0; i < 100; i++ {
		_, devs := snapshot(url, tok)
		for _, d := range devs {
			if d.ID == id && d.Online {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("device %s never came online", id)
}

// snapshot is what a fresh picker sees on connecting (nil while the
// broker is unreachable).
func snapshot(url, tok string) (*protocol.PlayerState, []protocol.DeviceInfo) {
	c, err := client.Dial(context.Background(), url, tok, protocol.Hello{ProtocolVersion: protocol.Version,
		Device: protocol.DeviceInfo{ID: "snap", Name: "snap", Type: protocol.DeviceController}}, client.Options{})
	if err != nil {
		return nil, nil
	}
	defer c.Close()
	return c.Welcome().State, c.Welcome().Devices
}
