package output

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"time"
)

// The WAV sink writes WAVE_FORMAT_IEEE_FLOAT (3) with an 18-byte fmt chunk
// (cbSize 0) and a fact chunk, the layout the Microsoft spec asks for
// non-PCM data and the one sox and libsndfile write. It is read by sox,
// ffmpeg, libsndfile, scipy and Audacity. WAVE_FORMAT_EXTENSIBLE would
// add a channel mask, which only matters above two channels, at the cost of
// readers that know only the basic tags.
//
// Layout (little-endian), 58 bytes before the samples:
//
//	 0 "RIFF" u32 riffSize   8 "WAVE"
//	12 "fmt " u32 18  u16 3 (IEEE float)  u16 channels  u32 rate
//	          u32 byteRate  u16 blockAlign  u16 32 (bits)  u16 0 (cbSize)
//	38 "fact" u32 4   u32 frames
//	50 "data" u32 dataSize
//	58 samples (float32, interleaved)
const (
	wavHeaderSize   = 58
	wavFormatIEEE   = 3
	wavMaxRIFFBytes = math.MaxUint32
)

// ErrWAVFull is reported when the file reaches the 4 GiB RIFF limit (about
// 3 h 20 min of 44.1 kHz stereo): the sink keeps its clock and discards the
// rest.
var ErrWAVFull = errors.New("wav file reached the 4 GiB RIFF size limit")

// wavWriter appends float32 samples to a WAV file whose header is valid at
// every moment: samples are written first, then the header is rewritten
// with the new sizes in one write, so a concurrent reader never sees sizes
// beyond the data on disk. Not safe for concurrent use.
type wavWriter struct {
	f        *os.File
	channels int
	data     int64 // bytes of samples written
	hdr      [wavHeaderSize]byte
	buf      []byte
	err      error // sticky
}

func newWAVWriter(f *os.File, rate, channels int) (*wavWriter, error) {
	w := &wavWriter{f: f, channels: channels}
	h := w.hdr[:]
	le := binary.LittleEndian
	copy(h[0:], "RIFF")
	copy(h[8:], "WAVE")
	copy(h[12:], "fmt ")
	le.PutUint32(h[16:], 18)
	le.PutUint16(h[20:], wavFormatIEEE)
	le.PutUint16(h[22:], uint16(channels))
	le.PutUint32(h[24:], uint32(rate))
	le.PutUint32(h[28:], uint32(rate*channels*4))
	le.PutUint16(h[32:], uint16(channels*4))
	le.PutUint16(h[34:], 32)
	le.PutUint16(h[36:], 0)
	copy(h[38:], "fact")
	le.PutUint32(h[42:], 4)
	copy(h[50:], "data")
	w.putSizes()
	if _, err := f.WriteAt(h, 0); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *wavWriter) putSizes() {
	le := binary.LittleEndian
	le.PutUint32(w.hdr[4:], uint32(wavHeaderSize-8+w.data))
	le.PutUint32(w.hdr[46:], uint32(w.data/int64(4*w.channels)))
	le.PutUint32(w.hdr[54:], uint32(w.data))
}

// write appends samples (whole frames). After an error every call returns
// it.
func (w *wavWriter) write(samples []float32) error {
	if w.err != nil {
		return w.err
	}
	n := 4 * len(samples)
	if wavHeaderSize-8+w.data+int64(n) > wavMaxRIFFBytes {
		w.err = ErrWAVFull
		return w.err
	}
	if cap(w.buf) < n {
		w.buf = make([]byte, n)
	}
	b := w.buf[:n]
	for i, v := range samples {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	if _, err := w.f.WriteAt(b, wavHeaderSize+w.data); err != nil {
		w.err = err
		return err
	}
	w.data += int64(n)
	w.putSizes()
	if _, err := w.f.WriteAt(w.hdr[:], 0); err != nil {
		w.err = err
	}
	return w.err
}

// wavDriver is a sound card made of a clock and a file: while started, a
// goroutine takes one period from the consumer every period of wall time
// (monotonic clock) and appends it to the file, silence included when the
// ring runs dry, exactly what a device would have been given. Paused, the
// clock stops and nothing is written. A WAV sink is never lost: write
// errors (disk full, 4 GiB limit) are reported once and the clock keeps
// consuming so the pipeline does not stall. Samples are written as the
// producer wrote them, without the clipping to [-1, 1] miniaudio applies
// on the way to a real device.
//
// open, start, stop and close run on the output loop goroutine; the clock
// goroutine runs between start and stop.
type wavDriver struct {
	path   string
	opts   Options
	cons   *consumer
	report func(error)

	f    *os.File
	w    *wavWriter
	halt chan struct{} // closed to stop the clock; nil when stopped
	done chan struct{} // closed by the clock goroutine when it returns
}

func newWAVDriver(path string, opts Options, cons *consumer, report func(error)) *wavDriver {
	return &wavDriver{path: path, opts: opts, cons: cons, report: report}
}

func (d *wavDriver) open() (deviceInfo, error) {
	info := deviceInfo{backend: "wav", latency: 0, watchdog: false}
	if d.f != nil {
		return info, nil
	}
	f, err := os.OpenFile(d.path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return deviceInfo{}, err
	}
	w, err := newWAVWriter(f, d.opts.SampleRate, d.opts.Channels)
	if err != nil {
		_ = f.Close()
		return deviceInfo{}, fmt.Errorf("write wav header: %w", err)
	}
	d.f, d.w = f, w
	return info, nil
}

func (d *wavDriver) start() error {
	if d.f == nil {
		return errors.New("wav file not open")
	}
	if d.halt != nil {
		return nil
	}
	d.halt, d.done = make(chan struct{}), make(chan struct{})
	go d.clock(d.halt, d.done)
	return nil
}

func (d *wavDriver) stop() error {
	if d.halt == nil {
		return nil
	}
	close(d.halt)
	<-d.done
	d.halt, d.done = nil, nil
	return nil
}

func (d *wavDriver) close() bool {
	_ = d.stop()
	if d.f == nil {
		return true
	}
	if err := d.f.Close(); err != nil && d.w.err == nil {
		d.report(fmt.Errorf("output: close wav %s: %w", d.path, err))
	}
	d.f = nil
	return true
}

// clock is the sink's "sound card": period k (from 0) is taken at
// start + k·period, so after t seconds (t·rate/period rounded up) periods
// have been written. If it falls more than a second behind (machine
// suspended, disk stalled) it restarts the clock rather than write a burst.
func (d *wavDriver) clock(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	period := d.opts.PeriodFrames
	buf := make([]float32, period*d.opts.Channels)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	base := time.Now()
	var frames int64 // taken since base
	reported := false
	for {
		d.cons.fill(buf)
		if err := d.w.write(buf); err != nil && !reported {
			reported = true
			d.report(fmt.Errorf("output: write wav %s: %w", d.path, err))
		}
		frames += int64(period)
		wait := time.Until(base.Add(d.opts.frames(frames)))
		if wait < -time.Second {
			base, frames, wait = time.Now(), 0, 0
		}
		if wait <= 0 {
			select {
			case <-stop:
				return
			default:
				continue
			}
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-stop:
			return
		}
	}
}
