package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"text/tabwriter"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/roomcast/roomcast/audio/dsp"
	"github.com/roomcast/roomcast/audio/fetch"
	"github.com/roomcast/roomcast/audio/output"
	"github.com/roomcast/roomcast/audio/player"
)

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

// brokerSource opens media from whichever broker the speaker belongs to
// now: a (re-)pairing swaps the fetcher without stopping the player.
type brokerSource struct {
	cache *fetch.Cache
	log   *slog.Logger
	cur   atomic.Pointer[fetch.Fetcher]
}

func (s *brokerSource) set(url, token string) {
	s.cur.Store(&fetch.Fetcher{Base: url, Token: token, Cache: s.cache, Log: s.log})
}

func (s *brokerSource) Open(ctx context.Context, id string) (io.ReadSeekCloser, error) {
	f := s.cur.Load()
	if f == nil {
		return nil, errors.New("not joined to a broker yet")
	}
	fl, err := f.Open(ctx, id)
	if err != nil {
		return nil, err
	}
	return fl, nil
}

// newPlayer builds the audio pipeline: broker media through the disk
// cache, normalization, the output of --output. With --output auto and no
// working sound device it plays to the null output, and says so.
func newPlayer(o *options, hb interface{ Beat() }, log *slog.Logger) (*player.Player, *brokerSource, error) {
	spec, err := output.ParseSpec(o.output)
	if err != nil {
		return nil, nil, usageError{fmt.Errorf("--output: %w", err)}
	}
	policy, err := gainPolicy(o)
	if err != nil {
		return nil, nil, err
	}
	cacheDir := os.Getenv("CACHE_DIRECTORY") // systemd's CacheDirectory=
	if cacheDir == "" {
		cacheDir = filepath.Join(o.stateDir, "cache")
	}
	cache, err := fetch.OpenCache(filepath.Join(cacheDir, "media"), o.cacheBytes)
	if err != nil {
		return nil, nil, err
	}
	src := &brokerSource{cache: cache, log: log}
	// A 100 ms ring: a pause or a transfer is heard within about 100 ms
	// plus the device's own buffer.
	popts := player.Options{Source: src, Output: spec, Normalize: policy, Logger: log.With("component", "audio"), Heartbeat: hb, RingMS: 100,
		Crossfade: o.crossfade, Prefetch: o.prefetch, PeriodMS: o.periodMS, Periods: o.periods, VolumeCurve: o.volumeCurve}
	p, err := player.New(popts)
	if err != nil && o.output == "auto" {
		log.Warn("no sound device could be opened: playing to the null output", "err", err)
		if popts.Output, err = output.ParseSpec("null"); err == nil {
			p, err = player.New(popts)
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("audio output %s: %w", o.output, err)
	}
	return p, src, nil
}

// gainPolicy is the loudness policy of --normalize and --normalize-target.
func gainPolicy(o *options) (dsp.GainPolicy, error) {
	mode, err := dsp.ParseMode(o.normalize)
	if err != nil {
		return dsp.GainPolicy{}, usageError{fmt.Errorf("--normalize: %w", err)}
	}
	policy := dsp.DefaultGainPolicy()
	policy.Mode, policy.TargetLUFS = mode, o.normalizeTarget
	return policy, nil
}

// registerAudioMetrics exports the output's counters.
func registerAudioMetrics(reg prometheus.Registerer, p *player.Player) {
	stat := func(f func(output.Stats) int64) func() float64 {
		return func() float64 {
			st, ok := p.OutputStats()
			if !ok {
				return 0
			}
			return float64(f(st))
		}
	}
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "roomcast_audio_underruns_total",
			Help: "Runs of silence the output inserted while playing (the pipeline was late)."},
			stat(func(s output.Stats) int64 { return s.Underruns.Events })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "roomcast_audio_underrun_frames_total",
			Help: "Frames of silence inserted on underrun."},
			stat(func(s output.Stats) int64 { return s.Underruns.Frames })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "roomcast_audio_buffered_frames",
			Help: "Frames waiting in the output's ring buffer (its fill)."},
			stat(func(s output.Stats) int64 { return s.Buffered })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "roomcast_audio_device_losses_total",
			Help: "Output devices lost (unplugged, server restarted); each is reopened."},
			stat(func(s output.Stats) int64 { return s.Losses })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "roomcast_audio_decode_seconds_total",
			Help: "Time spent decoding (including waits for media bytes)."},
			func() float64 { return player.DecodeTime().Seconds() }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "roomcast_audio_played_frames_total",
			Help: "Frames the device has played (no silence)."},
			stat(func(s output.Stats) int64 { return s.Played })),
	)
}
