package mpris

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/roomcast/roomcast/broker"
	"github.com/roomcast/roomcast/client"
	"github.com/roomcast/roomcast/internal/testenv"
	"github.com/roomcast/roomcast/protocol"
)

const wait = 5 * time.Second

// dbusDaemon is a private dbus-daemon the test started.
type dbusDaemon struct {
	addr string
	cmd  *exec.Cmd
}

// startDBus starts dbus-daemon with args (e.g. --session --address=...)
// and returns once it listens. It is killed when the test ends.
func startDBus(t *testing.T, args ...string) *dbusDaemon {
	t.Helper()
	testenv.Tool(t, "dbus-daemon", "dbus-daemon")
	cmd := exec.Command("dbus-daemon", append([]string{"--nofork", "--print-address=1"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("dbus-daemon: %v", err)
	}
	d := &dbusDaemon{cmd: cmd}
	t.Cleanup(d.kill)
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
		for s.Scan() {
		}
	}()
	select {
	case l, ok := <-line:
		if !ok {
			_ = cmd.Wait()
			t.Fatalf("dbus-daemon %v printed no address: %s", args, stderr.String())
		}
		d.addr = strings.TrimSpace(l)
	case <-time.After(wait):
		t.Fatalf("dbus-daemon %v: no address within %s", args, wait)
	}
	return d
}

func (d *dbusDaemon) kill() {
	if d.cmd.Process != nil {
		_ = d.cmd.Process.Signal(syscall.SIGKILL)
		_ = d.cmd.Wait()
	}
}

// sessionBus starts a private session bus listening on a socket path
// of our choosing (so that it can be restarted at the same address).
func sessionBus(t *testing.T, dir string) *dbusDaemon {
	return startDBus(t, "--session", "--address=unix:path="+filepath.Join(dir, "bus"))
}

// busConn connects a test client to addr.
func testConn(t *testing.T, addr string) *dbus.Conn {
	t.Helper()
	c, err := dbus.Connect(addr)
	if err != nil {
		t.Fatalf("connect to %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// testBroker is a real broker on a loopback port.
type testBroker struct {
	b    *broker.Broker
	url  string
	tok  string
	stop func()
}

func startBroker(t *testing.T) *testBroker {
	t.Helper()
	tb := startBrokerAt(t, t.TempDir(), "127.0.0.1:0")
	tok, err := tb.b.Store().CreateToken(context.Background(), "alice", "test")
	if err != nil {
		t.Fatal(err)
	}
	tb.tok = tok
	return tb
}

// startBrokerAt starts a broker on addr with its state in dir; stop ends
// it (it is also stopped when the test ends).
func startBrokerAt(t *testing.T, dir, addr string) *testBroker {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.New(broker.Options{Listener: ln, StateDir: dir, HeartbeatInterval: time.Second,
		DropAfter: 5 * time.Second, CommandTimeout: 2 * time.Second, TransferOutTimeout: 500 * time.Millisecond,
		PersistInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- b.Run(ctx) }()
	var once sync.Once
	tb := &testBroker{b: b, url: "http://" + ln.Addr().String()}
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

// state is the broker's own view of alice's session.
func (tb *testBroker) state(t *testing.T) broker.Snapshot {
	t.Helper()
	s, err := tb.b.Snapshot(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// eventually waits until the broker's state satisfies ok.
func (tb *testBroker) eventually(t *testing.T, what string, ok func(*protocol.PlayerState) bool) {
	t.Helper()
	eventually(t, wait, what, func() (bool, string) {
		st := tb.state(t).State
		return st != nil && ok(st), fmt.Sprintf("%+v", st)
	})
}

// The album the fake speakers play.
const album = "roomcast:album:a1"

var albumTracks = []protocol.Track{
	{URI: "roomcast:track:t1", Title: "First Light", Artist: "The Testers", Album: "Fixtures", AlbumArtist: "Various Testers",
		AlbumURI: album, TrackNumber: 1, DurationMS: 240_000, ArtURL: "http://127.0.0.1/art/a1.jpg"},
	{URI: "roomcast:track:t2", Title: "Second Wind", Artist: "The Testers", Album: "Fixtures", AlbumArtist: "Various Testers",
		AlbumURI: album, TrackNumber: 2, DurationMS: 180_000, ArtURL: "http://127.0.0.1/art/a1.jpg"},
	{URI: "roomcast:track:t3", Title: "Third Time", Artist: "The Testers", Album: "Fixtures", AlbumArtist: "Various Testers",
		AlbumURI: album, TrackNumber: 3, DurationMS: 200_000, ArtURL: "http://127.0.0.1/art/a1.jpg"},
}

func albumURIs() []string {
	var uris []string
	for _, tr := range albumTracks {
		uris = append(uris, tr.URI)
	}
	return uris
}

// fakeSpeaker is a speaker that behaves like a player (the idea of
// serveCommands in broker/helpers_test.go, with a position clock and
// track metadata): it answers every COMMAND and TRANSFER_PLAYBACK with
// an ACK carrying its new state, and reports the commands it got.
type fakeSpeaker struct {
	id  string
	c   *client.Client
	got chan *protocol.Command

	mu      sync.Mutex // guards the fields that follow
	st      protocol.PlayerState
	posBase int64
	since   time.Time
	version uint64
}

func newFakeSpeaker(t *testing.T, tb *testBroker, id, name string) *fakeSpeaker {
	t.Helper()
	hello := protocol.Hello{ProtocolVersion: protocol.Version, Device: protocol.DeviceInfo{
		ID: id, Name: name, Type: protocol.DeviceSpeaker, Volume: 40,
		Capabilities: []string{protocol.CapPlay, protocol.CapVolume, protocol.CapSeek}}}
	c, err := client.Dial(context.Background(), tb.url, tb.tok, hello, client.Options{})
	if err != nil {
		t.Fatalf("dial %s: %v", id, err)
	}
	t.Cleanup(func() { c.Close() })
	f := &fakeSpeaker{id: id, c: c, got: make(chan *protocol.Command, 64),
		st: protocol.PlayerState{DeviceID: id, Status: protocol.StatusIdle, Volume: 40, Repeat: protocol.RepeatOff}}
	if w := c.Welcome(); w.State != nil {
		f.version = w.State.Version
	}
	go f.serve()
	return f
}

func (f *fakeSpeaker) position() int64 {
	if f.st.Status == protocol.StatusPlaying {
		return f.posBase + time.Since(f.since).Milliseconds()
	}
	return f.posBase
}

func (f *fakeSpeaker) seek(ms int64) { f.posBase, f.since = ms, time.Now() }

func (f *fakeSpeaker) load(i int, pos int64) {
	if i < 0 {
		i = 0
	}
	if i >= len(albumTracks) {
		i = len(albumTracks) - 1
	}
	tr := albumTracks[i]
	f.st.Index, f.st.Track = i, &tr
	f.st.Status = protocol.StatusPlaying
	f.seek(pos)
}

// snapshot is the state to report; f.mu must be held.
func (f *fakeSpeaker) snapshot() *protocol.PlayerState {
	st := f.st
	st.PositionMS = f.position()
	st.BasedOn = f.version
	return &st
}

func (f *fakeSpeaker) apply(m *protocol.Command) {
	switch m.Name {
	case protocol.CmdPlay:
		f.st.ContextURI, f.st.URIs = m.ContextURI, albumURIs()
		idx := m.Offset
		if len(m.URIs) > 0 {
			for i, u := range albumURIs() {
				if u == m.URIs[m.Offset] {
					idx = i
				}
			}
		}
		var pos int64
		if m.PositionMS != nil {
			pos = *m.PositionMS
		}
		f.load(idx, pos)
	case protocol.CmdPause:
		f.seek(f.position())
		f.st.Status = protocol.StatusPaused
	case protocol.CmdResume:
		f.seek(f.position())
		f.st.Status = protocol.StatusPlaying
	case protocol.CmdSeek:
		f.seek(*m.PositionMS)
	case protocol.CmdSkipNext:
		f.load(f.st.Index+1, 0)
	case protocol.CmdSkipPrev:
		f.load(f.st.Index-1, 0)
	case protocol.CmdVolume:
		f.st.Volume = *m.Volume
	case protocol.CmdShuffle:
		f.st.Shuffle = *m.Shuffle
	case protocol.CmdRepeat:
		f.st.Repeat = m.Repeat
	}
}

func (f *fakeSpeaker) serve() {
	for fr := range f.c.Frames() {
		switch m := fr.Msg.(type) {
		case *protocol.Command:
			f.mu.Lock()
			f.apply(m)
			st := f.snapshot()
			f.mu.Unlock()
			_ = f.c.Send("", &protocol.Ack{Ref: fr.ID, State: st})
			select {
			case f.got <- m:
			default:
			}
		case *protocol.TransferPlayback:
			f.mu.Lock()
			if m.State != nil {
				f.st = *m.State
				f.st.DeviceID = f.id
				f.version = m.State.Version
				f.seek(m.State.PositionMS)
			}
			st := f.snapshot()
			f.mu.Unlock()
			_ = f.c.Send("", &protocol.Ack{Ref: fr.ID, State: st})
		case *protocol.PlayerStateChanged:
			f.mu.Lock()
			f.version = m.State.Version
			f.mu.Unlock()
		}
	}
}

// playAlbum makes the speaker the active device, playing track i of the
// album from pos ms, and waits for the broker's acknowledgement.
func (f *fakeSpeaker) playAlbum(t *testing.T, i int, pos int64) {
	t.Helper()
	f.mu.Lock()
	f.st.ContextURI, f.st.URIs = album, albumURIs()
	f.load(i, pos)
	st := f.snapshot()
	f.mu.Unlock()
	ack, err := f.c.Request(context.Background(), &protocol.PlayerStateChanged{State: *st})
	if err != nil {
		t.Fatalf("%s: report state: %v", f.id, err)
	}
	f.mu.Lock()
	f.version = ack.State.Version
	f.mu.Unlock()
}

// report sends the speaker's current state (as after a change made on
// the device itself) and waits for the broker's acknowledgement.
func (f *fakeSpeaker) report(t *testing.T, change func(f *fakeSpeaker)) {
	t.Helper()
	f.mu.Lock()
	change(f)
	st := f.snapshot()
	f.mu.Unlock()
	ack, err := f.c.Request(context.Background(), &protocol.PlayerStateChanged{State: *st})
	if err != nil {
		t.Fatalf("%s: report state: %v", f.id, err)
	}
	f.mu.Lock()
	f.version = ack.State.Version
	f.mu.Unlock()
}

// nextCommand returns the next command the speaker received.
func (f *fakeSpeaker) nextCommand(t *testing.T) *protocol.Command {
	t.Helper()
	select {
	case m := <-f.got:
		return m
	case <-time.After(wait):
		t.Fatalf("%s received no command within %s", f.id, wait)
		return nil
	}
}

// noCommand asserts that the speaker receives no command within d.
func (f *fakeSpeaker) noCommand(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case m := <-f.got:
		t.Fatalf("%s received %+v", f.id, m)
	case <-time.After(d):
	}
}

// startService runs an MPRIS service until the test ends.
func startService(t *testing.T, opts Options) *Service {
	t.Helper()
	if opts.MinBackoff == 0 {
		opts.MinBackoff = 100 * time.Millisecond
		opts.MaxBackoff = 500 * time.Millisecond
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("mpris Run: %v", err)
			}
		case <-time.After(wait):
			t.Errorf("mpris Run did not return within %s of cancel", wait)
		}
	})
	return s
}

// playerctl runs the real playerctl against the bus at addr.
func playerctl(t *testing.T, addr string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "playerctl", args...)
	cmd.Env = append(os.Environ(), "DBUS_SESSION_BUS_ADDRESS="+addr, "DBUS_SYSTEM_BUS_ADDRESS="+addr)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// mustPlayerctl runs playerctl and fails the test if it fails.
func mustPlayerctl(t *testing.T, addr string, args ...string) string {
	t.Helper()
	out, err := playerctl(t, addr, args...)
	if err != nil {
		t.Fatalf("playerctl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return out
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s (last: %s)", what, timeout, detail)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitName waits until name has an owner on the bus at addr.
func waitName(t *testing.T, conn *dbus.Conn, name string) {
	t.Helper()
	eventually(t, wait, "bus name "+name, func() (bool, string) {
		var has bool
		err := conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, name).Store(&has)
		return err == nil && has, fmt.Sprint(err)
	})
}

// signals subscribes conn to the signals of the MPRIS object.
func signals(t *testing.T, conn *dbus.Conn) chan *dbus.Signal {
	t.Helper()
	if err := conn.AddMatchSignal(dbus.WithMatchObjectPath(objectPath)); err != nil {
		t.Fatal(err)
	}
	ch := make(chan *dbus.Signal, 256)
	conn.Signal(ch)
	return ch
}

// nextSignal returns the next signal named name (interface.member) that
// satisfies ok, skipping others.
func nextSignal(t *testing.T, ch chan *dbus.Signal, name string, ok func(*dbus.Signal) bool) *dbus.Signal {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case s := <-ch:
			if s.Name == name && (ok == nil || ok(s)) {
				return s
			}
		case <-deadline:
			t.Fatalf("no %s signal within %s", name, wait)
			return nil
		}
	}
}

// noSignal asserts that no signal named name arrives within d, and that
// no PropertiesChanged announces Position meanwhile.
func noSignal(t *testing.T, ch chan *dbus.Signal, name string, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case s := <-ch:
			mustf(t, s.Name != name, "unexpected %s%v", s.Name, s.Body)
			if s.Name == "org.freedesktop.DBus.Properties.PropertiesChanged" {
				_, pos := s.Body[1].(map[string]dbus.Variant)["Position"]
				mustf(t, !pos, "PropertiesChanged announced Position: %v", s.Body)
			}
		case <-deadline:
			return
		}
	}
}

// drain empties ch.
func drain(ch chan *dbus.Signal) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

func mustf(t *testing.T, ok bool, format string, args ...any) {
	t.Helper()
	if !ok {
		t.Fatalf(format, args...)
	}
}
