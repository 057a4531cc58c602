// Package receiver is the device side of roomcast: it joins a broker as a
// speaker, keeps its session across reconnects, executes commands and
// reports player state.
//
// The sound comes from an Engine: the audio pipeline, or the silent clock
// engine where there is no audio (it keeps the position in real time and
// moves on at each track's end, so everything else behaves the same).
//
// Concurrency: Run's goroutine owns all state; nothing else touches it.
// Other goroutines reach it only through post (SetName: a sealed set of
// typed control messages), the engine only through its Events channel.
// Each input is one step on that goroutine: it changes the state and
// returns what to send (handle.go), and deliver then stores what others
// read (metrics, status line), sends, and publishes the events, in that
// order (observe.go).
package receiver

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/roomcast/roomcast/buildinfo"
	"github.com/roomcast/roomcast/client"
	"github.com/roomcast/roomcast/events"
	"github.com/roomcast/roomcast/playback"
	"github.com/roomcast/roomcast/protocol"
)

// Options configure a Receiver.
type Options struct {
	Broker   string // http://host:port
	Token    string
	StateDir string // device id and volume live here
	Name     string
	// Volume is the initial volume on first start; later starts use the
	// persisted one. Negative: 50.
	Volume int
	Logger *slog.Logger
	// StateInterval is how often state is reported while playing
	// (default 5s); every change is reported at once as well.
	StateInterval time.Duration
	// MinBackoff and MaxBackoff bound the jittered reconnect delay
	// (defaults 1s and 30s).
	MinBackoff, MaxBackoff time.Duration
	// OnStatus, when set, is called with a one-line summary on changes
	// (for sd_notify STATUS=): "Waiting for broker" while no broker is
	// joined, else "Playing <artist – title>", "Paused", "Error: ..." or
	// "Idle".
	OnStatus func(string)
	// Heartbeat, when set, is beaten at least once a second by the
	// control loop, so a watchdog can tell when it is stuck.
	Heartbeat Beater
	// Engine plays the audio; nil: the silent clock engine.
	Engine playback.Engine
	// OnEvent, when set, receives what the speaker does (for --events and
	// --onevent). It is called on the receiver's goroutine and must not
	// block.
	OnEvent func(events.Event)
	// Metrics, when set, is kept up to date (NewMetrics).
	Metrics *Metrics
	// AutoPlay, when set, is played on this device once it first joins a
	// broker where no device is active (one context URI, or track URIs).
	AutoPlay []string
}

// Beater is the watchdog side of a loop's health (systemd.Heartbeat).
type Beater interface{ Beat() }

// Receiver is one speaker.
type Receiver struct {
	opts     Options
	log      *slog.Logger
	deviceID string
	// transport owns the queue, the state machine and the engine.
	transport *transport
	// engineEvents is the engine's report channel (transport.events).
	engineEvents <-chan playback.Event
	// done remembers the answers to recent command ids, so a command
	// retried after a reconnect is acknowledged again, never re-run.
	done      map[string]*protocol.PlayerState
	doneOrder []string
	// active: the broker last told us we are the active device.
	active bool
	// version: the last state version seen from the broker.
	version uint64
	// ctl carries requests from other goroutines into Run's goroutine.
	ctl chan control
	// last is what the previous events described; changes emit events.
	last observed
	// statusLine is the last line given to OnStatus.
	statusLine string
	// autoPlay is the pending --play list; autoTries counts refusals (the
	// library may still be scanning), retried once a second up to 30 times.
	autoPlay  []string
	autoTries int
	autoAt    time.Time
}

// New loads or creates the device identity in opts.StateDir.
func New(opts Options) (*Receiver, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.StateInterval <= 0 {
		opts.StateInterval = 5 * time.Second
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	if opts.Name == "" {
		h, _ := os.Hostname()
		opts.Name = h
	}
	if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("receiver: state dir: %w", err)
	}
	id, err := LoadOrCreateID(opts.StateDir)
	if err != nil {
		return nil, fmt.Errorf("receiver: %w", err)
	}
	vol := opts.Volume
	if vol < 0 || vol > 100 {
		vol = 50
	}
	if b, err := os.ReadFile(filepath.Join(opts.StateDir, "volume")); err == nil {
		if v, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && v >= 0 && v <= 100 {
			vol = v
		}
	}
	if opts.Engine == nil {
		opts.Engine = newClockEngine()
	}
	r := &Receiver{opts: opts, log: opts.Logger, deviceID: id, ctl: make(chan control, 8),
		done: map[string]*protocol.PlayerState{}, autoPlay: opts.AutoPlay}
	r.transport = newTransport(id, vol, opts.Engine, opts.Logger)
	r.engineEvents = r.transport.events()
	// Events describe changes from here on: the starting state is known.
	r.last = observed{status: r.transport.status, volume: vol}
	return r, nil
}

// SetName renames the device (a config reload); the broker and every
// picker learn it at once. Safe to call from any goroutine.
func (r *Receiver) SetName(name string) { r.post(rename{name: name}) }

// post hands m to Run's goroutine; it drops m (with a log line) if eight
// requests are already waiting, rather than block the caller.
func (r *Receiver) post(m control) {
	select {
	case r.ctl <- m:
	default:
		r.log.Warn("receiver busy: control request dropped")
	}
}

func (r *Receiver) beat() {
	if r.opts.Heartbeat != nil {
		r.opts.Heartbeat.Beat()
	}
}

// DeviceID is the stable id stored in the state directory.
func (r *Receiver) DeviceID() string { return r.deviceID }

// LoadOrCreateID returns the device id stored in stateDir/device.id,
// creating it ("rc-" + 16 hex digits) on first use. Everything that speaks
// for the device (HELLO, mDNS, pairing) uses this one id.
func LoadOrCreateID(stateDir string) (string, error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return "", fmt.Errorf("device id: %w", err)
	}
	path := filepath.Join(stateDir, "device.id")
	if b, err := os.ReadFile(path); err == nil {
		id := strings.TrimSpace(string(b))
		if id != "" && len(id) <= protocol.MaxIDLen {
			return id, nil
		}
	}
	var raw [8]byte
	if _, err := crand.Read(raw[:]); err != nil {
		return "", err
	}
	id := "rc-" + hex.EncodeToString(raw[:])
	if err := writeFileAtomic(path, []byte(id+"\n")); err != nil {
		return "", fmt.Errorf("device id: %w", err)
	}
	return id, nil
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func (r *Receiver) hello() protocol.Hello {
	return protocol.Hello{ProtocolVersion: protocol.Version, Device: r.info(),
		Resume: &protocol.Resume{Active: r.active, StateVersion: r.version}}
}

func (r *Receiver) info() protocol.DeviceInfo {
	return protocol.DeviceInfo{ID: r.deviceID, Name: r.opts.Name, Type: protocol.DeviceSpeaker,
		Volume:       r.transport.volume,
		Capabilities: []string{protocol.CapPlay, protocol.CapVolume, protocol.CapSeek},
		Software:     "roomcastd " + buildinfo.Version}
}

// Run connects and serves until ctx ends, reconnecting with jittered
// exponential backoff. It returns nil on cancel, and an error only when
// the broker refuses the token (retrying cannot help).
func (r *Receiver) Run(ctx context.Context) error {
	backoff := r.opts.MinBackoff
	for sessions := 0; ; sessions++ {
		if sessions > 0 {
			r.opts.Metrics.reconnected()
		}
		start := time.Now()
		err := r.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var he *client.HandshakeError
		if errors.As(err, &he) && he.Status == 401 {
			return fmt.Errorf("receiver: %w", err)
		}
		if time.Since(start) > 10*time.Second {
			backoff = r.opts.MinBackoff // the session was healthy: start over
		}
		// Full jitter over [backoff/2, backoff]. Meanwhile a cheap probe
		// of the broker's /healthz notices its return at once, so the
		// device is back within a second or two of the broker whatever
		// the backoff has grown to.
		delay := backoff/2 + rand.N(backoff/2+1)
		r.log.Warn("broker connection lost; retrying", "err", err, "in", delay.Round(time.Millisecond))
		r.reportStatus()
		if !r.wait(ctx, delay) {
			return nil
		}
		backoff = min(backoff*2, r.opts.MaxBackoff)
	}
}

// wait sleeps for d while serving control requests and beating the
// heartbeat; it returns false when ctx ends.
func (r *Receiver) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	hb := time.NewTicker(time.Second)
	defer hb.Stop()
	// Probe the broker's /healthz once a second after the minimum backoff
	// (never faster: two daemons fighting over one device id must not spin).
	probe := make(chan bool, 1)
	probeAt := time.After(r.opts.MinBackoff)
	for {
		r.beat()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case <-probeAt:
			probeAt = nil
			go func() { probe <- r.brokerAnswers(ctx) }()
		case up := <-probe:
			if up {
				return true
			}
			probeAt = time.After(time.Second)
		case m := <-r.ctl:
			r.deliver(nil, r.control(m)) // answers need a broker: dropped
		case ev := <-r.engineEvents:
			r.deliver(nil, r.engineEvent(nil, ev)) // playback goes on while the broker is away
		case <-hb.C:
		}
	}
}

// brokerAnswers reports whether the broker's /healthz answers 200 now.
func (r *Receiver) brokerAnswers(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", strings.TrimSuffix(r.opts.Broker, "/")+"/healthz", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// deliver ends every step of Run's goroutine, in the order observers
// rely on: first what the step changed is stored where others read it
// (the metrics, the status line; handle has already saved a new volume),
// then its answers and reports go to the broker (nothing without a
// connection), then the events describing it are published. So whoever
// reacts to an ACK or a state report reads the state it carries, and an
// --onevent hook that asks the broker comes after the broker was told.
func (r *Receiver) deliver(c link, out []outgoing) {
	evs := r.observe()
	for _, o := range out {
		if c == nil {
			break
		}
		if err := c.Send(o.id, o.msg); err != nil {
			r.log.Debug("send", "type", o.msg.Type(), "err", err)
		}
	}
	r.publish(evs)
}

// session is one connection's lifetime.
func (r *Receiver) session(ctx context.Context) error {
	r.beat()
	c, err := client.Dial(ctx, r.opts.Broker, r.opts.Token, r.hello(), client.Options{})
	if err != nil {
		return err
	}
	defer c.Close()
	w := c.Welcome()
	r.log.Info("joined broker", "broker", r.opts.Broker, "device", r.deviceID, "name", r.opts.Name, "resumed", w.Resumed)
	r.setConnected(true)
	defer r.setConnected(false)
	if w.State != nil {
		r.version = w.State.Version
	}
	wasActive := r.active
	r.active = w.ActiveDeviceID == r.deviceID
	if wasActive && !r.active {
		// Someone took over while we were away: stop.
		r.transport.stop()
	}
	// A few pings at once give a clock estimate before the first report.
	for i := 0; i < 3; i++ {
		_ = c.Ping()
	}
	var out []outgoing
	if r.active {
		out = r.stateReport(c)
	}
	if len(r.autoPlay) > 0 && w.ActiveDeviceID != "" {
		r.autoPlay = nil // something plays already: leave it
	}
	if len(r.autoPlay) > 0 {
		out = append(out, r.autoPlayRequest()...)
	}
	r.deliver(c, out)
	tick := time.NewTicker(r.opts.StateInterval)
	defer tick.Stop()
	hb := time.NewTicker(time.Second)
	defer hb.Stop()
	ping := time.NewTicker(5 * time.Second)
	defer ping.Stop()
	for {
		r.beat()
		select {
		case <-ctx.Done():
			return nil
		case f, ok := <-c.Frames():
			if !ok {
				return c.Err()
			}
			r.deliver(c, r.handle(c, f))
		case m := <-r.ctl:
			r.deliver(c, r.control(m))
		case ev := <-r.engineEvents:
			r.deliver(c, r.engineEvent(c, ev))
		case <-tick.C:
			if r.active && r.transport.status == protocol.StatusPlaying {
				r.deliver(c, r.stateReport(c))
			}
		case <-ping.C:
			_ = c.Ping()
		case <-hb.C:
			if len(r.autoPlay) > 0 && !r.autoAt.IsZero() && time.Now().After(r.autoAt) {
				r.deliver(c, r.autoPlayRequest())
			}
		}
	}
}
