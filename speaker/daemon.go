// Package speaker is roomcastd: a speaker made of parts, each with one
// constructor and the methods its owner calls —
//
//	watchdog   systemd.Watchdog: WATCHDOG=1 while every loop beats
//	discovery  speakerDiscovery: info/pairing endpoint + mDNS (pairing.go)
//	embedded   brokerserver.Server: single-box mode's broker (no --broker)
//	metrics    metricsPart: /healthz, /metrics (metrics.go)
//	events     eventsPart: --events socket, --onevent hook (events.go)
//	audio      audioPart: the audio pipeline and its media source (audio.go)
//	receiver   receiverPart: the device on the broker (receiver.go)
//	MPRIS      mprisPart: media keys for the whole session (mpris.go)
//
// Concurrency: one goroutine, Daemon.control, owns the configuration and
// the broker credentials. Everything that changes them arrives there as a
// typed message (the sealed interface message): a pairing, a SIGHUP
// (Reload), a token the broker refused. It hands each part what changed
// through one method, SetBroker(url, token) or Apply(cfg). Every goroutine
// is started in one errgroup: the first error stops the rest, and Run
// returns it after all have ended. Cancelation is not an error.
package speaker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"

	"golang.org/x/sync/errgroup"

	"github.com/roomcast/roomcast/brokerserver"
	"github.com/roomcast/roomcast/mpris"
	"github.com/roomcast/roomcast/receiver"
	"github.com/roomcast/roomcast/systemd"
)

// Runtime is what the daemon gets from its process.
type Runtime struct {
	Logger *slog.Logger
	Level  *slog.LevelVar         // Config.Level is set here, also on reload
	Notify *systemd.Notifier      // READY, STATUS, RELOADING, STOPPING
	Stderr io.Writer              // the single-box mode's "roomcast broker: URL" line
	Reload func() (Config, error) // re-reads the configuration on Reload
}

// Daemon is one roomcastd. New builds its parts; Run runs them.
type Daemon struct {
	rt  Runtime
	log *slog.Logger
	cfg Config // owned by control once Run started

	wd       *systemd.Watchdog
	disc     *speakerDiscovery
	embedded *brokerserver.Server // nil unless single-box mode
	metrics  *metricsPart
	events   *eventsPart
	audio    *audioPart // nil with --output none
	recv     *receiverPart
	mpris    *mprisPart // nil with --mpris off

	deviceID string
	// initial are the credentials to start with (flags or the last
	// pairing); empty in single-box mode and while waiting to be paired.
	initial credentials

	inbox chan message
	// paired holds the newest credentials from a pairing: the pairing
	// goroutine must never block, so a newer pairing replaces an unread
	// older one (it is the only sender).
	paired chan credentials
}

// credentials are a broker URL and token, and where they came from.
type credentials struct {
	url, token string
	from       source
}

type source int

const (
	fromNone     source = iota
	fromConfig          // --broker/--token
	fromPairing         // pairing.json, or a pairing while running
	fromEmbedded        // the embedded broker's owner token
)

// Messages into the control goroutine.
type message interface{ isMessage() }

// reload is a SIGHUP: re-read the configuration and apply it.
type reload struct{}

// tokenRefused: the broker refused token to part (revoked, or a new
// database); mpris is the service that stopped, for that part.
type tokenRefused struct {
	part  string
	token string
	err   error
	mpris *mpris.Service
}

func (reload) isMessage()       {}
func (tokenRefused) isMessage() {}

// New builds the parts that need no broker yet: the watchdog, the
// discovery endpoint (listening), the embedded broker in single-box mode
// (its databases open), metrics, events and the audio pipeline. Run
// starts them and joins a broker; it is what releases them, so a caller
// that gives up after New exits the process.
func New(cfg Config, rt Runtime) (*Daemon, error) {
	if rt.Logger == nil {
		rt.Logger = slog.New(slog.DiscardHandler)
	}
	if rt.Level == nil {
		rt.Level = new(slog.LevelVar)
	}
	if rt.Stderr == nil {
		rt.Stderr = io.Discard
	}
	if rt.Notify == nil {
		rt.Notify = systemd.NewNotifier("") // silent
	}
	rt.Level.Set(cfg.Level)
	d := &Daemon{rt: rt, log: rt.Logger, cfg: cfg, inbox: make(chan message, 16), paired: make(chan credentials, 1)}
	d.wd = systemd.NewWatchdog(rt.Notify, d.log)
	var err error
	if d.deviceID, err = receiver.LoadOrCreateID(cfg.StateDir); err != nil {
		return nil, err
	}
	if err := d.newDiscovery(); err != nil {
		return nil, err
	}
	d.initial = d.startCredentials()
	if d.initial.url == "" && !cfg.WaitForPairing {
		if err := d.newEmbedded(); err != nil {
			return nil, err
		}
	}
	if d.metrics, err = d.newMetrics(); err != nil {
		return nil, err
	}
	d.events = newEvents(cfg, d.log)
	if cfg.Output != "none" { // none: the receiver's silent clock engine
		if d.audio, err = newAudio(cfg, d.wd, d.metrics.reg, d.log); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// newDiscovery opens the info/pairing endpoint (listenPairing); a
// pairing is handed to the control goroutine through d.paired.
func (d *Daemon) newDiscovery() error {
	ln, err := listenPairing(d.cfg.PairListen, d.cfg.PairListenIsDefault, d.log)
	if err != nil {
		return err
	}
	disc, err := newSpeakerDiscovery(d.cfg.StateDir, d.cfg.Name, d.cfg.MDNS, ln, d.cfg.PIN, d.log, func(u, t string) {
		select { // keep only the newest credentials
		case <-d.paired:
		default:
		}
		d.paired <- credentials{url: u, token: t, from: fromPairing}
	})
	if err != nil {
		ln.Close()
		return err
	}
	d.disc = disc
	return nil
}

// startCredentials are the configured broker, else the last pairing's.
func (d *Daemon) startCredentials() credentials {
	if d.cfg.Broker != "" {
		return credentials{url: d.cfg.Broker, token: d.cfg.Token, from: fromConfig}
	}
	if d.cfg.Token == "" {
		if u, t, ok := d.disc.Pairing.Credentials(); ok {
			d.log.Info("using the broker this speaker was paired with", "broker", u)
			return credentials{url: u, token: t, from: fromPairing}
		}
	}
	return credentials{}
}

// newEmbedded prepares single-box mode's broker (and library).
func (d *Daemon) newEmbedded() error {
	c := d.cfg
	srv, err := brokerserver.New(brokerserver.Options{Listen: c.Listen, StateDir: c.StateDir, MetricsListen: c.MetricsListen,
		Music: c.Music, RescanInterval: c.RescanInterval, MDNS: c.MDNS, Heartbeat: c.Heartbeat, DropAfter: c.DropAfter,
		OwnerTokenFile: filepath.Join(c.StateDir, "owner.token"), Logger: d.log})
	if err != nil {
		return err
	}
	d.embedded = srv
	return nil
}

// newMetrics: with the embedded broker the receiver's metrics join the
// broker's /metrics (and --metrics-listen is the broker's).
func (d *Daemon) newMetrics() (*metricsPart, error) {
	if d.embedded != nil {
		return newMetrics(d.embedded.Broker().Registry(), "", d.wd, d.disc.Mux)
	}
	return newMetrics(nil, d.cfg.MetricsListen, d.wd, d.disc.Mux)
}

// Reload asks the daemon to re-read its configuration (SIGHUP). It returns
// at once if Run is not running.
func (d *Daemon) Reload(ctx context.Context) {
	d.post(ctx, reload{})
}

func (d *Daemon) post(ctx context.Context, m message) {
	select {
	case d.inbox <- m:
	case <-ctx.Done():
	}
}

// Run starts every part and serves until ctx ends (then nil) or a part
// fails (then its error, after the others have stopped).
func (d *Daemon) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	post := func(m message) { d.post(ctx, m) }
	d.recv = &receiverPart{opts: d.receiverOptions(), wd: d.wd, log: d.log, g: g, ctx: ctx, post: post}
	if d.cfg.MPRIS != mpris.BusOff {
		d.mpris = &mprisPart{bus: d.cfg.MPRIS, deviceID: d.deviceID, identity: mprisIdentity(d.cfg.Name),
			log: d.log.With("component", "mpris"), g: g, ctx: ctx, post: post}
	}
	g.Go(func() error { return d.wd.Run(ctx) })
	g.Go(func() error { return d.disc.Run(ctx) })
	g.Go(func() error { return d.metrics.Run(ctx) })
	g.Go(func() error { return d.events.Run(ctx) })
	if d.embedded != nil {
		g.Go(func() error { return d.embedded.Run(ctx) })
	}
	g.Go(func() error { return d.control(ctx) })
	err := g.Wait()
	if d.audio != nil {
		if cerr := d.audio.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	return err
}

// receiverOptions is the template every receiver run starts from.
func (d *Daemon) receiverOptions() receiver.Options {
	c := d.cfg
	o := receiver.Options{StateDir: c.StateDir, Name: speakerName(c.Name), Volume: c.Volume, Logger: d.log,
		OnStatus: func(s string) { _ = d.rt.Notify.Status(s) }, Metrics: d.metrics.receiver, AutoPlay: c.AutoPlay,
		OnEvent: d.events.Publish}
	if d.audio != nil {
		o.Engine = d.audio.Engine()
	}
	return o
}

// control is the goroutine that owns the configuration and the
// credentials (see the package comment).
func (d *Daemon) control(ctx context.Context) error {
	var cur credentials // the broker the parts use now; url "" while there is none
	var embeddedReady <-chan struct{}
	switch {
	case d.initial.url != "":
		if err := d.join(&cur, d.initial); err != nil {
			return err
		}
		_ = d.rt.Notify.Ready()
	case d.embedded != nil:
		embeddedReady = d.embedded.Ready()
	default:
		d.waitForPairing()
	}
	for {
		select {
		case <-ctx.Done():
			_ = d.rt.Notify.Stopping()
			return nil
		case <-embeddedReady:
			embeddedReady = nil
			tokPath := filepath.Join(d.cfg.StateDir, "owner.token")
			d.log.Info("embedded broker ready", "url", d.embedded.URL(), "token_file", tokPath)
			fmt.Fprintf(d.rt.Stderr, "roomcast broker: %s  (token in %s)\n", d.embedded.URL(), tokPath)
			if err := d.join(&cur, credentials{url: d.embedded.LocalURL(), token: d.embedded.OwnerToken(), from: fromEmbedded}); err != nil {
				return err
			}
			_ = d.rt.Notify.Ready()
		case c := <-d.paired:
			d.log.Info("paired with a broker: joining it", "broker", c.url)
			if err := d.join(&cur, c); err != nil {
				return err
			}
		case m := <-d.inbox:
			if err := d.handle(ctx, &cur, m); err != nil {
				return err
			}
		}
	}
}

func (d *Daemon) handle(ctx context.Context, cur *credentials, m message) error {
	switch m := m.(type) {
	case reload:
		d.reload()
	case tokenRefused:
		return d.refused(ctx, cur, m)
	default:
		panic(fmt.Sprintf("speaker: unhandled message %T", m))
	}
	return nil
}

// join hands c to every part that talks to the broker.
func (d *Daemon) join(cur *credentials, c credentials) error {
	*cur = c
	d.metrics.SetBroker(c.url, c.token)
	if d.audio != nil {
		d.audio.SetBroker(c.url, c.token)
	}
	if err := d.recv.SetBroker(c.url, c.token); err != nil {
		return err
	}
	if d.mpris != nil {
		if err := d.mpris.SetBroker(c.url, c.token); err != nil {
			return err
		}
	}
	return nil
}

func (d *Daemon) waitForPairing() {
	d.log.Info("waiting to be paired", "listen", d.disc.Addr().String())
	_ = d.rt.Notify.Status("Waiting for pairing")
	_ = d.rt.Notify.Ready()
}

// refused handles a token the broker no longer accepts. The embedded
// broker's owner gets a new owner token at once; any other speaker
// forgets the dead credentials (and its pairing, if they came from one)
// and waits to be paired again, instead of exiting only to be refused
// again after systemd restarts it.
func (d *Daemon) refused(ctx context.Context, cur *credentials, m tokenRefused) error {
	if m.mpris != nil {
		d.mpris.stopped(m.mpris)
		if m.token != cur.token && cur.url != "" { // a stale refusal: MPRIS joins the current broker
			return d.mpris.SetBroker(cur.url, cur.token)
		}
	}
	if m.token != cur.token || cur.url == "" {
		return nil // already handled (the receiver and MPRIS both report it)
	}
	if cur.from == fromEmbedded {
		tok, err := d.embedded.RenewOwnerToken(ctx)
		if err != nil {
			return err
		}
		d.log.Warn("the embedded broker refused the owner token: a new one is in owner.token", "part", m.part)
		return d.join(cur, credentials{url: cur.url, token: tok, from: fromEmbedded})
	}
	d.log.Warn("the broker refused this speaker's token (revoked?): waiting to be paired again", "broker", cur.url, "err", m.err)
	if cur.from == fromPairing {
		if err := d.disc.forget(ctx); err != nil {
			return err
		}
	}
	if err := d.join(cur, credentials{}); err != nil {
		return err
	}
	d.waitForPairing()
	return nil
}

// reload re-reads the configuration and applies what can change while
// running; a configuration with any error is refused as a whole.
func (d *Daemon) reload() {
	_ = d.rt.Notify.Reloading()
	defer func() { _ = d.rt.Notify.Ready() }()
	if d.rt.Reload == nil {
		return
	}
	nc, err := d.rt.Reload()
	if err != nil {
		d.log.Error("reload: config rejected, keeping the running one", "err", err)
		return
	}
	d.rt.Level.Set(nc.Level)
	if nc.Name != d.cfg.Name {
		d.cfg.Name = nc.Name
		d.disc.SetName(speakerName(nc.Name))
		d.recv.Apply(nc)
		if d.mpris != nil {
			d.mpris.Apply(nc)
		}
	}
	if d.embedded != nil {
		d.embedded.Rescan()
	}
	if d.audio != nil {
		d.audio.Apply(nc)
	}
	d.cfg.Level, d.cfg.Gain, d.cfg.Crossfade, d.cfg.VolumeCurve = nc.Level, nc.Gain, nc.Crossfade, nc.VolumeCurve
	d.log.Info("reloaded")
}

// usageError is bad input in the configuration (exit 2: config.IsUsage).
type usageError struct{ error }

func (usageError) Usage() {}

// forget drops the pairing credentials (their token was refused): the
// speaker is unpaired again, on its info endpoint and in its mDNS TXT.
func (d *speakerDiscovery) forget(ctx context.Context) error {
	if err := d.Pairing.Reset(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if d.adv != nil {
		d.adv.SetPaired(false)
	}
	return nil
}

// Addr is where the info/pairing endpoint listens.
func (d *speakerDiscovery) Addr() net.Addr { return d.ln.Addr() }

// ResetPairing is `roomcastd reset-pairing`: the owner's local way to
// make a paired speaker pairable again.
func ResetPairing(stateDir string, stdout io.Writer) error { return resetPairing(stateDir, stdout) }
