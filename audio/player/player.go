package player

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/roomcast/roomcast/audio/dsp"
	"github.com/roomcast/roomcast/audio/output"
	"github.com/roomcast/roomcast/playback"
)

// Defaults of Options.
const (
	DefaultPrefetch = 10 * time.Second
	// DefaultRingMS is the output ring buffer the player asks for: it bounds
	// how late a pause, seek, load or volume change is heard (the fade is
	// queued behind what the ring holds) and how long a stall of the
	// pipeline goroutine the output rides out.
	DefaultRingMS = 200
)

// Fade lengths.
const (
	pauseFade = 20 * time.Millisecond // pause and resume
	jumpFade  = 10 * time.Millisecond // seek and load while playing
)

// chunkFrames is the block size of the pipeline: ~23 ms at 44.1 kHz.
const chunkFrames = 1024

// aheadFrames is how much the opener decodes ahead, so that the join to
// a prefetched track does not wait for its first page.
const aheadFrames = 8192

// ErrClosed is returned by the methods of a closed Player.
var ErrClosed = errors.New("player: closed")

// Source opens media by id (the part of roomcast:track:<id> after the last
// colon). It is called from opener goroutines, several at once.
type Source interface {
	Open(ctx context.Context, id string) (io.ReadSeekCloser, error)
}

// OutputOpener opens an output for a format. The player calls it from its
// pipeline goroutine: once in New, and again when a loaded track's sample
// rate or channel count differs from the open output's.
type OutputOpener func(f output.Format) (output.Output, error)

// Options configure a Player.
type Options struct {
	// Source opens media. Required.
	Source Source
	// Output selects the device (--output) when OpenOutput is nil.
	Output output.Spec
	// OpenOutput, if set, replaces output.Open(Output, ...) (tests).
	OpenOutput OutputOpener
	// PeriodMS and Periods size the device buffer (output.Options; zero:
	// the output's defaults, 20 ms × 4).
	PeriodMS, Periods int
	// RingMS is the output ring buffer in ms (default DefaultRingMS).
	// Larger rides out longer stalls; smaller makes pause, seek and volume
	// react sooner.
	RingMS int
	// Normalize is the loudness policy. A zero TargetLUFS means −14 LUFS
	// and a zero CeilingDBTP −1 dBTP; the zero Mode is auto.
	Normalize dsp.GainPolicy
	// Prefetch: the next track is opened (fetched, headers read, the
	// first ~190 ms decoded) this long before the current one ends.
	// Default 10 s.
	Prefetch time.Duration
	// Crossfade, when positive, overlaps the last Crossfade of a track
	// with the first Crossfade of the next one (equal-power gains) at a
	// join between tracks of the same format; see "Crossfade" in the
	// package documentation. 0 (the default) keeps joins gapless and
	// sample-exact. SetCrossfade changes it while playing.
	Crossfade time.Duration
	// VolumeCurve maps the volume percentage to gain (zero value: the
	// default logarithmic curve). SetVolumeCurve changes it while playing.
	VolumeCurve dsp.VolumeCurve
	Logger      *slog.Logger
	// Heartbeat, when set, is beaten by the pipeline goroutine at least
	// once a second while it turns (a watchdog's view of the audio loop).
	Heartbeat interface{ Beat() }
}

// Player plays tracks gaplessly through the dsp stages into an output. It
// implements playback.Engine.
//
// Concurrency: one pipeline goroutine owns the decoders, the dsp stages,
// the output's producer side and all playback state. The methods send it
// typed messages and return once it has applied them (they never wait
// for audio). Position reads an immutable snapshot published through an atomic
// pointer and the output's atomic played index; SetVolume stores an atomic
// the pipeline applies at its next block. All methods are safe for
// concurrent use; after Close they return ErrClosed (Position: last value).
type Player struct {
	opts   Options
	log    *slog.Logger
	cmds   chan request
	events chan playback.Event
	ctl    controls
	tl     atomic.Pointer[timeline]
	out    atomic.Pointer[outRef] // the output in use, for OutputStats

	ctx       context.Context // canceled by Close: aborts downloads of openers
	cancel    context.CancelFunc
	quit      chan struct{} // closed by Close: stop openers, refuse commands
	done      chan struct{} // closed when the pipeline goroutine has exited
	closeOnce sync.Once
	openers   sync.WaitGroup
}

var _ playback.Engine = (*Player)(nil)

// controls are the settings any goroutine may change while playing,
// without a round trip: the pipeline reads them at its next block (volume,
// curve, crossfade) or next open (norm).
type controls struct {
	volume atomic.Int32                    // SetVolume, 0..100
	xfade  atomic.Int64                    // crossfade length in ns (SetCrossfade); ≤ 0: off
	norm   atomic.Pointer[dsp.GainPolicy]  // loudness policy for tracks opened from now on (SetNormalize)
	curve  atomic.Pointer[dsp.VolumeCurve] // SetVolumeCurve
}

// New opens the output (at 44.1 kHz stereo; it is reopened when a loaded
// track needs another format) and starts the pipeline goroutine.
func New(opts Options) (*Player, error) {
	if opts.Source == nil {
		return nil, errors.New("player: Options.Source is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Prefetch <= 0 {
		opts.Prefetch = DefaultPrefetch
	}
	if opts.RingMS <= 0 {
		opts.RingMS = DefaultRingMS
	}
	if opts.Normalize.TargetLUFS == 0 || math.IsNaN(opts.Normalize.TargetLUFS) {
		opts.Normalize.TargetLUFS = dsp.DefaultTargetLUFS
	}
	if opts.Normalize.CeilingDBTP == 0 || math.IsNaN(opts.Normalize.CeilingDBTP) {
		opts.Normalize.CeilingDBTP = dsp.DefaultCeilingDBTP
	}
	if opts.OpenOutput == nil {
		spec, ring, log := opts.Output, opts.RingMS, opts.Logger.With("component", "output")
		period, periods := opts.PeriodMS, opts.Periods
		opts.OpenOutput = func(f output.Format) (output.Output, error) {
			return output.Open(spec, output.Options{SampleRate: f.SampleRate, Channels: f.Channels,
				RingFrames: f.SampleRate * ring / 1000, PeriodMS: period, Periods: periods}, log)
		}
	}
	p := &Player{
		opts:   opts,
		log:    opts.Logger,
		cmds:   make(chan request),
		events: make(chan playback.Event, 64),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.ctl.volume.Store(100)
	p.SetCrossfade(opts.Crossfade)
	norm := opts.Normalize
	p.ctl.norm.Store(&norm)
	p.SetVolumeCurve(opts.VolumeCurve)
	pl := &pipe{p: p, opener: openers{p: p, results: make(chan *track)}}
	if err := pl.openOutput(output.Format{SampleRate: output.DefaultSampleRate, Channels: output.DefaultChannels}); err != nil {
		p.cancel()
		return nil, fmt.Errorf("player: %w", err)
	}
	p.tl.Store(&timeline{out: pl.dev.out})
	go pl.run()
	return p, nil
}

// send hands m to the pipeline goroutine and waits until it was applied:
// a method returns only once its effect is visible (Position after Load
// reports the requested track).
func (p *Player) send(m message) error {
	c := request{msg: m, reply: make(chan error, 1)}
	select {
	case p.cmds <- c:
	case <-p.done:
		return ErrClosed
	}
	select {
	case err := <-c.reply:
		return err
	case <-p.done:
		return ErrClosed
	}
}

// Load drops whatever plays and starts t at posMS (playing or paused).
// Opening happens in the background: a track that cannot be fetched or
// decoded is reported as a TrackFailed event, not as an error here.
func (p *Player) Load(t playback.Track, albumContext bool, posMS int64, play bool) error {
	return p.send(cmdLoad{t: t, album: albumContext, posMS: max(posMS, 0), play: play})
}

// SetNext names the track to join gaplessly after the current one (nil:
// the list ends with it). It is prefetched Prefetch before the end.
func (p *Player) SetNext(t *playback.Track, albumContext bool) {
	if t != nil {
		c := *t
		t = &c
	}
	_ = p.send(cmdSetNext{t: t, album: albumContext})
}

// Pause fades out over 20 ms and stops the output once the fade was heard.
func (p *Player) Pause() error { return p.send(cmdPause{}) }

// Settle waits until no fade-out is pending: after Pause, until the
// device has taken the fade's last frame and the output is stopped, so
// Position is final. It reports false if that took longer than timeout
// (or the player is closed). Safe from any goroutine.
func (p *Player) Settle(timeout time.Duration) bool {
	done := make(chan struct{})
	if err := p.send(cmdSettle{done: done}); err != nil {
		return false
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// Resume restarts the output with a 20 ms fade in.
func (p *Player) Resume() error { return p.send(cmdResume{}) }

// SeekTo jumps within the audible track (10 ms fade out, 10 ms fade in).
func (p *Player) SeekTo(posMS int64) error { return p.send(cmdSeek{posMS: max(posMS, 0)}) }

// SetVolume sets the volume 0..100; the pipeline ramps to it (30 ms) at
// its next block. Safe from any goroutine, never blocks.
func (p *Player) SetVolume(v int) { p.ctl.volume.Store(int32(min(max(v, 0), 100))) }

// SetVolumeCurve changes how the volume percentage maps to gain (a
// config reload); the pipeline ramps to the new gain (30 ms) at its next
// block. Safe from any goroutine, never blocks.
func (p *Player) SetVolumeCurve(c dsp.VolumeCurve) { p.ctl.curve.Store(&c) }

// SetCrossfade sets the crossfade length (0 or less: off, joins stay
// gapless). Safe from any goroutine, never blocks. It applies from the next
// join whose overlap has not begun yet; a crossfade in progress keeps its
// length.
func (p *Player) SetCrossfade(d time.Duration) { p.ctl.xfade.Store(int64(max(d, 0))) }

// Position returns the track audible now and its position, mapped from the
// output's played index (samples actually heard) through the published
// timeline. It takes no lock and does not talk to the pipeline goroutine.
func (p *Player) Position() (string, int64) {
	tl := p.tl.Load()
	if tl == nil || tl.out == nil {
		return "", 0
	}
	return tl.position(tl.out.PlayedIndex())
}

// Events reports TrackStarted (a gapless join became audible), Ended (the
// last frame of the list was played) and TrackFailed. The channel is
// buffered; events that find it full are dropped and logged.
func (p *Player) Events() <-chan playback.Event { return p.events }

// SetNormalize changes the loudness policy (a config reload). It applies
// to the tracks opened from now on: the next track of the list, and every
// load or seek; the track playing keeps its gain, so nothing jumps.
func (p *Player) SetNormalize(g dsp.GainPolicy) {
	if g.TargetLUFS == 0 || math.IsNaN(g.TargetLUFS) {
		g.TargetLUFS = dsp.DefaultTargetLUFS
	}
	if g.CeilingDBTP == 0 || math.IsNaN(g.CeilingDBTP) {
		g.CeilingDBTP = dsp.DefaultCeilingDBTP
	}
	p.ctl.norm.Store(&g)
}

// OutputStats reports the output's counters (underruns, buffered frames,
// device losses...); ok is false before an output is open.
func (p *Player) OutputStats() (st output.Stats, ok bool) {
	ref := p.out.Load()
	if ref == nil {
		return output.Stats{}, false
	}
	return ref.o.Stats(), true
}

// outRef holds the output in use (outputs of several types may follow
// each other).
type outRef struct{ o output.Output }

// Close stops playback at once, closes the output and waits for the
// pipeline and opener goroutines. Idempotent.
func (p *Player) Close() error {
	err := ErrClosed
	p.closeOnce.Do(func() {
		err = p.send(cmdClose{})
		close(p.quit)
		p.cancel()
		<-p.done
		p.openers.Wait()
	})
	if errors.Is(err, ErrClosed) {
		return nil
	}
	return err
}

// emit sends an event without ever blocking the pipeline.
func (p *Player) emit(ev playback.Event) {
	select {
	case p.events <- ev:
	default:
		p.log.Warn("engine event dropped: nobody reads Events", "kind", ev.Kind, "track", ev.URI)
	}
}
