package receiver

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/playback"
	"github.com/roomcast/roomcast/protocol"
	"github.com/roomcast/roomcast/systemd"
)

// stuckEngine blocks in Load until released: a control loop that hangs.
type stuckEngine struct {
	*clockEngine
	release chan struct{}
}

func (s stuckEngine) Load(t playback.Track, album bool, pos int64, play bool) error {
	<-s.release
	return s.clockEngine.Load(t, album, pos, play)
}

// TestStuckLoopStopsWatchdogPings runs the receiver under the systemd
// watchdog with a NOTIFY_SOCKET the test listens on: pings flow while the
// control loop turns, stop while it hangs in the engine, and resume after.
func TestStuckLoopStopsWatchdogPings(t *testing.T) {
	sockPath := filepath.Join(t.TempDir(), "notify")
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	pings := make(chan time.Time, 1000)
	go func() {
		buf := make([]byte, 512)
		for {
			n, err := sock.Read(buf)
			if err != nil {
				return
			}
			if strings.Contains(string(buf[:n]), "WATCHDOG=1") {
				pings <- time.Now()
			}
		}
	}()
	t.Setenv("WATCHDOG_USEC", "200000") // pings every 100 ms when healthy
	wd := systemd.NewWatchdog(systemd.NewNotifier(sockPath), nil)

	brokerDir := t.TempDir()
	addr, _ := runBroker(t, brokerDir, "127.0.0.1:0")
	url, tok := "http://"+addr, createToken(t, brokerDir)
	eng := stuckEngine{newClockEngine(), make(chan struct{})}
	r, err := New(Options{Broker: url, Token: tok, StateDir: t.TempDir(), Engine: eng,
		Heartbeat: wd.Register("control", 1500*time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go wd.Run(ctx)
	go r.Run(ctx)
	waitDevice(t, url, tok, r.DeviceID())

	count := func(d time.Duration) int {
		n := 0
		deadline := time.After(d)
		for {
			select {
			case <-pings:
				n++
			case <-deadline:
				return n
			}
		}
	}
	if n := count(time.Second); n < 5 {
		t.Fatalf("%d pings in 1 s while healthy, want about 10", n)
	}
	// A play command makes the loop hang in the engine.
	ctl := dialController(t, url, tok)
	go ctl.Request(ctx, &protocol.Command{Name: protocol.CmdPlay, DeviceID: r.DeviceID(), URIs: []string{"roomcast:track:x"}})
	time.Sleep(2 * time.Second) // > the heartbeat's 1.5 s
	for len(pings) > 0 {
		<-pings
	}
	if n := count(time.Second); n != 0 {
		t.Fatalf("%d pings while the loop was stuck", n)
	}
	close(eng.release)
	if n := count(time.Second); n < 3 {
		t.Fatalf("%d pings after the loop recovered", n)
	}
}
