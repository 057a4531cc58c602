package client

import (
	"context"
	"net"
	"testing"
	"time"

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
