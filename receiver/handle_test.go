package receiver

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/roomcast/roomcast/events"
	"github.com/roomcast/roomcast/playback"
	"github.com/roomcast/roomcast/protocol"
)

// fixedClock is a brokerClock with a known estimate.
type fixedClock struct {
	off time.Duration
	ok  bool
}

func (c fixedClock) ClockEstimate() (time.Duration, time.Duration, bool) { return c.off, 0, c.ok }

// answer is what a test checks of one outgoing message.
type answer struct {
	typ    protocol.Type
	ref    string
	code   protocol.ErrorCode // ERROR
	status protocol.Status    // the state an ACK or a report carries
	track  string             // its current track ("" when none)
	volume int
}

func answers(out []outgoing) []answer {
	var got []answer
	for _, o := range out {
		a := answer{typ: o.msg.Type(), ref: o.id}
		var st *protocol.PlayerState
		switch m := o.msg.(type) {
		case *protocol.Ack:
			a.ref, st = m.Ref, m.State
		case *protocol.Error:
			a.ref, a.code = m.Ref, m.Code
		case *protocol.PlayerStateChanged:
			st = &m.State
		}
		if st != nil {
			a.status, a.volume = st.Status, st.Volume
			if st.Track != nil {
				a.track = st.Track.URI
			}
		}
		got = append(got, a)
	}
	return got
}

// after is what a test checks of the receiver once a frame was handled.
type after struct {
	status  protocol.Status
	active  bool
	track   string
	volume  int
	version uint64
}

func (r *Receiver) after() after {
	a := after{status: r.transport.status, active: r.active, volume: r.transport.volume, version: r.version}
	if r.transport.q != nil {
		a.track = r.transport.q.current()
	}
	return a
}

func newTestReceiver(t *testing.T) *Receiver {
	t.Helper()
	r, err := New(Options{StateDir: t.TempDir(), Volume: 50})
	if err != nil {
		t.Fatal(err)
	}
	r.deviceID = "me"
	r.transport.deviceID = "me"
	t.Cleanup(func() { r.opts.Engine.Close() })
	return r
}

const (
	t1 = "roomcast:track:1"
	t2 = "roomcast:track:2"
	t3 = "roomcast:track:3"
)

func cmd(id string, c protocol.Command) protocol.Frame { return protocol.Frame{ID: id, Msg: &c} }

func vol(v int) *int                                     { return &v }
func flag(b bool) *bool                                  { return &b }
func frame(id string, m protocol.Message) protocol.Frame { return protocol.Frame{ID: id, Msg: m} }

var (
	playList = cmd("p", protocol.Command{Name: protocol.CmdPlay, URIs: []string{t1, t2, t3}})
	pauseIt  = cmd("pa", protocol.Command{Name: protocol.CmdPause})
)

// TestHandle: each frame from the broker, after a history of frames, gives
// one answer (or none) and leaves the receiver in a known state. No client,
// no broker: handle only returns what to send.
func TestHandle(t *testing.T) {
	idle := after{status: protocol.StatusIdle, volume: 50}
	tests := []struct {
		name    string
		history []protocol.Frame
		in      protocol.Frame
		want    []answer
		after   after
	}{
		{"play", nil, playList,
			[]answer{{typ: protocol.TypeAck, ref: "p", status: protocol.StatusPlaying, track: t1, volume: 50}},
			after{status: protocol.StatusPlaying, active: true, track: t1, volume: 50}},
		{"play at an offset", nil, cmd("p", protocol.Command{Name: protocol.CmdPlay, URIs: []string{t1, t2}, Offset: 1}),
			[]answer{{typ: protocol.TypeAck, ref: "p", status: protocol.StatusPlaying, track: t2, volume: 50}},
			after{status: protocol.StatusPlaying, active: true, track: t2, volume: 50}},
		{"play an unresolved context", nil, cmd("p", protocol.Command{Name: protocol.CmdPlay, ContextURI: "roomcast:album:x"}),
			[]answer{{typ: protocol.TypeError, ref: "p", code: protocol.ErrBadRequest}}, idle},
		{"pause while idle", nil, pauseIt,
			[]answer{{typ: protocol.TypeError, ref: "pa", code: protocol.ErrBadRequest}}, idle},
		{"pause", []protocol.Frame{playList}, pauseIt,
			[]answer{{typ: protocol.TypeAck, ref: "pa", status: protocol.StatusPaused, track: t1, volume: 50}},
			after{status: protocol.StatusPaused, active: true, track: t1, volume: 50}},
		{"resume", []protocol.Frame{playList, pauseIt}, cmd("r", protocol.Command{Name: protocol.CmdResume}),
			[]answer{{typ: protocol.TypeAck, ref: "r", status: protocol.StatusPlaying, track: t1, volume: 50}},
			after{status: protocol.StatusPlaying, active: true, track: t1, volume: 50}},
		{"seek while idle", nil, cmd("s", protocol.Command{Name: protocol.CmdSeek, PositionMS: ms(1000)}),
			[]answer{{typ: protocol.TypeError, ref: "s", code: protocol.ErrBadRequest}}, idle},
		{"next", []protocol.Frame{playList}, cmd("n", protocol.Command{Name: protocol.CmdSkipNext}),
			[]answer{{typ: protocol.TypeAck, ref: "n", status: protocol.StatusPlaying, track: t2, volume: 50}},
			after{status: protocol.StatusPlaying, active: true, track: t2, volume: 50}},
		{"prev at the start stays on the first", []protocol.Frame{playList}, cmd("b", protocol.Command{Name: protocol.CmdSkipPrev}),
			[]answer{{typ: protocol.TypeAck, ref: "b", status: protocol.StatusPlaying, track: t1, volume: 50}},
			after{status: protocol.StatusPlaying, active: true, track: t1, volume: 50}},
		{"next past the end while paused", []protocol.Frame{
			cmd("p", protocol.Command{Name: protocol.CmdPlay, URIs: []string{t1}}), pauseIt},
			cmd("n", protocol.Command{Name: protocol.CmdSkipNext}),
			[]answer{{typ: protocol.TypeAck, ref: "n", status: protocol.StatusEnded, track: t1, volume: 50}},
			after{status: protocol.StatusEnded, active: true, track: t1, volume: 50}},
		{"volume while idle", nil, cmd("v", protocol.Command{Name: protocol.CmdVolume, Volume: vol(23)}),
			[]answer{{typ: protocol.TypeAck, ref: "v", status: protocol.StatusIdle, volume: 23}},
			after{status: protocol.StatusIdle, volume: 23}},
		{"shuffle while idle is kept for the next list", nil, cmd("sh", protocol.Command{Name: protocol.CmdShuffle, Shuffle: flag(true)}),
			[]answer{{typ: protocol.TypeAck, ref: "sh", status: protocol.StatusIdle, volume: 50}}, idle},
		{"queue while idle", nil, cmd("q", protocol.Command{Name: protocol.CmdAddToQueue, URI: t2}),
			[]answer{{typ: protocol.TypeError, ref: "q", code: protocol.ErrBadRequest}}, idle},
		{"queue", []protocol.Frame{playList}, cmd("q", protocol.Command{Name: protocol.CmdAddToQueue, URI: t3}),
			[]answer{{typ: protocol.TypeAck, ref: "q", status: protocol.StatusPlaying, track: t1, volume: 50}},
			after{status: protocol.StatusPlaying, active: true, track: t1, volume: 50}},
		{"unsupported command", nil, cmd("u", protocol.Command{Name: "eject"}),
			[]answer{{typ: protocol.TypeError, ref: "u", code: protocol.ErrBadRequest}}, idle},
		{"transfer out", []protocol.Frame{playList}, cmd("o", protocol.Command{Name: protocol.CmdPause, Transfer: true}),
			[]answer{{typ: protocol.TypeAck, ref: "o", status: protocol.StatusPaused, track: t1, volume: 50}},
			after{status: protocol.StatusPaused, track: t1, volume: 50}},
		{"a retried command id is answered again, not re-run", []protocol.Frame{
			cmd("v", protocol.Command{Name: protocol.CmdVolume, Volume: vol(23)})},
			cmd("v", protocol.Command{Name: protocol.CmdVolume, Volume: vol(80)}),
			[]answer{{typ: protocol.TypeAck, ref: "v", status: protocol.StatusIdle, volume: 23}},
			after{status: protocol.StatusIdle, volume: 23}},
		{"transfer in, playing", nil, frame("in", &protocol.TransferPlayback{DeviceID: "me", State: &protocol.PlayerState{
			DeviceID: "me", Status: protocol.StatusPlaying, URIs: []string{t1, t2}, Index: 1, Track: &protocol.Track{URI: t2},
			PositionMS: 5000, Volume: 50, Version: 7}}),
			[]answer{{typ: protocol.TypeAck, ref: "in", status: protocol.StatusPlaying, track: t2, volume: 50}},
			after{status: protocol.StatusPlaying, active: true, track: t2, volume: 50, version: 7}},
		{"transfer in, paused", nil, frame("in", &protocol.TransferPlayback{DeviceID: "me", State: &protocol.PlayerState{
			DeviceID: "me", Status: protocol.StatusPaused, URIs: []string{t1}, Track: &protocol.Track{URI: t1}, Version: 3}}),
			[]answer{{typ: protocol.TypeAck, ref: "in", status: protocol.StatusPaused, track: t1, volume: 50}},
			after{status: protocol.StatusPaused, active: true, track: t1, volume: 50, version: 3}},
		{"transfer in with nothing to play", nil, frame("in", &protocol.TransferPlayback{DeviceID: "me"}),
			[]answer{{typ: protocol.TypeAck, ref: "in", status: protocol.StatusIdle, volume: 50}},
			after{status: protocol.StatusIdle, active: true, volume: 50}},
		{"transfer in of a broken list", nil, frame("in", &protocol.TransferPlayback{DeviceID: "me", State: &protocol.PlayerState{
			DeviceID: "me", Status: protocol.StatusPlaying, URIs: []string{t1}, Index: 4, Version: 2}}),
			[]answer{{typ: protocol.TypeError, ref: "in", code: protocol.ErrBadRequest}},
			after{status: protocol.StatusIdle, volume: 50, version: 2}},
		{"another device's state while active stops this one", []protocol.Frame{playList},
			frame("", &protocol.PlayerStateChanged{State: protocol.PlayerState{DeviceID: "other", Status: protocol.StatusPlaying, Version: 9}}),
			nil, after{status: protocol.StatusPaused, track: t1, volume: 50, version: 9}},
		{"this device's own state", []protocol.Frame{playList},
			frame("", &protocol.PlayerStateChanged{State: protocol.PlayerState{DeviceID: "me", Status: protocol.StatusPlaying, Version: 4}}),
			nil, after{status: protocol.StatusPlaying, active: true, track: t1, volume: 50, version: 4}},
		{"made active by the device list", nil, frame("", &protocol.DeviceStateChanged{ActiveDeviceID: "me"}),
			nil, after{status: protocol.StatusIdle, active: true, volume: 50}},
		{"not active any more", []protocol.Frame{playList},
			frame("", &protocol.Error{Code: protocol.ErrNotActive, State: &protocol.PlayerState{DeviceID: "other", Version: 12}}),
			nil, after{status: protocol.StatusPaused, track: t1, volume: 50, version: 12}},
		{"goodbye changes nothing", []protocol.Frame{playList}, frame("", &protocol.Goodbye{Reason: "shutdown"}),
			nil, after{status: protocol.StatusPlaying, active: true, track: t1, volume: 50}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestReceiver(t)
			for _, f := range tc.history {
				for _, a := range answers(r.handle(fixedClock{}, f)) {
					if a.typ != protocol.TypeAck {
						t.Fatalf("history %+v answered %+v", f.Msg, a)
					}
				}
			}
			got := answers(r.handle(fixedClock{}, tc.in))
			if len(got) != len(tc.want) {
				t.Fatalf("answers %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("answer %d: %+v, want %+v", i, got[i], tc.want[i])
				}
			}
			if a := r.after(); a != tc.after {
				t.Errorf("after: %+v, want %+v", a, tc.after)
			}
		})
	}
}

// TestHandleStampsAndPersists: an ACK's state carries the version it is
// based on and the broker-clock time of its position; a volume is on disk
// before the ACK is returned.
func TestHandleStampsAndPersists(t *testing.T) {
	r := newTestReceiver(t)
	r.handle(fixedClock{}, frame("", &protocol.PlayerStateChanged{State: protocol.PlayerState{DeviceID: "other", Version: 41}}))
	before := time.Now()
	out := r.handle(fixedClock{off: time.Hour, ok: true}, cmd("v", protocol.Command{Name: protocol.CmdVolume, Volume: vol(31)}))
	ack := out[0].msg.(*protocol.Ack)
	if ack.State.BasedOn != 41 || ack.State.DeviceID != "me" {
		t.Fatalf("ack state %+v", ack.State)
	}
	if at := time.UnixMilli(ack.State.PositionAtMS); at.Before(before.Add(time.Hour-time.Second)) || at.After(time.Now().Add(time.Hour)) {
		t.Fatalf("position_at %v, want about an hour from now", at)
	}
	b, err := os.ReadFile(filepath.Join(r.opts.StateDir, "volume"))
	if err != nil || strings.TrimSpace(string(b)) != "31" {
		t.Fatalf("volume file: %q %v", b, err)
	}
	// Without a clock estimate the position has no broker time.
	out = r.handle(fixedClock{}, cmd("v2", protocol.Command{Name: protocol.CmdVolume, Volume: vol(32)}))
	if st := out[0].msg.(*protocol.Ack).State; st.PositionAtMS != 0 {
		t.Fatalf("position_at %d without a clock estimate", st.PositionAtMS)
	}
}

// TestEngineEventReports: an engine report changes the state and is
// reported only when connected and active.
func TestEngineEventReports(t *testing.T) {
	r := newTestReceiver(t)
	r.handle(fixedClock{}, playList)
	started := playback.Event{Kind: playback.TrackStarted, URI: t2}
	if got := answers(r.engineEvent(fixedClock{}, started)); len(got) != 1 || got[0].typ != protocol.TypePlayerStateChanged || got[0].track != t2 {
		t.Fatalf("active and connected: %+v", got)
	}
	r.active = false
	if out := r.engineEvent(fixedClock{}, playback.Event{Kind: playback.TrackStarted, URI: t3}); out != nil || r.transport.q.current() != t3 {
		t.Fatalf("not active: sent %+v, current %s", answers(out), r.transport.q.current())
	}
	r.active = true
	if out := r.engineEvent(nil, playback.Event{Kind: playback.Ended, URI: t3}); out != nil || r.transport.status != protocol.StatusEnded {
		t.Fatalf("not connected: sent %+v, status %s", answers(out), r.transport.status)
	}
}

// TestControl: a rename is announced with the device's new info; an
// empty or unchanged name is not.
func TestControl(t *testing.T) {
	r := newTestReceiver(t)
	out := r.control(rename{name: "Den"})
	if len(out) != 1 {
		t.Fatalf("rename: %+v", out)
	}
	if m, ok := out[0].msg.(*protocol.DeviceStateChanged); !ok || m.Device.Name != "Den" || m.Device.ID != "me" {
		t.Fatalf("rename sent %+v", out[0].msg)
	}
	for _, name := range []string{"", "Den"} {
		if out := r.control(rename{name: name}); out != nil {
			t.Fatalf("rename to %q sent %+v", name, out)
		}
	}
}

// recordingLink is a link that records, at each Send, what an observer
// reading the receiver's published state would see at that moment.
type recordingLink struct {
	fixedClock
	seen func() string
	sent []string // one line per message: its type, then what was seen
}

func (l *recordingLink) Send(_ string, m protocol.Message) error {
	l.sent = append(l.sent, string(m.Type())+" "+l.seen())
	return nil
}

// gauge reads one sample of a gauge vector from reg.
func gauge(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}

// TestDeliverStoresBeforeReporting: whoever reacts to an answer or a
// report (a controller that got its ACK and scrapes /metrics or reads the
// sd_notify status) sees the state it describes; and whoever reacts to an
// event (an --onevent hook asking the broker) comes after the answer was
// sent.
func TestDeliverStoresBeforeReporting(t *testing.T) {
	reg := prometheus.NewRegistry()
	var status string
	var evs []string
	l := &recordingLink{}
	r, err := New(Options{StateDir: t.TempDir(), Metrics: NewMetrics(reg),
		OnStatus: func(s string) { status = s },
		OnEvent:  func(e events.Event) { evs = append(evs, e.Event+fmt.Sprintf(" after %d sent", len(l.sent))) }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.opts.Engine.Close()
	l.seen = func() string {
		return fmt.Sprintf("playing=%v status=%q", gauge(t, reg, "roomcast_receiver_status", "status", "playing"), status)
	}
	r.setConnected(true)
	evs = nil
	r.deliver(l, r.handle(l, playList))
	want := []string{`ACK playing=1 status="Playing roomcast:track:1"`}
	if strings.Join(l.sent, "\n") != strings.Join(want, "\n") {
		t.Errorf("at the ACK: %q, want %q", l.sent, want)
	}
	wantEvs := []string{"active after 1 sent", "track_changed after 1 sent", "playing after 1 sent"}
	if strings.Join(evs, ",") != strings.Join(wantEvs, ",") {
		t.Errorf("events %q, want %q", evs, wantEvs)
	}
	// An engine report: the state report is sent once the status line
	// names the new track.
	l.sent, evs = nil, nil
	r.deliver(l, r.engineEvent(l, playback.Event{Kind: playback.TrackStarted, URI: t2}))
	want = []string{`PLAYER_STATE_CHANGED playing=1 status="Playing roomcast:track:2"`}
	if strings.Join(l.sent, "\n") != strings.Join(want, "\n") {
		t.Errorf("at the report: %q, want %q", l.sent, want)
	}
	if strings.Join(evs, ",") != "track_changed after 1 sent" {
		t.Errorf("events %q", evs)
	}
}
