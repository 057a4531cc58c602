package mpris

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/roomcast/roomcast/client"
	"github.com/roomcast/roomcast/protocol"
)

// Session is the user's Connect session as MPRIS needs it: what plays,
// on which devices, and a way to send commands through the broker. The
// service never talks to an audio player directly.
//
// Implementations must be safe for concurrent use.
type Session interface {
	// Snapshot returns the current view of the session. The caller must
	// not modify what it gets.
	Snapshot() Snapshot
	// Updates delivers a value whenever the snapshot may have changed.
	// Several changes may be coalesced into one signal.
	Updates() <-chan struct{}
	// Command sends cmd through the broker (to the active device, or to
	// cmd.DeviceID) and returns the state the device acknowledged. That
	// state is reflected in Snapshot before Command returns. A refusal
	// from the broker or the device is a *protocol.Error.
	Command(ctx context.Context, cmd *protocol.Command) (*protocol.PlayerState, error)
}

// Snapshot is one consistent view of a session.
type Snapshot struct {
	// Connected is false while the session has no live broker connection;
	// the rest is then the last known view.
	Connected bool
	// State is the player state; nil before anything ever played.
	State *protocol.PlayerState
	// Devices are the user's playable devices (with Online and Active
	// set by the broker); ActiveDeviceID is the active one, if any.
	Devices        []protocol.DeviceInfo
	ActiveDeviceID string
	// ClockOffset is the broker's clock minus ours; State.ServerTS is on
	// the broker's clock.
	ClockOffset time.Duration
}

// device returns the device with id, or nil.
func (s *Snapshot) device(id string) *protocol.DeviceInfo {
	if id == "" {
		return nil
	}
	for i := range s.Devices {
		if s.Devices[i].ID == id {
			return &s.Devices[i]
		}
	}
	return nil
}

// BrokerSessionOptions configure a BrokerSession.
type BrokerSessionOptions struct {
	Broker string // http://host:port
	Token  string
	// ID and Name identify the controller connection. The ID must differ
	// from every other connection of the user (the broker replaces a
	// connection that reuses an id).
	ID, Name string
	Logger   *slog.Logger
	// MinBackoff and MaxBackoff bound the jittered reconnect delay
	// (defaults 1s and 30s).
	MinBackoff, MaxBackoff time.Duration
	// ClockInterval is how often the broker's clock is measured (default 30s).
	ClockInterval time.Duration
}

// BrokerSession is a Session over its own controller connection to the
// broker, reconnecting with jittered exponential backoff when it drops.
//
// Concurrency: Run's goroutine owns the connection and is the only writer
// of the snapshot; mu guards the snapshot and the current client so that
// Snapshot and Command may be called from any goroutine.
type BrokerSession struct {
	opts    BrokerSessionOptions // Broker and Token are guarded by mu
	log     *slog.Logger
	updates chan struct{}

	mu   sync.Mutex // guards the fields that follow (and opts.Broker, opts.Token)
	snap Snapshot
	c    *client.Client // nil while disconnected
}

// NewBrokerSession returns a session; Run connects it.
func NewBrokerSession(opts BrokerSessionOptions) *BrokerSession {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	if opts.ClockInterval <= 0 {
		opts.ClockInterval = 30 * time.Second
	}
	return &BrokerSession{opts: opts, log: opts.Logger, updates: make(chan struct{}, 1)}
}

// Snapshot implements Session.
func (s *BrokerSession) Snapshot() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snap
}

// Updates implements Session.
func (s *BrokerSession) Updates() <-chan struct{} { return s.updates }

// ErrNotConnected is returned by Command while there is no broker
// connection.
var ErrNotConnected = errors.New("not connected to the broker")

// Command implements Session.
func (s *BrokerSession) Command(ctx context.Context, cmd *protocol.Command) (*protocol.PlayerState, error) {
	s.mu.Lock()
	c := s.c
	s.mu.Unlock()
	if c == nil {
		return nil, ErrNotConnected
	}
	ack, err := c.Request(ctx, cmd)
	if err != nil {
		return nil, err
	}
	if ack.State != nil {
		s.update(func(sn *Snapshot) { applyState(sn, ack.State) })
	}
	return ack.State, nil
}

// SetBroker switches to another broker URL and token (after the speaker
// was paired again): the current connection is closed and the next one
// uses them. Safe to call from any goroutine.
func (s *BrokerSession) SetBroker(url, token string) {
	s.mu.Lock()
	s.opts.Broker, s.opts.Token = url, token
	c := s.c
	s.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// Run connects and follows the session until ctx ends. It returns nil on
// cancel, and an error only when the broker refuses the token.
func (s *BrokerSession) Run(ctx context.Context) error {
	backoff := s.opts.MinBackoff
	for {
		start := time.Now()
		err := s.connection(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var he *client.HandshakeError
		if errors.As(err, &he) && he.Status == 401 {
			return fmt.Errorf("mpris: broker session: %w", err)
		}
		if time.Since(start) > 10*time.Second {
			backoff = s.opts.MinBackoff
		}
		delay := backoff/2 + rand.N(backoff/2+1)
		s.log.Warn("mpris: broker connection lost; retrying", "err", err, "in", delay.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		backoff = min(backoff*2, s.opts.MaxBackoff)
	}
}

// connection is one connection's lifetime.
func (s *BrokerSession) connection(ctx context.Context) error {
	hello := protocol.Hello{ProtocolVersion: protocol.Version, Device: protocol.DeviceInfo{
		ID: s.opts.ID, Name: s.opts.Name, Type: protocol.DeviceController}}
	s.mu.Lock()
	url, token := s.opts.Broker, s.opts.Token
	s.mu.Unlock()
	c, err := client.Dial(ctx, url, token, hello, client.Options{})
	if err != nil {
		return err
	}
	defer func() {
		c.Close()
		s.update(func(sn *Snapshot) { sn.Connected = false })
		s.mu.Lock()
		s.c = nil
		s.mu.Unlock()
	}()
	w := c.Welcome()
	// A first guess of the clock offset until a PONG measures it.
	guess := time.Duration(w.ServerTimeMS-time.Now().UnixMilli()) * time.Millisecond
	s.mu.Lock()
	s.c = c
	s.mu.Unlock()
	s.update(func(sn *Snapshot) {
		sn.Connected = true
		sn.Devices = slices.Clone(w.Devices)
		sn.ActiveDeviceID = w.ActiveDeviceID
		sn.State = nil
		if w.State != nil {
			st := *w.State
			sn.State = &st
		}
		sn.ClockOffset = guess
	})
	_ = c.Ping()
	tick := time.NewTicker(s.opts.ClockInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			_ = c.Ping()
		case f, ok := <-c.Frames():
			if !ok {
				return c.Err()
			}
			s.frame(c, f)
		}
	}
}

func (s *BrokerSession) frame(c *client.Client, f protocol.Frame) {
	switch m := f.Msg.(type) {
	case *protocol.PlayerStateChanged:
		st := m.State
		s.update(func(sn *Snapshot) { applyState(sn, &st) })
	case *protocol.DeviceStateChanged:
		if m.Device != nil {
			return
		}
		devs := slices.Clone(m.Devices)
		s.update(func(sn *Snapshot) {
			sn.Devices = devs
			sn.ActiveDeviceID = m.ActiveDeviceID
		})
	case *protocol.Pong:
		off, _ := c.ClockOffset()
		s.update(func(sn *Snapshot) { sn.ClockOffset = off })
	case *protocol.Error:
		if m.State != nil {
			st := *m.State
			s.update(func(sn *Snapshot) { applyState(sn, &st) })
		}
	case *protocol.Goodbye:
		s.log.Info("mpris: broker going away", "reason", m.Reason)
	}
}

// applyState makes st the snapshot's state unless the snapshot already
// holds a newer one (last write wins, as the broker orders states).
func applyState(sn *Snapshot, st *protocol.PlayerState) {
	if sn.State != nil && !protocol.Newer(st, sn.State) {
		return
	}
	cp := *st
	sn.State = &cp
}

// update changes the snapshot under mu and signals Updates.
func (s *BrokerSession) update(f func(*Snapshot)) {
	s.mu.Lock()
	f(&s.snap)
	s.mu.Unlock()
	select {
	case s.updates <- struct{}{}:
	default:
	}
}
