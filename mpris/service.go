package mpris

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"

	"github.com/roomcast/roomcast/protocol"
)

// Bus selects the message bus MPRIS is published on.
type Bus string

const (
	BusSession Bus = "session" // the desktop user's bus (default)
	BusSystem  Bus = "system"  // needs the policy file in packaging/dbus
	BusOff     Bus = "off"     // no MPRIS
)

// ParseBus parses a --mpris value: session, system or off ("" is session).
func ParseBus(s string) (Bus, error) {
	switch b := Bus(strings.ToLower(strings.TrimSpace(s))); b {
	case "":
		return BusSession, nil
	case BusSession, BusSystem, BusOff:
		return b, nil
	}
	return "", fmt.Errorf("mpris bus %q: want session, system or off", s)
}

// BusName is the well-known name the service asks for; when another
// connection owns it, the service takes BusName + ".instance<pid>".
const BusName = "org.mpris.MediaPlayer2.roomcast"

// Options configure a Service.
type Options struct {
	// Bus is session (default), system or off (Run returns at once).
	Bus Bus
	// BusAddress overrides the bus address (default: the standard one of
	// Bus, e.g. DBUS_SESSION_BUS_ADDRESS).
	BusAddress string

	// Broker and Token are used to open the service's own controller
	// connection when Session is nil.
	Broker, Token string
	// Session, when set, is used instead of a broker connection; the
	// caller runs it.
	Session Session

	// DeviceID is this roomcastd's device id (may be empty). It names the
	// controller connection (DeviceID + ".mpris"), and Play/OpenUri start
	// playback on this device when no device is active.
	DeviceID string
	// Identity is the MPRIS Identity, e.g. "roomcast (Kitchen)".
	Identity string
	// DesktopEntry is the basename of the .desktop file (default "roomcast").
	DesktopEntry string

	Logger *slog.Logger
	// MinBackoff and MaxBackoff bound the jittered delay between bus (and
	// broker) reconnection attempts (defaults 1s and 30s).
	MinBackoff, MaxBackoff time.Duration
	// CommandTimeout bounds one command's round trip (default 8s).
	CommandTimeout time.Duration
}

// Service publishes the user's Connect session as an MPRIS player.
//
// Concurrency: Run's goroutine owns the exported state (the property
// values, the bus connection, the name). D-Bus method calls and property
// writes, which godbus runs on its own goroutines, only send typed
// messages to it; Position reads use an immutable clock that Run's
// goroutine publishes atomically.
type Service struct {
	opts  Options
	log   *slog.Logger
	sess  Session
	owned *BrokerSession // the session Run runs, when Options.Session is nil

	inbox chan message
	done  chan struct{} // closed when Run returns
	// identity is the Identity property; SetIdentity replaces it and
	// signals renamed so that Run announces it.
	identity atomic.Pointer[string]
	renamed  chan struct{}
	// Position and Metadata are served from these immutable values, which
	// Run's goroutine replaces (see positionProps): prop keeps neither.
	clock    atomic.Pointer[clock]
	metadata atomic.Pointer[map[string]dbus.Variant]

	// Owned by Run's goroutine.
	bus     *busConn // nil while disconnected
	snap    Snapshot // last snapshot applied
	view    view     // last values computed
	prev    *protocol.PlayerState
	seekedV uint64 // state version a Seeked was emitted for
	cmds    sync.WaitGroup

	// inFlight counts, per writable property, the writes queued by D-Bus
	// clients and not yet answered: such a property keeps the value the
	// client wrote until the answer comes, instead of flickering back.
	// The property callbacks increment, Run's goroutine decrements.
	inFlight map[string]*atomic.Int32
}

// New checks opts and returns a Service; Run publishes it.
func New(opts Options) (*Service, error) {
	if opts.Bus == "" {
		opts.Bus = BusSession
	}
	if _, err := ParseBus(string(opts.Bus)); err != nil {
		return nil, fmt.Errorf("mpris: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Identity == "" {
		opts.Identity = "roomcast"
	}
	if opts.DesktopEntry == "" {
		opts.DesktopEntry = "roomcast"
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	if opts.CommandTimeout <= 0 {
		opts.CommandTimeout = 8 * time.Second
	}
	s := &Service{opts: opts, log: opts.Logger, sess: opts.Session,
		inbox: make(chan message, 32), done: make(chan struct{}), renamed: make(chan struct{}, 1), inFlight: map[string]*atomic.Int32{}}
	s.identity.Store(&opts.Identity)
	for _, p := range []string{"Volume", "LoopStatus", "Shuffle"} {
		s.inFlight[p] = new(atomic.Int32)
	}
	md := metadataOf(nil)
	s.metadata.Store(&md)
	if s.sess == nil && opts.Bus != BusOff {
		if opts.Broker == "" {
			return nil, errors.New("mpris: Options.Broker or Options.Session is required")
		}
		id := "mpris"
		if opts.DeviceID != "" {
			id = opts.DeviceID + ".mpris"
		}
		s.owned = NewBrokerSession(BrokerSessionOptions{Broker: opts.Broker, Token: opts.Token, ID: id,
			Name: opts.Identity + " (MPRIS)", Logger: opts.Logger, MinBackoff: opts.MinBackoff, MaxBackoff: opts.MaxBackoff})
		s.sess = s.owned
	}
	return s, nil
}

// SetIdentity changes the Identity property (the speaker was renamed);
// Run announces it with PropertiesChanged. An empty name is ignored. Safe
// to call from any goroutine; it never blocks.
func (s *Service) SetIdentity(name string) {
	if name == "" {
		return
	}
	s.identity.Store(&name)
	select {
	case s.renamed <- struct{}{}:
	default:
	}
}

// SetBroker makes the service's own broker connection use another broker
// URL and token (after the speaker was paired again). It does nothing
// when Options.Session was given. Safe to call from any goroutine.
func (s *Service) SetBroker(url, token string) {
	if s.owned != nil {
		s.owned.SetBroker(url, token)
	}
}

// Run publishes the player until ctx ends, reconnecting to the bus with
// backoff when it goes away (a dbus-daemon restart) and re-exporting
// everything. It returns nil on cancel (and at once for BusOff); an error
// only when the broker refuses the token.
func (s *Service) Run(ctx context.Context) error {
	defer close(s.done)
	if s.opts.Bus == BusOff {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sessErr := make(chan error, 1)
	if s.owned != nil {
		go func() { sessErr <- s.owned.Run(ctx) }()
	}
	defer s.cmds.Wait()
	defer s.disconnect()

	s.apply(s.sess.Snapshot())
	backoff := s.opts.MinBackoff
	lastErr := ""             // the last connection error logged
	retry := time.NewTimer(0) // connect at once
	defer retry.Stop()
	for {
		var busGone <-chan struct{}
		if s.bus != nil {
			busGone = s.bus.conn.Context().Done()
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-sessErr:
			if err != nil {
				return err
			}
		case <-s.sess.Updates():
			s.apply(s.sess.Snapshot())
		case m := <-s.inbox:
			s.handle(ctx, m)
		case <-s.renamed:
			if s.bus != nil { // else the next connection exports the new name
				if err := setProp(s.bus.props, ifaceRoot, "Identity", *s.identity.Load()); err != nil {
					s.log.Debug("mpris: set Identity", "err", err)
				}
			}
		case <-busGone:
			s.log.Warn("mpris: lost the D-Bus connection; reconnecting", "bus", s.opts.Bus)
			s.disconnect()
			retry.Reset(s.opts.MinBackoff / 2)
			backoff = s.opts.MinBackoff
		case <-retry.C:
			if err := s.connect(ctx); err != nil {
				delay := backoff/2 + rand.N(backoff/2+1)
				// Say it once; the same failure again (no session bus on
				// a headless box) is only worth a debug line.
				level := slog.LevelWarn
				if err.Error() == lastErr {
					level = slog.LevelDebug
				}
				lastErr = err.Error()
				s.log.Log(ctx, level, "mpris: cannot publish on D-Bus; retrying", "bus", s.opts.Bus, "err", err, "in", delay.Round(time.Millisecond))
				retry.Reset(delay)
				backoff = min(backoff*2, s.opts.MaxBackoff)
				continue
			}
			backoff, lastErr = s.opts.MinBackoff, ""
		}
	}
}

// apply takes a new snapshot: recomputes the view, publishes what
// changed, and announces a position jump with Seeked.
func (s *Service) apply(sn Snapshot) {
	s.snap = sn
	s.clock.Store(&clock{state: sn.State, offset: sn.ClockOffset})
	s.view = viewOf(&sn, s.opts.DeviceID)
	s.publish()
	if md := s.view.Metadata; !reflect.DeepEqual(md, *s.metadata.Load()) {
		s.metadata.Store(&md)
		s.emitMetadata(md)
	}
	if st := sn.State; st != nil && (s.prev == nil || st.Version != s.prev.Version || st.ServerTS != s.prev.ServerTS) {
		if jumped(s.prev, st, time.Second) && s.seekedV != st.Version {
			s.seekedV = st.Version
			s.emitSeeked()
		}
		s.prev = st
	}
}

// publish sets every property whose exported value differs from the
// view (PropertiesChanged goes out for those only). A writable property
// with a command in flight is left as the writer set it until the answer.
func (s *Service) publish() {
	if s.bus == nil {
		return
	}
	v := &s.view
	set := func(name string, val any) {
		if n := s.inFlight[name]; n != nil && n.Load() > 0 {
			return
		}
		if reflect.DeepEqual(s.bus.props.GetMust(ifacePlayer, name), val) {
			return
		}
		if err := setProp(s.bus.props, ifacePlayer, name, val); err != nil {
			// The connection is going away; Run reconnects and exports
			// the current values again.
			s.log.Debug("mpris: set property", "name", name, "err", err)
		}
	}
	set("PlaybackStatus", v.PlaybackStatus)
	set("LoopStatus", v.LoopStatus)
	set("Shuffle", v.Shuffle)
	set("Volume", v.Volume)
	set("Rate", 1.0)
	set("CanGoNext", v.CanGoNext)
	set("CanGoPrevious", v.CanGoPrevious)
	set("CanPlay", v.CanPlay)
	set("CanPause", v.CanPause)
	set("CanSeek", v.CanSeek)
}

// emitMetadata announces a new Metadata. Metadata is not stored in prop:
// prop's SetMust merges a map into the stored one in place (old keys
// stay, and a reader encoding the previous value races with the write),
// so it is served from s.metadata and announced here.
func (s *Service) emitMetadata(md map[string]dbus.Variant) {
	if s.bus == nil {
		return
	}
	err := s.bus.conn.Emit(objectPath, "org.freedesktop.DBus.Properties.PropertiesChanged",
		ifacePlayer, map[string]dbus.Variant{"Metadata": dbus.MakeVariant(md)}, []string{})
	if err != nil {
		s.log.Debug("mpris: emit Metadata", "err", err)
	}
}

// setProp is prop's SetMust (the only setter for read-only properties)
// without its panic: SetMust panics when emitting PropertiesChanged fails,
// which happens when the bus connection has just closed. SetMust releases
// its lock before the panic propagates.
func setProp(p *prop.Properties, iface, name string, val any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s.%s: %v", iface, name, r)
		}
	}()
	p.SetMust(iface, name, val)
	return nil
}

// positionUS is the current position in microseconds.
func (s *Service) positionUS() int64 {
	return s.clock.Load().positionMS(time.Now()) * 1000
}

func (s *Service) emitSeeked() {
	if s.bus == nil {
		return
	}
	if err := s.bus.conn.Emit(objectPath, ifacePlayer+".Seeked", s.positionUS()); err != nil {
		s.log.Debug("mpris: emit Seeked", "err", err)
	}
}

// connect dials the bus, exports the objects and takes a name.
func (s *Service) connect(ctx context.Context) error {
	addr := s.opts.BusAddress
	if addr == "" {
		var err error
		if addr, err = defaultAddress(s.opts.Bus); err != nil {
			return err
		}
	}
	bc, err := dialBus(ctx, addr, s)
	if err != nil {
		return err
	}
	s.bus = bc
	s.publish()
	s.log.Info("mpris: published", "bus", s.opts.Bus, "name", bc.name)
	return nil
}

// disconnect releases the name and closes the bus connection.
func (s *Service) disconnect() {
	if s.bus == nil {
		return
	}
	if s.bus.conn.Connected() {
		_, _ = s.bus.conn.ReleaseName(s.bus.name)
	}
	s.bus.conn.Close()
	s.bus.cancel()
	s.bus = nil
}

// defaultAddress is the standard address of bus.
func defaultAddress(bus Bus) (string, error) {
	if bus == BusSystem {
		if a := os.Getenv("DBUS_SYSTEM_BUS_ADDRESS"); a != "" {
			return a, nil
		}
		return "unix:path=/run/dbus/system_bus_socket", nil
	}
	if a := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" {
		return a, nil
	}
	if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
		if _, err := os.Stat(dir + "/bus"); err == nil {
			return "unix:path=" + dir + "/bus", nil
		}
	}
	return "", errors.New("no session bus: DBUS_SESSION_BUS_ADDRESS is not set and $XDG_RUNTIME_DIR/bus does not exist")
}

// Messages into Run's goroutine.
type message interface{ isMessage() }

// op is an MPRIS method that acts on the session.
type op int

const (
	opPlay op = iota
	opPause
	opPlayPause
	opStop
	opNext
	opPrevious
	opSeek        // relative: offsetUS
	opSetPosition // absolute: trackID, offsetUS
	opOpenURI     // uri
)

var opNames = [...]string{"Play", "Pause", "PlayPause", "Stop", "Next", "Previous", "Seek", "SetPosition", "OpenUri"}

func (o op) String() string { return opNames[o] }

type (
	// callMsg is a method call; the caller waits on reply.
	callMsg struct {
		op       op
		offsetUS int64
		trackID  dbus.ObjectPath
		uri      string
		reply    chan *dbus.Error
	}
	// writeMsg is a property write a D-Bus client made; nobody waits.
	writeMsg struct {
		prop string // Volume, LoopStatus, Shuffle or Rate
		cmd  *protocol.Command
	}
	// resultMsg is a command's outcome.
	resultMsg struct {
		op    string
		prop  string // set for writes
		seek  bool
		state *protocol.PlayerState
		err   error
		reply chan *dbus.Error // nil for writes
	}
)

func (callMsg) isMessage()   {}
func (writeMsg) isMessage()  {}
func (resultMsg) isMessage() {}

// post hands m to Run's goroutine without blocking; it reports false when
// the inbox is full or Run has returned.
func (s *Service) post(m message) bool {
	select {
	case <-s.done:
		return false
	default:
	}
	select {
	case s.inbox <- m:
		return true
	default:
		return false
	}
}

// call posts a method call and waits for its outcome.
func (s *Service) call(m callMsg) *dbus.Error {
	m.reply = make(chan *dbus.Error, 1)
	if !s.post(m) {
		return dbus.MakeFailedError(errors.New("roomcast MPRIS is busy or stopping"))
	}
	select {
	case err := <-m.reply:
		return err
	case <-s.done:
		return dbus.MakeFailedError(errors.New("roomcast MPRIS stopped"))
	}
}

func (s *Service) handle(ctx context.Context, m message) {
	switch m := m.(type) {
	case callMsg:
		cmd, derr := s.commandFor(m)
		if derr != nil || cmd == nil {
			m.reply <- derr // nil: the spec says "no effect" here
			return
		}
		s.start(ctx, resultMsg{op: m.op.String(), seek: m.op == opSeek || m.op == opSetPosition, reply: m.reply}, cmd)
	case writeMsg:
		if m.cmd == nil {
			s.publish() // e.g. Rate 1.0 again: restore what is true
			return
		}
		s.start(ctx, resultMsg{op: "set " + m.prop, prop: m.prop}, m.cmd)
	case resultMsg:
		if n := s.inFlight[m.prop]; n != nil {
			n.Add(-1)
		}
		if m.err != nil {
			s.log.Info("mpris: command refused", "op", m.op, "err", m.err)
		}
		s.apply(s.sess.Snapshot())
		if m.seek && m.err == nil && m.state != nil && s.seekedV != m.state.Version {
			// Our own seek is announced even when the jump was small.
			s.seekedV = m.state.Version
			s.emitSeeked()
		}
		s.publish()
		if m.reply != nil {
			if m.err != nil {
				m.reply <- dbus.MakeFailedError(m.err)
			} else {
				m.reply <- nil
			}
		}
	}
}

// start runs cmd on its own goroutine and posts the outcome back.
func (s *Service) start(ctx context.Context, res resultMsg, cmd *protocol.Command) {
	s.cmds.Add(1)
	go func() {
		defer s.cmds.Done()
		cctx, cancel := context.WithTimeout(ctx, s.opts.CommandTimeout)
		res.state, res.err = s.sess.Command(cctx, cmd)
		cancel()
		select {
		case s.inbox <- res:
		case <-ctx.Done():
			if res.reply != nil {
				res.reply <- dbus.MakeFailedError(errors.New("roomcast MPRIS stopped"))
			}
		}
	}()
}

// errNotSupported is the D-Bus error for what roomcast cannot do.
func errNotSupported(msg string) *dbus.Error {
	return dbus.NewError("org.freedesktop.DBus.Error.NotSupported", []any{msg})
}

// commandFor turns a method call into a command for the broker. A nil
// command with a nil error means the call has no effect (as the spec
// asks, e.g. Pause while paused, Seek when CanSeek is false).
func (s *Service) commandFor(m callMsg) (*protocol.Command, *dbus.Error) {
	sn := &s.snap
	st := sn.State
	f := factsOf(sn, s.opts.DeviceID)
	v := &s.view
	switch m.op {
	case opPause, opStop:
		if st != nil && (st.Status == protocol.StatusPlaying || st.Status == protocol.StatusLoading) && f.activeOnline {
			return &protocol.Command{Name: protocol.CmdPause}, nil
		}
		return nil, nil
	case opPlayPause:
		if st != nil && (st.Status == protocol.StatusPlaying || st.Status == protocol.StatusLoading) {
			if !f.activeOnline {
				return nil, nil
			}
			return &protocol.Command{Name: protocol.CmdPause}, nil
		}
		return s.play(st, f), nil
	case opPlay:
		return s.play(st, f), nil
	case opNext:
		if !v.CanGoNext {
			return nil, nil
		}
		return &protocol.Command{Name: protocol.CmdSkipNext}, nil
	case opPrevious:
		if !v.CanGoPrevious {
			return nil, nil
		}
		return &protocol.Command{Name: protocol.CmdSkipPrev}, nil
	case opSeek:
		if !v.CanSeek {
			return nil, nil
		}
		pos := s.clock.Load().positionMS(time.Now()) + m.offsetUS/1000
		if pos < 0 {
			pos = 0
		}
		if d := st.Track.DurationMS; d > 0 && pos > d {
			return &protocol.Command{Name: protocol.CmdSkipNext}, nil // the spec: past the end acts as Next
		}
		return &protocol.Command{Name: protocol.CmdSeek, PositionMS: &pos}, nil
	case opSetPosition:
		if !v.CanSeek || m.trackID != TrackID(st.Track.URI) || m.offsetUS < 0 {
			return nil, nil
		}
		if d := st.Track.DurationMS; d > 0 && m.offsetUS/1000 > d {
			return nil, nil // the spec: past the end does nothing
		}
		pos := m.offsetUS / 1000
		return &protocol.Command{Name: protocol.CmdSeek, PositionMS: &pos}, nil
	case opOpenURI:
		if !strings.HasPrefix(m.uri, protocol.URIScheme+":") {
			return nil, errNotSupported(fmt.Sprintf("cannot open %q: only %s: URIs are supported", m.uri, protocol.URIScheme))
		}
		cmd := &protocol.Command{Name: protocol.CmdPlay}
		if strings.HasPrefix(m.uri, protocol.URIScheme+":track:") {
			cmd.URIs = []string{m.uri}
		} else {
			cmd.ContextURI = m.uri
		}
		if !f.activeOnline && f.ownOnline {
			cmd.DeviceID = s.opts.DeviceID
		}
		if err := cmd.Validate(); err != nil {
			return nil, dbus.NewError("org.freedesktop.DBus.Error.InvalidArgs", []any{err.Error()})
		}
		return cmd, nil
	}
	return nil, nil
}

// play is what Play means now: resume a paused session, restart an ended
// one, and, with no device active, start the last session on this
// device. It returns nil when there is nothing to play.
func (s *Service) play(st *protocol.PlayerState, f facts) *protocol.Command {
	if !f.hasItem {
		return nil
	}
	switch {
	case !f.activeOnline:
		if !f.ownOnline {
			return nil
		}
		cmd := replay(st)
		cmd.DeviceID = s.opts.DeviceID
		pos := st.PositionMS
		cmd.PositionMS = &pos
		return cmd
	case st.Status == protocol.StatusPaused:
		return &protocol.Command{Name: protocol.CmdResume}
	case st.Status == protocol.StatusPlaying || st.Status == protocol.StatusLoading:
		return nil
	}
	return replay(st)
}

// replay is a play command for the state's list at its index.
func replay(st *protocol.PlayerState) *protocol.Command {
	cmd := &protocol.Command{Name: protocol.CmdPlay, ContextURI: st.ContextURI, URIs: st.URIs, Offset: st.Index}
	if cmd.ContextURI == "" && len(cmd.URIs) == 0 && st.Track != nil {
		cmd.URIs, cmd.Offset = []string{st.Track.URI}, 0
	}
	if len(cmd.URIs) > 0 && cmd.Offset >= len(cmd.URIs) {
		cmd.Offset = 0
	}
	return cmd
}

// propertyWrite is the callback of the writable properties: it validates
// and queues the matching command, never calling back into godbus (prop
// holds its lock while it runs).
func (s *Service) propertyWrite(c *prop.Change) *dbus.Error {
	var cmd *protocol.Command
	switch c.Name {
	case "Volume":
		v := volumePercent(c.Value.(float64))
		cmd = &protocol.Command{Name: protocol.CmdVolume, Volume: &v}
	case "LoopStatus":
		r, ok := repeatOf(c.Value.(string))
		if !ok {
			return dbus.NewError("org.freedesktop.DBus.Error.InvalidArgs", []any{fmt.Sprintf("LoopStatus %q: want None, Track or Playlist", c.Value)})
		}
		cmd = &protocol.Command{Name: protocol.CmdRepeat, Repeat: r}
	case "Shuffle":
		b := c.Value.(bool)
		cmd = &protocol.Command{Name: protocol.CmdShuffle, Shuffle: &b}
	case "Rate":
		switch r := c.Value.(float64); r {
		case 1:
			return nil
		case 0:
			// The spec: a rate of 0.0 acts as Pause. Rate itself is put
			// back to 1.0 when the owner restores the view.
			if !s.post(callMsg{op: opPause, reply: make(chan *dbus.Error, 1)}) || !s.post(writeMsg{prop: "Rate"}) {
				return dbus.MakeFailedError(errors.New("roomcast MPRIS is busy"))
			}
			return nil
		default:
			return dbus.NewError("org.freedesktop.DBus.Error.InvalidArgs", []any{fmt.Sprintf("Rate %g: only 1.0 is supported", r)})
		}
	default:
		return prop.ErrReadOnly
	}
	n := s.inFlight[c.Name]
	n.Add(1)
	if !s.post(writeMsg{prop: c.Name, cmd: cmd}) {
		n.Add(-1)
		return dbus.MakeFailedError(errors.New("roomcast MPRIS is busy"))
	}
	return nil
}
