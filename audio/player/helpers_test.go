package player

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/roomcast/roomcast/audio/decode"
	"github.com/roomcast/roomcast/audio/output"
	"github.com/roomcast/roomcast/internal/testenv"
	"github.com/roomcast/roomcast/playback"
)

// writeWAV16 writes interleaved samples as 16-bit PCM WAV (what oggenc
// reads everywhere).
func writeWAV16(t testing.TB, path string, x []float32, rate, ch int) {
	t.Helper()
	data := wavHeader(len(x), rate, ch, 16, 1)
	for _, v := range x {
		s := math.Round(float64(v) * 32767)
		s = math.Max(-32768, math.Min(32767, s))
		data = binary.LittleEndian.AppendUint16(data, uint16(int16(s)))
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// wavHeader is the 44-byte header of a WAV file of samples interleaved
// samples, bits each, in format (1 PCM, 3 float), with capacity for them.
func wavHeader(samples, rate, ch, bits, format int) []byte {
	size := samples * bits / 8
	data := make([]byte, 44, 44+size)
	le := binary.LittleEndian
	copy(data[0:], "RIFF")
	le.PutUint32(data[4:], uint32(36+size))
	copy(data[8:], "WAVEfmt ")
	le.PutUint32(data[16:], 16)
	le.PutUint16(data[20:], uint16(format))
	le.PutUint16(data[22:], uint16(ch))
	le.PutUint32(data[24:], uint32(rate))
	le.PutUint32(data[28:], uint32(rate*ch*bits/8))
	le.PutUint16(data[32:], uint16(ch*bits/8))
	le.PutUint16(data[34:], uint16(bits))
	copy(data[36:], "data")
	le.PutUint32(data[40:], uint32(size))
	return data
}

// encodeOgg encodes samples with oggenc at quality q into path.
func encodeOgg(t testing.TB, path string, x []float32, rate, ch int, q string) {
	t.Helper()
	testenv.Tool(t, "oggenc", "vorbis-tools")
	wav := strings.TrimSuffix(path, ".ogg") + ".wav"
	writeWAV16(t, wav, x, rate, ch)
	if out, err := exec.Command("oggenc", "-Q", "-q", q, "-o", path, wav).CombinedOutput(); err != nil {
		t.Fatalf("oggenc: %v\n%s", err, out)
	}
	_ = os.Remove(wav)
}

// decodeFile decodes an Ogg Vorbis file with package decode; it returns
// what decodes and the error that ended decoding (nil at a clean EOF).
func decodeFile(t testing.TB, path string) ([]float32, int, int, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := decode.Open(f)
	if errors.Is(err, decode.ErrTruncated) {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		st, err = decode.NewReader(f)
	}
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	var out []float32
	buf := make([]float32, 4096*st.Channels())
	for {
		n, err := st.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return out, st.SampleRate(), st.Channels(), err
		}
	}
}

// readWAV reads a float32 WAV written by the output's wav: sink (any
// chunk layout with fmt and data).
func readWAV(t testing.TB, path string) (samples []float32, rate, ch int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		t.Fatalf("%s: not a WAV file", path)
	}
	for off := 12; off+8 <= len(b); {
		id, size := string(b[off:off+4]), int(le.Uint32(b[off+4:]))
		body := b[off+8:]
		switch id {
		case "fmt ":
			if le.Uint16(body) != 3 || le.Uint16(body[14:]) != 32 {
				t.Fatalf("%s: not 32-bit float", path)
			}
			ch, rate = int(le.Uint16(body[2:])), int(le.Uint32(body[4:]))
		case "data":
			size = min(size, len(body))
			samples = make([]float32, size/4)
			for i := range samples {
				samples[i] = math.Float32frombits(le.Uint32(body[4*i:]))
			}
			return samples, rate, ch
		}
		off += 8 + size + size%2
	}
	t.Fatalf("%s: no data chunk", path)
	return nil, 0, 0
}

// writeWAVFloat writes interleaved samples as a 32-bit float WAV (for
// ffmpeg).
func writeWAVFloat(t testing.TB, path string, x []float32, rate, ch int) {
	t.Helper()
	data := wavHeader(len(x), rate, ch, 32, 3)
	for _, v := range x {
		data = binary.LittleEndian.AppendUint32(data, math.Float32bits(v))
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// fileSource serves media ids from local files and records when each id
// was opened.
type fileSource struct {
	mu    sync.Mutex
	files map[string]string
	opens map[string][]time.Time
	delay time.Duration // simulated fetch latency
}

func newFileSource() *fileSource {
	return &fileSource{files: map[string]string{}, opens: map[string][]time.Time{}}
}

func (s *fileSource) add(id, path string) playback.Track {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[id] = path
	return playback.Track{URI: "roomcast:track:" + id}
}

func (s *fileSource) Open(ctx context.Context, id string) (io.ReadSeekCloser, error) {
	s.mu.Lock()
	path, ok := s.files[id]
	s.opens[id] = append(s.opens[id], time.Now())
	d := s.delay
	s.mu.Unlock()
	if d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if !ok {
		return nil, fmt.Errorf("media %q: not found", id)
	}
	return os.Open(path)
}

func (s *fileSource) openedAt(id string) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.opens[id]...)
}

// event is an engine event with the time it was received.
type event struct {
	playback.Event
	at time.Time
}

func (e event) String() string {
	id := e.URI[strings.LastIndexByte(e.URI, ':')+1:]
	return e.Kind.String() + ":" + id
}

// playList drives the player like the receiver does: Load the first
// track, SetNext after every Load and TrackStarted; on TrackFailed skip
// to the track after the failed one with Load. It returns the events once
// Ended arrives (or fails the test after timeout).
func playList(t testing.TB, p *Player, list []playback.Track, album bool, timeout time.Duration) []event {
	t.Helper()
	idx := 0
	setNext := func() {
		if idx+1 < len(list) {
			n := list[idx+1]
			p.SetNext(&n, album)
		} else {
			p.SetNext(nil, album)
		}
	}
	if err := p.Load(list[0], album, 0, true); err != nil {
		t.Fatal(err)
	}
	setNext()
	var evs []event
	deadline := time.After(timeout)
	for {
		select {
		case ev := <-p.Events():
			evs = append(evs, event{ev, time.Now()})
			switch ev.Kind {
			case playback.TrackStarted:
				idx++
				setNext()
			case playback.TrackFailed:
				if ev.Err == nil {
					t.Errorf("TrackFailed %s without an error", ev.URI)
				}
				t.Logf("track failed: %s: %v", ev.URI, ev.Err)
				idx++
				if idx >= len(list) {
					return evs
				}
				if err := p.Load(list[idx], album, 0, true); err != nil {
					t.Fatal(err)
				}
				setNext()
			case playback.Ended:
				return evs
			}
		case <-deadline:
			t.Fatalf("timed out after %v; events so far: %v", timeout, evs)
		}
	}
}

// newWAVPlayer makes a Player writing to a wav: file in a temp dir.
func newWAVPlayer(t testing.TB, src Source, opts Options) (*Player, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "out.wav")
	opts.Source = src
	opts.Output = output.Spec{Kind: output.KindWAV, Path: path}
	if opts.Logger == nil {
		opts.Logger = testenv.Logger(t)
	}
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p, path
}

// chord returns an interleaved stereo "chord sweep": three partials whose
// frequencies glide slowly, different in each channel, at amplitude amp.
func chord(frames, rate int, amp float64) []float32 {
	x := make([]float32, 2*frames)
	var ph [6]float64
	for i := range frames {
		tt := float64(i) / float64(rate)
		f := [6]float64{220 + 60*math.Sin(0.7*tt), 277 + 40*math.Sin(0.5*tt), 330 + 90*math.Sin(0.3*tt),
			165 + 30*math.Sin(0.9*tt), 247 + 50*math.Sin(0.4*tt), 392 + 70*math.Sin(0.6*tt)}
		var l, r float64
		for k := range 3 {
			ph[k] += 2 * math.Pi * f[k] / float64(rate)
			ph[k+3] += 2 * math.Pi * f[k+3] / float64(rate)
			l += math.Sin(ph[k])
			r += math.Sin(ph[k+3])
		}
		x[2*i], x[2*i+1] = float32(amp*l/3), float32(amp*r/3)
	}
	return x
}

// bitsEqual reports the first index where a and b differ bitwise (-1: equal).
func bitsEqual(a, b []float32) int {
	for i := range min(len(a), len(b)) {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}
