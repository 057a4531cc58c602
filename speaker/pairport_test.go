package speaker

import (
	"errors"
	"log/slog"
	"net"
	"strconv"
	"syscall"
	"testing"
)

// TestListenPairing: a taken default port moves to a free one; a taken
// port the user chose is an error; a free one is used as given.
func TestListenPairing(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	port := taken.Addr().(*net.TCPAddr).Port

	ln, err := listenPairing(addr, true, log)
	if err != nil {
		t.Fatalf("default taken: %v", err)
	}
	got := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	if got == port || got == 0 {
		t.Fatalf("default %d taken: got port %d", port, got)
	}
	if _, err := listenPairing(addr, false, log); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("explicit taken: %v, want EADDRINUSE", err)
	}
	// Every port of the range taken: any free port.
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for p := port + 1; p <= port+maxPairPortSteps && p <= 65535; p++ {
		if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p)); err == nil {
			held = append(held, l)
		}
	}
	ln, err = listenPairing(addr, true, log)
	if err != nil {
		t.Fatalf("range taken: %v", err)
	}
	got = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	if got >= port && got <= port+maxPairPortSteps && len(held) == maxPairPortSteps {
		t.Fatalf("range %d-%d taken: got %d", port, port+maxPairPortSteps, got)
	}
	ln, err = listenPairing("127.0.0.1:0", false, log)
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
}
