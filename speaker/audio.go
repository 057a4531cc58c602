package speaker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/roomcast/roomcast/audio/fetch"
	"github.com/roomcast/roomcast/audio/output"
	"github.com/roomcast/roomcast/audio/player"
	"github.com/roomcast/roomcast/playback"
	"github.com/roomcast/roomcast/systemd"
)

// audioPart is the audio pipeline (package audio/player) with its media
// source. SetBroker and Apply are called by the control goroutine; the
// player runs its own goroutines and its setters are safe from any.
type audioPart struct {
	pl  *player.Player
	src *brokerSource
}

// newAudio builds the pipeline: broker media through the disk cache,
// normalization, the output of cfg.Output. With --output auto and no
// working sound device it plays to the null output, and says so. Its
// counters join reg.
func newAudio(cfg Config, wd *systemd.Watchdog, reg prometheus.Registerer, log *slog.Logger) (*audioPart, error) {
	spec, err := output.ParseSpec(cfg.Output)
	if err != nil {
		return nil, fmt.Errorf("--output: %w", err)
	}
	cacheDir := os.Getenv("CACHE_DIRECTORY") // systemd's CacheDirectory=
	if cacheDir == "" {
		cacheDir = filepath.Join(cfg.StateDir, "cache")
	}
	cache, err := fetch.OpenCache(filepath.Join(cacheDir, "media"), cfg.CacheBytes)
	if err != nil {
		return nil, err
	}
	src := &brokerSource{cache: cache, log: log}
	// A 100 ms ring: a pause or a transfer is heard within about 100 ms
	// plus the device's own buffer.
	popts := player.Options{Source: src, Output: spec, Normalize: cfg.Gain, Logger: log.With("component", "audio"),
		Heartbeat: wd.Register("audio", 90*time.Second), RingMS: 100, Crossfade: cfg.Crossfade, Prefetch: cfg.Prefetch,
		PeriodMS: cfg.PeriodMS, Periods: cfg.Periods, VolumeCurve: cfg.VolumeCurve}
	p, err := player.New(popts)
	if err != nil && spec.Kind == output.KindAuto {
		log.Warn("no sound device could be opened: playing to the null output", "err", err)
		if popts.Output, err = output.ParseSpec("null"); err == nil {
			p, err = player.New(popts)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("audio output %s: %w", cfg.Output, err)
	}
	registerAudioMetrics(reg, p)
	return &audioPart{pl: p, src: src}, nil
}

// Engine is what the receiver plays through.
func (a *audioPart) Engine() playback.Engine { return a.pl }

// SetBroker makes media come from another broker; the next track opened
// uses it ("" while the speaker has none).
func (a *audioPart) SetBroker(url, token string) { a.src.set(url, token) }

// Apply takes the reloadable audio settings: normalization, crossfade and
// the volume curve (for the tracks that follow; the curve is ramped).
func (a *audioPart) Apply(cfg Config) {
	a.pl.SetNormalize(cfg.Gain)
	a.pl.SetCrossfade(cfg.Crossfade)
	a.pl.SetVolumeCurve(cfg.VolumeCurve)
}

// Close stops the pipeline; call it after the receiver has stopped.
func (a *audioPart) Close() error { return a.pl.Close() }

// brokerSource opens media from whichever broker the speaker belongs to
// now: a (re-)pairing swaps the fetcher without stopping the player. The
// player's goroutine calls Open; set is called by the control goroutine.
type brokerSource struct {
	cache *fetch.Cache
	log   *slog.Logger
	cur   atomic.Pointer[fetch.Fetcher] // nil: no broker
}

func (s *brokerSource) set(url, token string) {
	if url == "" {
		s.cur.Store(nil)
		return
	}
	s.cur.Store(&fetch.Fetcher{Base: url, Token: token, Cache: s.cache, Log: s.log})
}

func (s *brokerSource) Open(ctx context.Context, id string) (io.ReadSeekCloser, error) {
	f := s.cur.Load()
	if f == nil {
		return nil, errors.New("not joined to a broker")
	}
	fl, err := f.Open(ctx, id)
	if err != nil {
		return nil, err
	}
	return fl, nil
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
