package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/roomcast/roomcast/audio/dsp"
	"github.com/roomcast/roomcast/audio/output"
	"github.com/roomcast/roomcast/config"
	"github.com/roomcast/roomcast/discovery"
	"github.com/roomcast/roomcast/events"
	"github.com/roomcast/roomcast/mpris"
	"github.com/roomcast/roomcast/protocol"
	"github.com/roomcast/roomcast/speaker"
)

const usage = `usage: roomcastd [options]
       roomcastd reset-pairing [--state-dir DIR]

Joins the broker given by --broker, or, with none, runs an embedded broker
on --listen and joins it. SIGHUP re-reads the config file and applies,
without stopping playback: name (pickers, mDNS, MPRIS), normalization,
volume curve, crossfade, log level.

options (also ROOMCAST_<NAME> environment variables and TOML keys in --config):
`

// defaultPairListen is --pair-listen's default; when it is taken, another
// free port is used (see speaker.Config.PairListenIsDefault).
const defaultPairListen = ":4101"

// options are roomcastd's settings after flags, environment and file: the
// daemon's Config and what only the command line needs.
type options struct {
	speaker.Config
	config, tokenFile    string
	version, listOutputs bool
}

// parseOptions applies flags > ROOMCAST_* > config file > defaults, and
// checks every value (bad input is a usageError). It is called again on
// SIGHUP with the same arguments.
func parseOptions(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("roomcastd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	raw := defineFlags(fs, o)
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
	given := map[string]bool{} // on the command line, in ROOMCAST_* or in the file
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	o.PairListenIsDefault = !given["pair-listen"]
	if err := o.check(raw); err != nil {
		return nil, usageError{err}
	}
	return o, nil
}

// rawFlags are the flags parsed into Config by check.
type rawFlags struct {
	logLevel, play, events, mpris, normalize, curve *string
	normalizeTarget                                 *float64
}

func defineFlags(fs *flag.FlagSet, o *options) rawFlags {
	var r rawFlags
	var target float64
	r.normalizeTarget = &target
	fs.StringVar(&o.config, "config", "", "TOML config file; flags override it")
	fs.StringVar(&o.Name, "name", "", "name shown in pickers (default: host name)")
	config.URLVar(fs, &o.Broker, "broker", "", "join the broker at `URL` (http://host:port or https://...); none: run the embedded broker", "http", "https")
	fs.StringVar(&o.Token, "token", "", "credential for the broker")
	fs.StringVar(&o.tokenFile, "token-file", "", "file holding the credential for the broker")
	fs.StringVar(&o.Listen, "listen", ":4100", "embedded broker / API address")
	fs.StringVar(&o.StateDir, "state-dir", config.DefaultStateDir(), "device id, credentials, volume, cache")
	fs.IntVar(&o.Volume, "volume", 50, "initial volume 0-100 on first start; later starts use the last volume")
	fs.StringVar(&o.MetricsListen, "metrics-listen", "", "serve /metrics without a token on this address")
	fs.StringVar(&o.Music, "music", "", "embedded broker: music folder to index and serve")
	fs.DurationVar(&o.RescanInterval, "rescan-interval", 0, "embedded broker: rescan the music folder this often (0: at start and on SIGHUP)")
	r.logLevel = fs.String("log-level", "info", "debug, info, warn or error")
	fs.DurationVar(&o.Heartbeat, "heartbeat", 8*time.Second, "embedded broker: interval of pings to clients")
	fs.DurationVar(&o.DropAfter, "drop-after", 20*time.Second, "embedded broker: drop a client silent this long")
	fs.StringVar(&o.MDNS, "mdns", "", "interfaces to advertise on (comma-separated); empty: every up multicast interface; off: none")
	fs.StringVar(&o.PairListen, "pair-listen", defaultPairListen, "speaker info and pairing endpoint (advertised over mDNS); when the default is taken, the next free port up to 4110 (else any)")
	fs.StringVar(&o.PIN, "pin", "", "setup PIN a picker must give to pair this speaker")
	fs.BoolVar(&o.WaitForPairing, "wait-for-pairing", false, "with no --broker and no pairing yet: wait to be paired instead of running the embedded broker")
	r.play = fs.String("play", "", "once joined, play these URIs here if no device is active (an album URI, or track URIs, comma-separated)")
	fs.StringVar(&o.Output, "output", "auto", "auto, alsa[:DEVICE], pulse[:DEVICE], null, wav:PATH, or none (no audio: keep time silently)")
	fs.BoolVar(&o.listOutputs, "list-outputs", false, "print the output devices it can open, and exit")
	r.normalize = fs.String("normalize", "auto", "loudness normalization: auto (album gain in album context), track, album or off")
	config.FloatVar(fs, r.normalizeTarget, "normalize-target", -14, "normalization target in `LUFS` (-70 to 0)")
	fs.DurationVar(&o.Prefetch, "prefetch", 10*time.Second, "open and start decoding the next track this long before the current one ends")
	fs.IntVar(&o.PeriodMS, "period-ms", 20, "audio device period in ms (latency vs. wake-ups; Pi ALSA drivers want ≥ 10)")
	fs.IntVar(&o.Periods, "periods", 4, "audio device periods in its buffer (at least 2: fewer underrun on ALSA)")
	fs.DurationVar(&o.Crossfade, "crossfade", 0, "equal-power crossfade between tracks, e.g. 3s (0: gapless, the default)")
	r.curve = fs.String("volume-curve", "log", "volume percentage to gain: log (0.6 dB a step), log:DB (range 20-100 dB), linear, or fixed (always full; for an amplifier's own knob)")
	fs.Int64Var(&o.CacheBytes, "cache-size", 1<<30, "media cache size in bytes (0: no cache)")
	r.events = fs.String("events", "", "stream events as JSON lines to clients of unix:PATH")
	fs.StringVar(&o.OnEvent, "onevent", "", "run this shell command for each event (the event is in ROOMCAST_* variables)")
	r.mpris = fs.String("mpris", "session", "publish MPRIS (media keys, playerctl) on the session or system D-Bus, or off")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	return r
}

// check validates every value and fills the parsed fields of Config.
func (o *options) check(r rawFlags) error {
	var err error
	if *r.play != "" {
		o.AutoPlay = strings.Split(*r.play, ",")
		for _, u := range o.AutoPlay {
			if !strings.HasPrefix(u, protocol.URIScheme+":") {
				return fmt.Errorf("--play %q: want roomcast:album:<id> or roomcast:track:<id> URIs, comma-separated", u)
			}
		}
	}
	if o.EventsPath, err = events.ParseSpec(*r.events); err != nil {
		return err
	}
	if o.MPRIS, err = mpris.ParseBus(*r.mpris); err != nil {
		return fmt.Errorf("--mpris: %w", err)
	}
	mode, err := dsp.ParseMode(*r.normalize)
	if err != nil {
		return fmt.Errorf("--normalize: %w", err)
	}
	o.Gain = dsp.DefaultGainPolicy()
	o.Gain.Mode, o.Gain.TargetLUFS = mode, *r.normalizeTarget
	if t := *r.normalizeTarget; t < -70 || t > 0 {
		return fmt.Errorf("--normalize-target %g: must be between -70 and 0 LUFS", t)
	}
	if o.Output != "none" {
		if _, err := output.ParseSpec(o.Output); err != nil {
			return fmt.Errorf("--output: %w", err)
		}
	}
	if o.PeriodMS < 1 || o.PeriodMS > 500 || o.Periods < 2 || o.Periods > 32 {
		return fmt.Errorf("--period-ms %d / --periods %d: want 1-500 ms and 2-32 periods", o.PeriodMS, o.Periods)
	}
	if o.Prefetch < time.Second || o.Prefetch > 5*time.Minute {
		return fmt.Errorf("--prefetch %s: want 1s to 5m", o.Prefetch)
	}
	if o.Crossfade < 0 || o.Crossfade > 30*time.Second {
		return fmt.Errorf("--crossfade %s: must be 0 to 30s", o.Crossfade)
	}
	if o.VolumeCurve, err = dsp.ParseVolumeCurve(*r.curve); err != nil {
		return fmt.Errorf("--volume-curve: %w", err)
	}
	if o.CacheBytes < 0 {
		return fmt.Errorf("--cache-size %d: must be 0 or more", o.CacheBytes)
	}
	if len(o.Name) > protocol.MaxNameLen || strings.ContainsFunc(o.Name, unicode.IsControl) {
		return fmt.Errorf("--name: at most %d bytes and no control characters", protocol.MaxNameLen)
	}
	if o.Volume < 0 || o.Volume > 100 {
		return fmt.Errorf("--volume %d: must be 0-100", o.Volume)
	}
	if o.Music != "" && o.Broker != "" {
		return errors.New("--music serves a library from the embedded broker: it cannot be combined with --broker")
	}
	if o.Heartbeat <= 0 || o.DropAfter <= o.Heartbeat {
		return fmt.Errorf("--drop-after (%s) must be longer than --heartbeat (%s)", o.DropAfter, o.Heartbeat)
	}
	if _, err := discovery.ParseInterfaces(o.MDNS); err != nil {
		return fmt.Errorf("--mdns: %w", err)
	}
	if err := o.Level.UnmarshalText([]byte(*r.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	return nil
}

// readToken reads --token-file when --token is not given; --broker needs
// one of them.
func (o *options) readToken() error {
	if o.Token == "" && o.tokenFile != "" {
		b, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return fmt.Errorf("--token-file: %w", err)
		}
		o.Token = strings.TrimSpace(string(b))
	}
	if o.Broker != "" && o.Token == "" {
		return usageError{errors.New("--broker needs --token or --token-file")}
	}
	return nil
}

// listOutputs prints the devices --output can open.
func listOutputs(w, notes io.Writer) error {
	devs, err := output.List()
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "OUTPUT\tDEFAULT\tDESCRIPTION")
	for _, d := range devs {
		def := ""
		if d.Default {
			def = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", d.Spec, def, d.Name)
	}
	if ferr := tw.Flush(); ferr != nil {
		return ferr
	}
	// A backend that could not list (no sound server, no card) is said on
	// stderr: the list itself stays usable by scripts.
	if err != nil {
		fmt.Fprintf(notes, "not listed: %v\n", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return nil
}
