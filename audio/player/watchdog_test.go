package player

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/testenv"
	"github.com/roomcast/roomcast/systemd"
)

// stallingSource serves files whose reads block forever after limit bytes
// once stall is closed: a network path that hangs mid-track.
type stallingSource struct {
	*fileSource
	stall, release chan struct{}
}

type stallingFile struct {
	io.ReadSeekCloser
	stall, release chan struct{}
}

func (f stallingFile) Read(p []byte) (int, error) {
	select {
	case <-f.stall:
		<-f.release // hang, as a read from a dead connection would
		return 0, io.ErrUnexpectedEOF
	default:
	}
	return f.ReadSeekCloser.Read(p)
}

func (s stallingSource) Open(ctx context.Context, id string) (io.ReadSeekCloser, error) {
	f, err := s.fileSource.Open(ctx, id)
	if err != nil {
		return nil, err
	}
	return stallingFile{f, s.stall, s.release}, nil
}

// TestStuckAudioLoopStopsWatchdogPings: the pipeline goroutine beats the
// "audio" heartbeat; when it hangs (here in a read that never returns),
// the systemd watchdog pings stop, so systemd would restart the daemon.
func TestStuckAudioLoopStopsWatchdogPings(t *testing.T) {
	testenv.Tool(t, "oggenc", "vorbis-tools")
	dir := t.TempDir()
	ogg := filepath.Join(dir, "a.ogg")
	encodeOgg(t, ogg, chord(44100*30, 44100, 0.3), 44100, 2, "8")
	src := stallingSource{newFileSource(), make(chan struct{}), make(chan struct{})}
	tr := src.add("a", ogg)

	sockPath := filepath.Join(t.TempDir(), "notify")
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	var mu sync.Mutex
	var pings []time.Time
	go func() {
		buf := make([]byte, 256)
		for {
			n, err := sock.Read(buf)
			if err != nil {
				return
			}
			if strings.Contains(string(buf[:n]), "WATCHDOG=1") {
				mu.Lock()
				pings = append(pings, time.Now())
				mu.Unlock()
			}
		}
	}()
	count := func(since time.Time) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, p := range pings {
			if p.After(since) {
				n++
			}
		}
		return n
	}
	t.Setenv("WATCHDOG_USEC", "200000")
	os.Unsetenv("WATCHDOG_PID")
	wd := systemd.NewWatchdog(systemd.NewNotifier(sockPath), nil)
	p, _ := newWAVPlayer(t, src, Options{Heartbeat: wd.Register("audio", 1500*time.Millisecond)})
	t.Cleanup(func() { close(src.release) }) // runs before the player's Close
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go wd.Run(ctx)
	if err := p.Load(tr, false, 0, true); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	time.Sleep(time.Second)
	if n := count(start); n < 5 {
		t.Fatalf("%d pings in 1 s of healthy playback, want about 10", n)
	}
	fi, _ := os.Stat(ogg)
	_, pos0 := p.Position()
	t.Logf("file %d bytes; position at stall %d ms", fi.Size(), pos0)
	close(src.stall) // the next read hangs the pipeline goroutine
	// The decoder's buffer plays on for a few seconds; then the sound
	// stops, the heartbeat ages past its 1.5 s, and the pings must stop.
	last, still := pos0, time.Now()
	for time.Since(still) < 3*time.Second {
		time.Sleep(100 * time.Millisecond)
		if _, pos := p.Position(); pos != last {
			last, still = pos, time.Now()
		}
		if time.Since(start) > 40*time.Second {
			t.Fatal("the pipeline never hung")
		}
	}
	quiet := time.Now()
	time.Sleep(time.Second)
	_, pos1 := p.Position()
	t.Logf("position after: %d ms", pos1)
	if n := count(quiet); n != 0 {
		t.Fatalf("%d pings while the audio loop was stuck", n)
	}
}
