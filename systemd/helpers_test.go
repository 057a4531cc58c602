package systemd

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// datagram is one message received by a test socket and when it arrived.
type datagram struct {
	data []byte
	fd   int // file descriptor passed with SCM_RIGHTS, or -1
	at   time.Time
}

// dgramListener is a unixgram socket the test listens on, standing in for
// systemd's notify socket or journald's native socket.
type dgramListener struct {
	addr string
	ch   chan datagram
}

// listenDgram binds a unixgram socket: under t.TempDir() or, if abstract, in
// the abstract namespace ("@..."). Received datagrams are delivered on l.ch
// until the test ends.
func listenDgram(t *testing.T, abstract bool) *dgramListener {
	t.Helper()
	var addr string
	if abstract {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			t.Fatal(err)
		}
		addr = "@roomcast-test-" + hex.EncodeToString(b[:])
	} else {
		// Keep the path short: sun_path holds only 108 bytes.
		dir, err := os.MkdirTemp("", "rc")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		addr = filepath.Join(dir, "s")
	}
	return listenDgramAt(t, addr)
}

// listenDgramAt binds a unixgram socket at addr (a path or "@abstract").
func listenDgramAt(t *testing.T, addr string) *dgramListener {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	if err := conn.SetReadBuffer(4 << 20); err != nil {
		t.Fatal(err)
	}
	l := &dgramListener{addr: addr, ch: make(chan datagram, 4096)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1<<20)
		oob := make([]byte, 1024)
		for {
			n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("read %s: %v", addr, err)
				}
				return
			}
			d := datagram{data: append([]byte(nil), buf[:n]...), fd: -1, at: time.Now()}
			if oobn > 0 {
				d.fd = parseRights(t, oob[:oobn])
			}
			l.ch <- d
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return l
}

// recv returns the next datagram, failing the test after timeout.
func (l *dgramListener) recv(t *testing.T, timeout time.Duration) datagram {
	t.Helper()
	select {
	case d := <-l.ch:
		return d
	case <-time.After(timeout):
		t.Fatalf("no datagram on %s within %v", l.addr, timeout)
		return datagram{}
	}
}

// expectNone fails if a datagram arrives within d.
func (l *dgramListener) expectNone(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case got := <-l.ch:
		t.Fatalf("unexpected datagram on %s: %q", l.addr, got.data)
	case <-time.After(d):
	}
}

// parseRights extracts the single file descriptor passed with SCM_RIGHTS.
func parseRights(t *testing.T, oob []byte) int {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil || len(msgs) != 1 {
		t.Errorf("control message: %v (%d messages)", err, len(msgs))
		return -1
	}
	fds, err := syscall.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		t.Errorf("SCM_RIGHTS: %v (%d fds)", err, len(fds))
		return -1
	}
	return fds[0]
}
