// Command roomcastd is the roomcast receiver daemon. With --broker it joins
// that broker; without, it runs an embedded broker in the same process and
// joins it over the same websocket any other speaker uses.
package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/roomcast/roomcast/audio/dsp"
	"github.com/roomcast/roomcast/audio/player"
	"github.com/roomcast/roomcast/broker"
	"github.com/roomcast/roomcast/brokerserver"
	"github.com/roomcast/roomcast/buildinfo"
	"github.com/roomcast/roomcast/config"
	"github.com/roomcast/roomcast/events"
	"github.com/roomcast/roomcast/mpris"
	"github.com/roomcast/roomcast/playback"
	"github.com/roomcast/roomcast/protocol"
	"github.com/roomcast/roomcast/receiver"
	"github.com/roomcast/roomcast/systemd"
)

const usage = `usage: roomcastd [options]

Joins the broker given by --broker, or, with none, runs an embedded broker
on --listen and joins it. SIGHUP re-reads the config file and applies,
without stopping playback: name (pickers, mDNS, MPRIS), normalization,
volume curve, crossfade, log level.

options (also ROOMCAST_<NAME> environment variables and TOML keys in --config):
`

// usageError is bad input: exit 2.
type usageError struct{ error }

func (usageError) Usage() {}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "roomcastd:", err)
		if config.IsUsage(err) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// options are roomcastd's settings after flags, environment and file.
type options struct {
	config, name, broker, token, tokenFile, listen, stateDir string
	metricsListen, music                                     string
	mdns, pairListen, pin                                    string
	waitPairing                                              bool
	mprisBus                                                 mpris.Bus
	autoPlay                                                 []string
	eventsPath, onEvent                                      string
	output, normalize                                        string
	normalizeTarget                                          float64
	crossfade, prefetch                                      time.Duration
	volumeCurve                                              dsp.VolumeCurve
	periodMS, periods                                        int
	cacheBytes                                               int64
	listOutputs                                              bool
	rescanEvery                                              time.Duration
	volume                                                   int
	level                                                    slog.Level
	heartbeat, dropAfter                                     time.Duration
	version                                                  bool
}

// parseOptions applies flags > ROOMCAST_* > config file > defaults. It is
// called again on SIGHUP with the same arguments.
func parseOptions(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("roomcastd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	fs.StringVar(&o.config, "config", "", "TOML config file; flags override it")
	fs.StringVar(&o.name, "name", "", "name shown in pickers (default: host name)")
	config.URLVar(fs, &o.broker, "broker", "", "join the broker at `URL` (http://host:port or https://...); none: run the embedded broker", "http", "https")
	fs.StringVar(&o.token, "token", "", "credential for the broker")
	fs.StringVar(&o.tokenFile, "token-file", "", "file holding the credential for the broker")
	fs.StringVar(&o.listen, "listen", ":4100", "embedded broker / API address")
	fs.StringVar(&o.stateDir, "state-dir", config.DefaultStateDir(), "device id, credentials, volume, cache")
	fs.IntVar(&o.volume, "volume", 50, "initial volume 0-100 on first start; later starts use the last volume")
	fs.StringVar(&o.metricsListen, "metrics-listen", "", "serve /metrics without a token on this address")
	fs.StringVar(&o.music, "music", "", "embedded broker: music folder to index and serve")
	fs.DurationVar(&o.rescanEvery, "rescan-interval", 0, "embedded broker: rescan the music folder this often (0: at start and on SIGHUP)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	fs.DurationVar(&o.heartbeat, "heartbeat", 8*time.Second, "embedded broker: interval of pings to clients")
	fs.DurationVar(&o.dropAfter, "drop-after", 20*time.Second, "embedded broker: drop a client silent this long")
	fs.StringVar(&o.mdns, "mdns", "", "interfaces to advertise on (comma-separated); empty: every up multicast interface; off: none")
	fs.StringVar(&o.pairListen, "pair-listen", ":4101", "speaker info and pairing endpoint (advertised over mDNS)")
	fs.StringVar(&o.pin, "pin", "", "setup PIN a picker must give to pair this speaker")
	fs.BoolVar(&o.waitPairing, "wait-for-pairing", false, "with no --broker and no pairing yet: wait to be paired instead of running the embedded broker")
	play := fs.String("play", "", "once joined, play these URIs here if no device is active (an album URI, or track URIs, comma-separated)")
	fs.StringVar(&o.output, "output", "auto", "auto, alsa[:DEVICE], pulse[:DEVICE], null, wav:PATH, or none (no audio: keep time silently)")
	fs.BoolVar(&o.listOutputs, "list-outputs", false, "print the output devices it can open, and exit")
	fs.StringVar(&o.normalize, "normalize", "auto", "loudness normalization: auto (album gain in album context), track, album or off")
	config.FloatVar(fs, &o.normalizeTarget, "normalize-target", -14, "normalization target in `LUFS` (-70 to 0)")
	fs.DurationVar(&o.prefetch, "prefetch", 10*time.Second, "open and start decoding the next track this long before the current one ends")
	fs.IntVar(&o.periodMS, "period-ms", 20, "audio device period in ms (latency vs. wake-ups; Pi ALSA drivers want ≥ 10)")
	fs.IntVar(&o.periods, "periods", 4, "audio device periods in its buffer (at least 2: fewer underrun on ALSA)")
	fs.DurationVar(&o.crossfade, "crossfade", 0, "equal-power crossfade between tracks, e.g. 3s (0: gapless, the default)")
	curve := fs.String("volume-curve", "log", "volume percentage to gain: log (0.6 dB a step), log:DB (range 20-100 dB), linear, or fixed (always full; for an amplifier's own knob)")
	fs.Int64Var(&o.cacheBytes, "cache-size", 1<<30, "media cache size in bytes (0: no cache)")
	eventsSpec := fs.String("events", "", "stream events as JSON lines to clients of unix:PATH")
	fs.StringVar(&o.onEvent, "onevent", "", "run this shell command for each event (the event is in ROOMCAST_* variables)")
	mprisBus := fs.String("mpris", "session", "publish MPRIS (media keys, playerctl) on the session or system D-Bus, or off")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	if err := config.ParseArgs(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError{err}
	}
	if fs.NArg() > 0 {
		return nil, usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if o.version || o.listOutputs {
		return o, nil
	}
	if err := config.Apply(fs, o.config, false, "config", "version"); err != nil {
		return nil, usageError{err}
	}
	var err error
	if *play != "" {
		o.autoPlay = strings.Split(*play, ",")
		for _, u := range o.autoPlay {
			if !strings.HasPrefix(u, protocol.URIScheme+":") {
				return nil, usageError{fmt.Errorf("--play %q: want roomcast:album:<id> or roomcast:track:<id> URIs, comma-separated", u)}
			}
		}
	}
	if o.eventsPath, err = events.ParseSpec(*eventsSpec); err != nil {
		return nil, usageError{err}
	}
	if o.mprisBus, err = mpris.ParseBus(*mprisBus); err != nil {
		return nil, usageError{fmt.Errorf("--mpris: %w", err)}
	}
	if o.normalizeTarget < -70 || o.normalizeTarget > 0 {
		return nil, usageError{fmt.Errorf("--normalize-target %g: must be between -70 and 0 LUFS", o.normalizeTarget)}
	}
	if o.periodMS < 1 || o.periodMS > 500 || o.periods < 2 || o.periods > 32 {
		return nil, usageError{fmt.Errorf("--period-ms %d / --periods %d: want 1-500 ms and 2-32 periods", o.periodMS, o.periods)}
	}
	if o.prefetch < time.Second || o.prefetch > 5*time.Minute {
		return nil, usageError{fmt.Errorf("--prefetch %s: want 1s to 5m", o.prefetch)}
	}
	if o.crossfade < 0 || o.crossfade > 30*time.Second {
		return nil, usageError{fmt.Errorf("--crossfade %s: must be 0 to 30s", o.crossfade)}
	}
	if o.volumeCurve, err = dsp.ParseVolumeCurve(*curve); err != nil {
		return nil, usageError{fmt.Errorf("--volume-curve: %w", err)}
	}
	if o.cacheBytes < 0 {
		return nil, usageError{fmt.Errorf("--cache-size %d: must be 0 or more", o.cacheBytes)}
	}
	if len(o.name) > protocol.MaxNameLen || strings.ContainsFunc(o.name, unicode.IsControl) {
		return nil, usageError{fmt.Errorf("--name: at most %d bytes and no control characters", protocol.MaxNameLen)}
	}
	if o.volume < 0 || o.volume > 100 {
		return nil, usageError{fmt.Errorf("--volume %d: must be 0-100", o.volume)}
	}
	if o.music != "" && o.broker != "" {
		return nil, usageError{errors.New("--music serves a library from the embedded broker: it cannot be combined with --broker")}
	}
	if o.heartbeat <= 0 || o.dropAfter <= o.heartbeat {
		return nil, usageError{fmt.Errorf("--drop-after (%s) must be longer than --heartbeat (%s)", o.dropAfter, o.heartbeat)}
	}
	if err := o.level.UnmarshalText([]byte(*logLevel)); err != nil {
		return nil, usageError{fmt.Errorf("--log-level: %w", err)}
	}
	return o, nil
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "reset-pairing" {
		rs := flag.NewFlagSet("roomcastd reset-pairing", flag.ContinueOnError)
		rs.SetOutput(stderr)
		sd := rs.String("state-dir", config.DefaultStateDir(), "state directory")
		if err := rs.Parse(args[1:]); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return usageError{err}
		}
		if err := config.Apply(rs, "", false); err != nil {
			return usageError{err}
		}
		return resetPairing(*sd, stdout)
	}
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	if o.version {
		fmt.Fprintln(stdout, buildinfo.String("roomcastd"))
		return nil
	}
	if o.listOutputs {
		return listOutputs(stdout, stderr)
	}
	var level slog.LevelVar
	level.Set(o.level)
	log := slog.New(systemd.NewHandler(os.Stderr, &systemd.HandlerOptions{Level: &level}))
	notify := systemd.NotifierFromEnv()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if err := os.MkdirAll(o.stateDir, 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	tok := o.token
	if tok == "" && o.tokenFile != "" {
		b, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return fmt.Errorf("--token-file: %w", err)
		}
		tok = strings.TrimSpace(string(b))
	}

	wd := systemd.NewWatchdog(notify, log)
	errc := make(chan error, 10)
	running := 0
	running++
	go func() { errc <- wd.Run(ctx) }()

	// Discovery: the info/pairing endpoint, advertised over mDNS. A
	// (re-)pairing hands new broker credentials to the receiver.
	repaired := make(chan credentials, 1)
	var mp atomic.Pointer[mpris.Service]
	var mediaSrc atomic.Pointer[brokerSource]
	var deviceTok atomic.Pointer[string] // the broker credential; guards the pairing port's /metrics
	sd, err := newSpeakerDiscovery(o.stateDir, o.name, o.mdns, o.pairListen, o.pin, log, func(u, t string) {
		select { // keep only the newest credentials
		case <-repaired:
		default:
		}
		repaired <- credentials{u, t}
		deviceTok.Store(&t)
		if m := mediaSrc.Load(); m != nil {
			m.set(u, t)
		}
		if m := mp.Load(); m != nil {
			m.SetBroker(u, t)
		}
	})
	if err != nil {
		return err
	}
	running++
	go func() { errc <- sd.Run(ctx) }()

	url := o.broker
	if url == "" && tok == "" {
		if u, t, ok := sd.Pairing.Credentials(); ok {
			url, tok = u, t
			log.Info("using the broker this speaker was paired with", "broker", url)
		}
	}
	if url == "" && o.waitPairing {
		log.Info("waiting to be paired", "listen", o.pairListen)
		_ = notify.Status("Waiting for pairing")
		_ = notify.Ready()
		select {
		case c := <-repaired:
			url, tok = c.url, c.token
		case <-ctx.Done():
		}
	}
	var embedded *brokerserver.Server
	if url == "" {
		srv, err := brokerserver.New(brokerserver.Options{Listen: o.listen, StateDir: o.stateDir, MetricsListen: o.metricsListen,
			Music: o.music, RescanInterval: o.rescanEvery, MDNS: o.mdns, Heartbeat: o.heartbeat, DropAfter: o.dropAfter,
			OwnerTokenFile: filepath.Join(o.stateDir, "owner.token"), Logger: log})
		if err != nil {
			return err
		}
		embedded = srv
		running++
		go func() { errc <- srv.Run(ctx) }()
		select {
		case <-srv.Ready():
		case err := <-errc:
			return err
		}
		url, tok = srv.LocalURL(), srv.OwnerToken()
		tokPath := filepath.Join(o.stateDir, "owner.token")
		log.Info("embedded broker ready", "url", srv.URL(), "token_file", tokPath)
		fmt.Fprintf(stderr, "roomcast broker: %s  (token in %s)\n", srv.URL(), tokPath)
	} else if tok == "" {
		return usageError{errors.New("--broker needs --token or --token-file")}
	}

	// Health and metrics. With the embedded broker the receiver's metrics
	// join the broker's /metrics; a speaker joining a remote broker serves
	// its own on the pairing port (token: its broker credential) and on
	// --metrics-listen (no token).
	reg := prometheus.NewRegistry()
	if embedded != nil {
		reg = embedded.Broker().Registry()
	} else {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	metrics := receiver.NewMetrics(reg)
	sd.Mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if ok, stuck := wd.Healthy(); !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]any{"status": "stuck", "loops": stuck})
			return
		}
		_, _ = io.WriteString(w, `{"status":"ok"}`+"\n")
	})
	promh := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	deviceTok.CompareAndSwap(nil, &tok) // unless a pairing already stored a newer one
	sd.Mux.Handle("GET /metrics", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		want := *deviceTok.Load()
		if want == "" || subtle.ConstantTimeCompare([]byte(broker.TokenFromRequest(r)), []byte(want)) != 1 {
			http.Error(w, "unauthorized: the speaker's broker token is required", http.StatusUnauthorized)
			return
		}
		promh.ServeHTTP(w, r)
	}))
	if embedded == nil && o.metricsListen != "" {
		mln, err := net.Listen("tcp", o.metricsListen)
		if err != nil {
			return fmt.Errorf("--metrics-listen: %w", err)
		}
		mm := http.NewServeMux()
		mm.Handle("GET /metrics", promh)
		msrv := &http.Server{Handler: mm, ReadHeaderTimeout: 10 * time.Second}
		go func() { <-ctx.Done(); msrv.Close() }()
		go func() { _ = msrv.Serve(mln) }()
	}

	// Events for home automation: a socket stream and/or a hook.
	var sinks []events.Sink
	if o.eventsPath != "" {
		sinks = append(sinks, events.NewSocket(o.eventsPath, log))
	}
	if o.onEvent != "" {
		sinks = append(sinks, events.NewHook(o.onEvent, log))
	}
	for _, sk := range sinks {
		running++
		go func() { errc <- sk.Run(ctx) }()
	}
	// The audio pipeline; --output none keeps the silent clock engine
	// (control and automation setups without audio).
	var engine playback.Engine
	var audio *player.Player
	if o.output != "none" {
		pl, media, err := newPlayer(o, wd.Register("audio", 90*time.Second), log)
		if err != nil {
			return err
		}
		defer pl.Close()
		media.set(url, tok)
		mediaSrc.Store(media)
		engine, audio = pl, pl
		registerAudioMetrics(reg, pl)
	}
	ropts := receiver.Options{Broker: url, Token: tok, StateDir: o.stateDir, Name: speakerName(o.name), Volume: o.volume, Engine: engine,
		Logger: log, OnStatus: func(s string) { _ = notify.Status(s) },
		Heartbeat: wd.Register("control", 10*time.Second), Metrics: metrics, AutoPlay: o.autoPlay,
		OnEvent: func(e events.Event) {
			for _, sk := range sinks {
				sk.Publish(e)
			}
		}}
	var current atomic.Pointer[receiver.Receiver]
	var name atomic.Pointer[string] // as last (re)loaded; a receiver started after a re-pairing takes it
	name.Store(&ropts.Name)
	running++
	go func() { errc <- superviseReceiver(ctx, ropts, repaired, &current, &name, log) }()

	// MPRIS shows and controls the user's whole session, through the broker.
	if o.mprisBus != mpris.BusOff && url != "" {
		id, err := receiver.LoadOrCreateID(o.stateDir)
		if err != nil {
			return err
		}
		m, err := mpris.New(mpris.Options{Bus: o.mprisBus, Broker: url, Token: tok, DeviceID: id,
			Identity: mprisIdentity(o.name), Logger: log.With("component", "mpris")})
		if err != nil {
			return err
		}
		mp.Store(m)
		running++
		go func() { errc <- m.Run(ctx) }()
	}
	_ = notify.Ready()

	var firstErr error
	for running > 0 {
		select {
		case err := <-errc:
			running--
			if err != nil && firstErr == nil {
				firstErr = err
				stop() // one part failed: stop the others
			}
		case <-hup:
			_ = notify.Reloading()
			if no, err := parseOptions(args, stderr); err != nil {
				log.Error("reload: config rejected, keeping the running one", "err", err)
			} else {
				level.Set(no.level)
				if no.name != o.name {
					n := speakerName(no.name)
					name.Store(&n)
					if r := current.Load(); r != nil {
						r.SetName(n)
					}
					sd.SetName(n)
					if m := mp.Load(); m != nil {
						m.SetIdentity(mprisIdentity(no.name))
					}
					o.name = no.name
				}
				if embedded != nil {
					embedded.Rescan()
				}
				if audio != nil {
					if policy, err := gainPolicy(no); err == nil {
						audio.SetNormalize(policy)
					}
					audio.SetCrossfade(no.crossfade)
					audio.SetVolumeCurve(no.volumeCurve)
				}
				log.Info("reloaded", "config", no.config)
			}
			_ = notify.Ready()
		}
	}
	_ = notify.Stopping()
	return firstErr
}

// credentials are a broker URL and token from pairing.
type credentials struct{ url, token string }

// mprisIdentity is the MPRIS Identity of a speaker named name.
func mprisIdentity(name string) string { return "roomcast (" + speakerName(name) + ")" }

// superviseReceiver runs the receiver and starts it again with new
// credentials whenever the speaker is (re-)paired. current always holds
// the running receiver (for SIGHUP renames); name is the current name.
func superviseReceiver(ctx context.Context, opts receiver.Options, repaired <-chan credentials,
	current *atomic.Pointer[receiver.Receiver], name *atomic.Pointer[string], log *slog.Logger) error {
	for {
		if ctx.Err() != nil {
			return nil
		}
		opts.Name = *name.Load()
		r, err := receiver.New(opts)
		if err != nil {
			return err
		}
		current.Store(r)
		log.Info("receiver starting", "device", r.DeviceID(), "broker", opts.Broker)
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- r.Run(rctx) }()
		select {
		case c := <-repaired:
			cancel()
			<-done
			opts.Broker, opts.Token = c.url, c.token
			log.Info("paired with a broker: joining it", "broker", c.url)
		case err := <-done:
			cancel()
			return err
		}
	}
}
