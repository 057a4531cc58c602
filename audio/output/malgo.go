package output

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gen2brain/malgo"
)

// backendNull is miniaudio's ma_backend_null. malgo v0.11.24 declares
// BackendNull = 13, but in the miniaudio it bundles (0.11.23) the enum
// reads ..., ma_backend_webaudio (12), ma_backend_custom (13),
// ma_backend_null (14): malgo.BackendNull selects the custom backend, which
// has no callbacks and fails. TestNullBackendConstant checks 14 opens the
// backend miniaudio names "Null".
const backendNull malgo.Backend = 14

// autoBackends is miniaudio's default priority order without the null and
// custom backends (auto must never pick a silent device) and without JACK:
// with libjack installed (ffmpeg and mpd pull it in) and no JACK server,
// miniaudio 0.11's JACK context init crashes the process (seen here:
// SIGSEGV in ma_context_init after "jack server is not running"); JACK
// users reach it through PipeWire's or JACK's PulseAudio bridge. Backends
// not built for the platform are skipped by miniaudio.
var autoBackends = []malgo.Backend{
	malgo.BackendWasapi, malgo.BackendDsound, malgo.BackendWinmm, malgo.BackendCoreaudio,
	malgo.BackendSndio, malgo.BackendAudio4, malgo.BackendOss, malgo.BackendPulseaudio,
	malgo.BackendAlsa,
}

func backendsFor(k Kind) []malgo.Backend {
	switch k {
	case KindALSA:
		return []malgo.Backend{malgo.BackendAlsa}
	case KindPulse:
		return []malgo.Backend{malgo.BackendPulseaudio}
	case KindNull:
		return []malgo.Backend{backendNull}
	}
	if !alsaHasCards() {
		return slices.DeleteFunc(slices.Clone(autoBackends), func(b malgo.Backend) bool { return b == malgo.BackendAlsa })
	}
	return autoBackends
}

// procAsoundCards is where Linux lists ALSA's sound cards (tests change it).
var procAsoundCards = "/proc/asound/cards"

// alsaHasCards reports whether ALSA can have a device to open: on Linux,
// whether the kernel lists a sound card. With none (a server, a container,
// a board without audio) opening ALSA's default device fails, and trying
// makes libasound print a screen of configuration errors on stderr, so
// auto and --list-outputs leave ALSA out; an explicit alsa[:DEVICE] still
// tries.
func alsaHasCards() bool {
	if runtime.GOOS != "linux" {
		return true
	}
	b, err := os.ReadFile(procAsoundCards)
	if err != nil {
		return false // no ALSA in this kernel (or /proc not mounted)
	}
	s := strings.TrimSpace(string(b))
	return s != "" && !strings.Contains(s, "no soundcards")
}

// errNoSoundCard is List's reason for leaving ALSA out.
var errNoSoundCard = errors.New("no sound card (" + procAsoundCards + " lists none)")

var errDeviceStopped = fmt.Errorf("%w: the backend stopped the device", ErrDeviceLost)

// malgoDriver plays through miniaudio. Each open makes a fresh context and
// device (a restarted sound server invalidates both), so a reopen after a
// loss starts from scratch.
//
// All methods run on the output loop goroutine. The device threads only
// call the closures made in open, which touch the consumer, atomics and
// non-blocking channel sends.
type malgoDriver struct {
	spec Spec
	opts Options
	cons *consumer
	lost func(error)
	log  *slog.Logger

	// The open device, nil when closed.
	ctx     *malgo.AllocatedContext
	dev     *malgo.Device
	dead    *atomic.Bool // set before the device is released: its callbacks then do nothing
	running *atomic.Bool // the device is started on purpose: a stop is a loss
	logs    chan string  // miniaudio log messages, drained by the loop

	mu     sync.Mutex // guards parsed, written by miniaudio's log callback
	parsed malgoLogInfo
}

// malgoLogInfo is what miniaudio tells about a device only in its log.
type malgoLogInfo struct {
	backend         string
	name            string
	period, periods int // internal buffer: periods × period frames
}

func newMalgoDriver(spec Spec, opts Options, cons *consumer, lost func(error), log *slog.Logger) *malgoDriver {
	return &malgoDriver{spec: spec, opts: opts, cons: cons, lost: lost, log: log}
}

var (
	reBackendLine = regexp.MustCompile(`^\[([A-Za-z0-9 ]+)\]\s*$`)
	reNameLine    = regexp.MustCompile(`^  (.*) \(Playback\)\s*$`)
	reBufferLine  = regexp.MustCompile(`^\s+Buffer Size: (\d+)\*(\d+) `)
)

// onLog receives miniaudio's log messages on whichever thread posts them.
// It parses the device summary miniaudio logs after initializing a device
// (backend, name, internal buffer size: malgo exposes none of them) and
// queues the message for the loop without blocking.
func (d *malgoDriver) onLog(logs chan string) malgo.LogProc {
	return func(msg string) {
		d.mu.Lock()
		if m := reBackendLine.FindStringSubmatch(msg); m != nil {
			d.parsed = malgoLogInfo{backend: m[1]}
		} else if m := reNameLine.FindStringSubmatch(msg); m != nil {
			d.parsed.name = m[1]
		} else if m := reBufferLine.FindStringSubmatch(msg); m != nil {
			d.parsed.period, _ = strconv.Atoi(m[1])
			d.parsed.periods, _ = strconv.Atoi(m[2])
		}
		d.mu.Unlock()
		select {
		case logs <- msg:
		default:
		}
	}
}

// flushLogs writes queued miniaudio messages to the log.
func (d *malgoDriver) flushLogs() {
	for {
		select {
		case msg := <-d.logs:
			d.log.Debug("miniaudio", "msg", string(bytes.TrimSpace([]byte(msg))))
		default:
			return
		}
	}
}

func (d *malgoDriver) open() (deviceInfo, error) {
	if d.dev != nil {
		return deviceInfo{}, errors.New("device already open")
	}
	d.logs = make(chan string, 128)
	defer d.flushLogs()
	d.mu.Lock()
	d.parsed = malgoLogInfo{}
	d.mu.Unlock()

	// C copies both strings during init; pin them until then (a Go pointer
	// stored in memory passed to C must be pinned).
	var pin runtime.Pinner
	defer pin.Unpin()
	appName := append([]byte(d.opts.StreamName), 0)
	pin.Pin(&appName[0])
	var cfg malgo.ContextConfig
	cfg.ThreadPriority = malgo.ThreadPriorityHighest
	cfg.Pulse.PApplicationName = &appName[0]
	ctx, err := malgo.InitContext(backendsFor(d.spec.Kind), cfg, d.onLog(d.logs))
	if err != nil {
		return deviceInfo{}, fmt.Errorf("init %s backend: %w", d.spec.Kind, err)
	}

	dc := malgo.DefaultDeviceConfig(malgo.Playback)
	dc.SampleRate = uint32(d.opts.SampleRate)
	dc.PeriodSizeInFrames = uint32(d.opts.PeriodFrames)
	dc.Periods = uint32(d.opts.Periods)
	dc.PerformanceProfile = malgo.LowLatency
	dc.NoPreSilencedOutputBuffer = 1 // fill writes every sample
	dc.Playback.Format = malgo.FormatF32
	dc.Playback.Channels = uint32(d.opts.Channels)
	dc.Pulse.StreamNamePlayback = d.opts.StreamName
	if d.spec.Device != "" {
		// ALSA and PulseAudio ids are the device name as a C string.
		id := new(malgo.DeviceID)
		copy(id[:len(id)-1], d.spec.Device)
		pin.Pin(id)
		dc.Playback.DeviceID = unsafe.Pointer(id)
	}

	dead, running := new(atomic.Bool), new(atomic.Bool)
	cons, lost := d.cons, d.lost
	callbacks := malgo.DeviceCallbacks{
		Data: func(out, _ []byte, _ uint32) {
			if len(out) < 4 {
				return
			}
			if dead.Load() {
				clear(out)
				return
			}
			cons.fill(unsafe.Slice((*float32)(unsafe.Pointer(&out[0])), len(out)/4))
		},
		Stop: func() {
			if running.Load() && !dead.Load() {
				lost(errDeviceStopped)
			}
		},
	}
	dev, err := malgo.InitDevice(ctx.Context, dc, callbacks)
	if err != nil {
		d.releaseContext(ctx)
		name := d.spec.Device
		if name == "" {
			name = "default device"
		}
		return deviceInfo{}, fmt.Errorf("init %s: %w", name, err)
	}
	if f, c, r := dev.PlaybackFormat(), dev.PlaybackChannels(), dev.SampleRate(); f != malgo.FormatF32 ||
		int(c) != d.opts.Channels || int(r) != d.opts.SampleRate {
		dev.Uninit()
		d.releaseContext(ctx)
		return deviceInfo{}, fmt.Errorf("device opened as format %d, %d channels, %d Hz; want f32, %d channels, %d Hz",
			f, c, r, d.opts.Channels, d.opts.SampleRate)
	}
	d.ctx, d.dev, d.dead, d.running = ctx, dev, dead, running

	d.mu.Lock()
	p := d.parsed
	d.mu.Unlock()
	// Latency: the backend's buffer plus up to one period in miniaudio's
	// fixed-size-callback intermediary buffer. If the log did not say,
	// assume we got what we asked for.
	latency := d.opts.PeriodFrames * d.opts.Periods
	if p.period > 0 && p.periods > 0 {
		latency = p.period * p.periods
	}
	latency += d.opts.PeriodFrames
	if p.backend == "" {
		p.backend = string(d.spec.Kind)
	}
	d.log.Debug("output device initialised", "backend", p.backend, "device", p.name,
		"buffer_frames", p.period*p.periods, "periods", p.periods)
	return deviceInfo{backend: p.backend, latency: latency, watchdog: true}, nil
}

func (d *malgoDriver) start() error {
	defer d.flushLogs()
	if d.dev == nil {
		return errors.New("device not open")
	}
	d.running.Store(true)
	if err := d.dev.Start(); err != nil {
		d.running.Store(false)
		return err
	}
	return nil
}

func (d *malgoDriver) stop() error {
	defer d.flushLogs()
	if d.dev == nil {
		return nil
	}
	d.running.Store(false)
	return d.dev.Stop()
}

// close releases device and context. miniaudio can block in a wedged sound
// server, so it gives up after a few seconds and abandons them.
func (d *malgoDriver) close() bool {
	defer d.flushLogs()
	if d.dev == nil {
		return true
	}
	ctx, dev := d.ctx, d.dev
	d.ctx, d.dev = nil, nil
	d.running.Store(false)
	d.dead.Store(true)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Stop first: ma_device_uninit does not wake the PulseAudio data
		// loop, which blocks forever in pa_mainloop_iterate once the
		// stream is dead; ma_device_stop does wake it.
		_ = dev.Stop()
		dev.Uninit()
		d.releaseContext(ctx)
	}()
	select {
	case <-done:
		return true
	case <-time.After(5 * time.Second):
		d.log.Error("output device did not close within 5s; abandoning it")
		return false
	}
}

func (d *malgoDriver) releaseContext(ctx *malgo.AllocatedContext) {
	if err := ctx.Uninit(); err != nil {
		d.log.Debug("miniaudio context uninit", "err", err)
	}
	ctx.Free()
}

// Device is one entry of List: something --output accepts.
type Device struct {
	Spec    string // the --output value that selects it
	Kind    Kind
	ID      string // backend device id ("" for the backend's default device)
	Name    string // human-readable description
	Default bool   // the backend reports it as its default device
}

// List returns the outputs --list-outputs shows: auto, then for PulseAudio
// and ALSA their default device and every playback device the backend
// enumerates (ids usable as alsa:ID or pulse:ID), then null and wav:PATH,
// which are always available. Devices are listed as the backend reports
// them, not test-opened (that could disturb playing audio). A backend that
// is missing (no libpulse, no server) is left out and its failure is
// returned in err, which joins such failures: List returns a usable list
// even when err is not nil.
func List() ([]Device, error) {
	devs := []Device{{Spec: "auto", Kind: KindAuto, Name: "default device of the first working backend (PulseAudio, then ALSA)"}}
	var errs []error
	for _, b := range []struct {
		kind    Kind
		backend malgo.Backend
		label   string
	}{
		{KindPulse, malgo.BackendPulseaudio, "PulseAudio"},
		{KindALSA, malgo.BackendAlsa, "ALSA"},
	} {
		if b.kind == KindALSA && !alsaHasCards() {
			errs = append(errs, fmt.Errorf("output: list %s devices: %w", b.label, errNoSoundCard))
			continue
		}
		found, err := listBackend(b.kind, b.backend)
		if err != nil {
			errs = append(errs, fmt.Errorf("output: list %s devices: %w", b.label, err))
			continue
		}
		devs = append(devs, Device{Spec: string(b.kind), Kind: b.kind, Name: b.label + " default device"})
		devs = append(devs, found...)
	}
	devs = append(devs,
		Device{Spec: "null", Kind: KindNull, Name: "no sound: discards audio in real time"},
		Device{Spec: "wav:PATH", Kind: KindWAV, Name: "32-bit float WAV file written in real time"})
	return devs, errors.Join(errs...)
}

func listBackend(kind Kind, backend malgo.Backend) ([]Device, error) {
	ctx, err := malgo.InitContext([]malgo.Backend{backend}, malgo.ContextConfig{}, nil)
	if err != nil {
		return nil, err
	}
	defer func() {
		_ = ctx.Uninit()
		ctx.Free()
	}()
	infos, err := ctx.Devices(malgo.Playback)
	if err != nil {
		return nil, err
	}
	var devs []Device
	for i := range infos {
		id := infos[i].ID
		end := bytes.IndexByte(id[:], 0)
		if end <= 0 {
			continue
		}
		spec := Spec{Kind: kind, Device: string(id[:end])}
		if _, err := ParseSpec(spec.String()); err != nil {
			continue // not expressible as a spec (never seen in practice)
		}
		devs = append(devs, Device{
			Spec:    spec.String(),
			Kind:    kind,
			ID:      spec.Device,
			Name:    infos[i].Name(),
			Default: infos[i].IsDefault != 0,
		})
	}
	return devs, nil
}
