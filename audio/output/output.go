package output

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Output is an audio sink fed by one producer goroutine.
//
// Write, TryWrite and Writable belong to the producer: call them from one
// goroutine at a time. Every other method is safe from any goroutine.
type Output interface {
	// Write appends interleaved frames (len(frames) a multiple of the
	// channel count) and blocks while the ring buffer is full. It returns
	// the number of samples consumed from frames; on error some may have
	// been written. It fails with ErrFlushed if another goroutine calls
	// Flush meanwhile (the rest of frames is dropped), and ErrClosed after
	// Close.
	Write(frames []float32) (int, error)
	// TryWrite writes the whole frames that fit now and never blocks.
	TryWrite(frames []float32) (int, error)
	// Writable delivers a value after the device took frames or Flush ran:
	// wait on it (in a select with other work) when TryWrite wrote less than
	// asked. It is a hint: check again with TryWrite.
	Writable() <-chan struct{}
	// Flush drops every frame written and not yet handed to the device
	// (e.g. on seek). Frames already in the device buffer still play
	// (at most Latency()).
	Flush()
	// Start lets the device consume (and play) the ring buffer.
	Start() error
	// Pause stops consuming and keeps the ring buffer. It returns once
	// the audio handed to the device has played out, so nothing is lost.
	Pause() error
	// Close stops the device, releases it and fails blocked and future
	// writes. Idempotent.
	Close() error

	// Written is the number of frames accepted by Write and TryWrite since
	// Open: the index the next written frame will have.
	Written() int64
	// PlayedIndex is one past the index of the last frame heard (frames
	// with a smaller index have been played or dropped). See the package
	// documentation for its precision.
	PlayedIndex() int64
	// Played is the number of written frames heard since Open, excluding
	// silence inserted on underrun and frames dropped by Flush or lost with
	// a device.
	Played() int64
	// Underruns reports the silence inserted because the ring ran dry.
	Underruns() Underruns
	// Stats returns every counter at once.
	Stats() Stats
	// Errors delivers device losses and sink write errors. It is buffered
	// and never blocks the output: errors that find it full are dropped
	// (Stats still counts them). It is never closed.
	Errors() <-chan error
	// Format is the sample rate and channel count the output expects.
	Format() Format
	// Latency is the estimated time from handing a frame to the device to
	// hearing it.
	Latency() time.Duration
}

// Format describes interleaved float32 frames.
type Format struct {
	SampleRate int
	Channels   int
}

// Underruns counts silence played while started because the ring buffer
// was empty, after audio had been played since the last Start, Flush or
// device reopen (the silence before the first frame is priming, not an
// underrun). The silence after the producer stops writing (end of queue) is
// counted too: Pause when done.
type Underruns struct {
	Events int64 // separate runs of silence
	Frames int64 // frames of silence
}

// State is the life cycle state of an output.
type State int

// Output states.
const (
	StatePaused  State = iota // open, not consuming (initial state)
	StatePlaying              // consuming the ring buffer
	StateLost                 // device lost; reopening with backoff
	StateClosed
)

func (s State) String() string {
	switch s {
	case StatePaused:
		return "paused"
	case StatePlaying:
		return "playing"
	case StateLost:
		return "lost"
	case StateClosed:
		return "closed"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Stats is a snapshot of an output's counters. Counters are read one by
// one, not as a consistent set.
type Stats struct {
	State         State
	Backend       string // backend in use ("PulseAudio", "ALSA", "Null", "wav")
	Written       int64  // see Output.Written
	PlayedIndex   int64  // see Output.PlayedIndex
	Played        int64  // see Output.Played
	Buffered      int64  // frames in the ring buffer
	DeviceFrames  int64  // frames handed to devices, audio and silence
	Callbacks     int64  // device callbacks (WAV sink periods)
	Underruns     Underruns
	FlushedFrames int64 // frames dropped by Flush
	LostFrames    int64 // frames handed to a device lost before they were heard
	Losses        int64 // devices lost
	Reopens       int64 // successful reopens after a loss
	Errors        int64 // errors reported (including those dropped from Errors())
	LastError     string
}

// ErrDeviceLost wraps the cause when a device disappears.
var ErrDeviceLost = errors.New("output device lost")

// driver is one backend. The output loop goroutine is its only caller; the
// device thread it runs calls consumer.fill and, on trouble, the lost
// function it was given (which never blocks).
type driver interface {
	// open acquires the device, not started. The consumer is idle.
	open() (deviceInfo, error)
	// start makes the device call fill; stop makes it stop and returns
	// once no fill runs.
	start() error
	stop() error
	// close releases the device; after it returns true no fill runs. It
	// returns false if the backend hung and the device was abandoned.
	close() bool
}

// deviceInfo describes an opened device.
type deviceInfo struct {
	backend  string
	latency  int  // frames from fill to audible
	watchdog bool // a silent device while started means it is lost
}

// Stream is the Output returned by Open. It owns one goroutine (the loop)
// that runs the driver: Start, Pause and Close are commands to it, and it
// watches the device, reopening it after a loss.
type Stream struct {
	opts Options
	log  *slog.Logger
	ring *ring
	cons *consumer
	drv  driver

	startCh chan chan error
	pauseCh chan chan error
	closeCh chan chan error
	lostCh  chan error    // cap 1: device threads report a loss here (non-blocking)
	errCh   chan error    // Errors()
	done    chan struct{} // closed when the loop has exited

	closeOnce sync.Once

	dev deviceInfo // the open device; loop-owned (set by Open before the loop starts)

	// Written by the loop, read by anyone.
	state     atomic.Int32
	backend   atomic.Value // string
	latency   atomic.Int64 // frames
	losses    atomic.Int64
	reopens   atomic.Int64
	errCount  atomic.Int64
	lastError atomic.Value // string
}

var _ Output = (*Stream)(nil)

// Open opens the output selected by spec, paused: write some frames, then
// Start. A device that cannot be opened now is an error (so a wrong
// --output fails at once); a device lost later is reopened in the
// background. log receives the output's own messages; nil discards them.
func Open(spec Spec, opts Options, log *slog.Logger) (Output, error) {
	return open(spec, opts, log)
}

func open(spec Spec, opts Options, log *slog.Logger) (*Stream, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("output", spec.String())
	r := newRing(opts.RingFrames, opts.Channels)
	s := &Stream{
		opts:    opts,
		log:     log,
		ring:    r,
		cons:    newConsumer(r, opts.Channels),
		startCh: make(chan chan error),
		pauseCh: make(chan chan error),
		closeCh: make(chan chan error),
		lostCh:  make(chan error, 1),
		errCh:   make(chan error, 16),
		done:    make(chan struct{}),
	}
	s.lastError.Store("")
	s.backend.Store("")
	switch spec.Kind {
	case KindWAV:
		s.drv = newWAVDriver(spec.Path, opts, s.cons, s.report)
	case KindAuto, KindALSA, KindPulse, KindNull:
		s.drv = newMalgoDriver(spec, opts, s.cons, s.lost, log)
	default:
		return nil, fmt.Errorf("output: open %q: %w: unknown kind", spec, ErrBadSpec)
	}
	info, err := s.drv.open()
	if err != nil {
		return nil, fmt.Errorf("output: open %s: %w", spec, err)
	}
	s.deviceOpened(info)
	log.Info("output opened", "backend", info.backend, "rate", opts.SampleRate, "channels", opts.Channels,
		"period_frames", opts.PeriodFrames, "periods", opts.Periods, "latency", s.Latency())
	go s.loop()
	return s, nil
}

// Write implements Output.
func (s *Stream) Write(frames []float32) (int, error) { return s.ring.write(frames, true) }

// TryWrite implements Output.
func (s *Stream) TryWrite(frames []float32) (int, error) { return s.ring.write(frames, false) }

// Writable implements Output.
func (s *Stream) Writable() <-chan struct{} { return s.ring.space }

// Flush implements Output.
func (s *Stream) Flush() { s.ring.flush() }

// Start implements Output. Device failures are not returned: they are
// reported on Errors() and the device is reopened and started when it
// comes back. Start only fails after Close.
func (s *Stream) Start() error { return s.command(s.startCh) }

// Pause implements Output. Like Start, it only fails after Close.
func (s *Stream) Pause() error { return s.command(s.pauseCh) }

// Close implements Output.
func (s *Stream) Close() error {
	err := ErrClosed
	s.closeOnce.Do(func() { err = s.command(s.closeCh) })
	if err == ErrClosed {
		<-s.done
		return nil
	}
	return err
}

func (s *Stream) command(ch chan chan error) error {
	reply := make(chan error, 1)
	select {
	case ch <- reply:
		return <-reply
	case <-s.done:
		return ErrClosed
	}
}

// Written implements Output.
func (s *Stream) Written() int64 { return s.ring.written.Load() }

// PlayedIndex implements Output.
func (s *Stream) PlayedIndex() int64 { return s.cons.playedIndex.Load() }

// Played implements Output.
func (s *Stream) Played() int64 { return s.cons.played.Load() }

// Underruns implements Output.
func (s *Stream) Underruns() Underruns {
	return Underruns{Events: s.cons.underrunEvents.Load(), Frames: s.cons.underrunFrames.Load()}
}

// Errors implements Output.
func (s *Stream) Errors() <-chan error { return s.errCh }

// Format implements Output.
func (s *Stream) Format() Format {
	return Format{SampleRate: s.opts.SampleRate, Channels: s.opts.Channels}
}

// Latency implements Output.
func (s *Stream) Latency() time.Duration { return s.opts.frames(s.latency.Load()) }

// Stats implements Output.
func (s *Stream) Stats() Stats {
	c := s.cons
	return Stats{
		State:         State(s.state.Load()),
		Backend:       s.backend.Load().(string),
		Written:       s.Written(),
		PlayedIndex:   s.PlayedIndex(),
		Played:        s.Played(),
		Buffered:      s.ring.buffered(),
		DeviceFrames:  c.deviceFrames.Load(),
		Callbacks:     c.fills.Load(),
		Underruns:     s.Underruns(),
		FlushedFrames: s.ring.flushed.Load(),
		LostFrames:    c.lostFrames.Load(),
		Losses:        s.losses.Load(),
		Reopens:       s.reopens.Load(),
		Errors:        s.errCount.Load(),
		LastError:     s.lastError.Load().(string),
	}
}

// lost is called by device threads; it never blocks.
func (s *Stream) lost(err error) {
	select {
	case s.lostCh <- err:
	default:
	}
}

// report publishes an error without blocking. Safe from any goroutine.
func (s *Stream) report(err error) {
	s.errCount.Add(1)
	s.lastError.Store(err.Error())
	select {
	case s.errCh <- err:
	default:
	}
}

// deviceOpened records a freshly opened device. Loop only (or Open before
// the loop starts); no fill runs.
func (s *Stream) deviceOpened(info deviceInfo) {
	s.dev = info
	s.cons.reset(int64(info.latency), s.opts.PeriodFrames)
	s.latency.Store(int64(info.latency))
	s.backend.Store(info.backend)
}

// loop owns the driver. Fields below are loop-local state.
func (s *Stream) loop() {
	defer close(s.done)
	var (
		want     bool // the user wants playback (Start more recent than Pause)
		up       = true
		running  bool
		lostAt   time.Time
		backoff  = s.opts.RetryMin
		retry    = time.NewTimer(time.Hour)
		tick     = time.NewTicker(s.opts.StallTimeout / 4)
		started  time.Time // when the driver was last started (watchdog grace)
		lastFill int64     // consumer.lastFill at the previous watchdog tick
	)
	retry.Stop()
	defer retry.Stop()
	defer tick.Stop()

	start := func() {
		s.cons.hold.Store(false)
		s.cons.prime.Store(true)
		if err := s.drv.start(); err != nil {
			s.lost(fmt.Errorf("%w: start: %w", ErrDeviceLost, err))
			return
		}
		running = true
		started = time.Now()
		lastFill = s.cons.lastFill.Load()
		s.state.Store(int32(StatePlaying))
	}
	stop := func() {
		if !running {
			return
		}
		s.drain()
		err := s.drv.stop()
		s.cons.hold.Store(false)
		running = false
		if err != nil {
			s.lost(fmt.Errorf("%w: stop: %w", ErrDeviceLost, err))
		}
	}
	closeDevice := func() {
		if s.drv.close() {
			s.cons.reset(0, s.opts.PeriodFrames) // count what the device took with it
		}
	}

	for {
		select {
		case reply := <-s.startCh:
			want = true
			if up && !running {
				start()
			}
			reply <- nil

		case reply := <-s.pauseCh:
			want = false
			if up {
				stop()
				s.state.Store(int32(StatePaused))
			}
			reply <- nil

		case reply := <-s.closeCh:
			s.ring.close()
			if up {
				stop()
				closeDevice()
			}
			s.state.Store(int32(StateClosed))
			reply <- nil
			return

		case err := <-s.lostCh:
			if !up {
				continue
			}
			s.losses.Add(1)
			s.report(err)
			s.log.Warn("output device lost; reopening", "err", err)
			up, running = false, false
			lostAt = time.Now()
			s.state.Store(int32(StateLost))
			closeDevice()
			backoff = s.opts.RetryMin
			retry.Reset(backoff)

		case <-retry.C:
			info, err := s.drv.open()
			if err != nil {
				s.lastError.Store(err.Error())
				s.log.Debug("output reopen failed", "err", err, "retry_in", backoff)
				backoff = min(2*backoff, s.opts.RetryMax)
				retry.Reset(backoff)
				continue
			}
			s.deviceOpened(info)
			up = true
			s.reopens.Add(1)
			s.state.Store(int32(StatePaused))
			select { // a loss reported by the old device is stale now
			case <-s.lostCh:
			default:
			}
			if want {
				start()
			}
			s.log.Info("output device back", "backend", info.backend, "after", time.Since(lostAt).Round(time.Millisecond))

		case <-tick.C:
			if !up || !running || !s.dev.watchdog {
				continue
			}
			// The device is lost if it stopped calling back while started
			// (grace from the start, for devices slow to begin).
			lf := s.cons.lastFill.Load()
			if lf != lastFill {
				lastFill = lf
				continue
			}
			since := time.Since(s.cons.base.Add(time.Duration(lf)))
			if time.Since(started) > s.opts.StallTimeout && since > s.opts.StallTimeout {
				s.lost(fmt.Errorf("%w: no callback for %v", ErrDeviceLost, since.Round(time.Millisecond)))
			}
		}
	}
}

// drain plays silence until the audio handed to the device has been heard,
// so that stopping the device (which drops its buffer on ALSA) loses
// nothing. Bounded by twice the latency plus a period.
func (s *Stream) drain() {
	lat := s.latency.Load()
	if lat == 0 {
		return
	}
	select {
	case <-s.cons.drained:
	default:
	}
	s.cons.held.Store(0)
	s.cons.drainAt.Store(lat)
	s.cons.hold.Store(true)
	timer := time.NewTimer(2*s.opts.frames(lat+int64(s.opts.PeriodFrames)) + 100*time.Millisecond)
	defer timer.Stop()
	select {
	case <-s.cons.drained:
	case <-timer.C:
	}
}
