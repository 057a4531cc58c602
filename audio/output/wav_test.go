package output

import (
	"context"
	"errors"
	"hash/crc32"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/testenv"
)

// wavSnapshot is what a concurrent reader saw at one moment.
type wavSnapshot struct {
	dataLen int
	crc     uint32
}

// readWhileWriting parses path in a loop until ctx ends, checking at every
// read that the header is valid and its sizes never exceed the bytes on
// disk, and returns the data prefixes it saw.
func readWhileWriting(ctx context.Context, t *testing.T, path string, rate, channels int) []wavSnapshot {
	var snaps []wavSnapshot
	for ctx.Err() == nil {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("read while writing: %v", err)
			return snaps
		}
		h, err := parseWAVHeader(b)
		if err != nil {
			t.Errorf("invalid header while writing (file %d bytes): %v", len(b), err)
			return snaps
		}
		// The file only grows: what was read is a lower bound of its size
		// when the header was read, so sizes must fit in it.
		if int64(h.riffSize)+8 > int64(len(b)) || int64(h.dataSize)+wavHeaderSize > int64(len(b)) {
			t.Errorf("header sizes beyond the data: riff %d data %d, file %d bytes", h.riffSize, h.dataSize, len(b))
			return snaps
		}
		bpf := uint32(channels * 4)
		if h.format != wavFormatIEEE || h.rate != uint32(rate) || h.channels != uint16(channels) || h.bits != 32 ||
			h.dataSize%bpf != 0 || h.factFrames != h.dataSize/bpf || h.riffSize != h.dataSize+wavHeaderSize-8 {
			t.Errorf("inconsistent header while writing: %+v", h)
			return snaps
		}
		data := b[wavHeaderSize : wavHeaderSize+int(h.dataSize)]
		snaps = append(snaps, wavSnapshot{dataLen: len(data), crc: crc32.ChecksumIEEE(data)})
		time.Sleep(3 * time.Millisecond)
	}
	return snaps
}

// TestWAVSink plays a known signal through a wav: output with a gap in
// the middle, while another goroutine parses the file, and checks the
// header at every moment, real-time pacing, the exact samples with the
// underrun silence, and the underrun counters.
func TestWAVSink(t *testing.T) {
	const (
		rate     = 48000
		channels = 2
		periodMS = 10
	)
	path := filepath.Join(t.TempDir(), "out.wav")
	out, err := Open(Spec{Kind: KindWAV, Path: path}, Options{SampleRate: rate, Channels: channels, PeriodMS: periodMS}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()

	// Two parts of a signal in [0.1, 0.9], never zero, so silence shows.
	sig := sine(rate*3/2, channels, rate, 997, 0.4)
	for i := range sig {
		sig[i] += 0.5
	}
	partA, partB := sig[:len(sig)*2/3], sig[len(sig)*2/3:]

	ctx, cancel := context.WithCancel(context.Background())
	var snaps []wavSnapshot
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		snaps = readWhileWriting(ctx, t, path, rate, channels)
	}()

	// Pacing: sample the frames handed to the "device" against the clock.
	if _, err := out.Write(partA[:rate/4*channels]); err != nil { // pre-fill 250 ms
		t.Fatal(err)
	}
	start := time.Now()
	if err := out.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := out.Write(partA[rate/4*channels:]); err != nil {
		t.Fatal(err)
	}
	// Let the ring run dry for ~300 ms: an underrun the sink must fill
	// with silence, as a sound card would.
	waitFor(t, 5*time.Second, "part A to play", func() bool { return out.PlayedIndex() == out.Written() })
	time.Sleep(300 * time.Millisecond)
	if _, err := out.Write(partB); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "part B to play", func() bool { return out.PlayedIndex() == out.Written() })
	elapsed := time.Since(start)
	st := out.Stats()
	if err := out.Pause(); err != nil {
		t.Fatal(err)
	}
	after := out.Stats().DeviceFrames

	// Real-time pacing: periods are taken at start + k·period, so after
	// `elapsed` between elapsed·rate and elapsed·rate + 1 period frames
	// were taken; allow 30 ms of scheduling jitter either way.
	want := float64(elapsed) / float64(time.Second) * rate
	tol := rate*periodMS/1000 + rate*30/1000
	if d := float64(st.DeviceFrames) - want; math.Abs(d) > float64(tol) {
		t.Errorf("after %v the sink took %d frames, want %.0f ±%d (off by %.1f ms)", elapsed, st.DeviceFrames, want, tol, d/rate*1000)
	}
	t.Logf("pacing: %d frames in %v (%.2f ms off real time)", st.DeviceFrames, elapsed, (float64(st.DeviceFrames)-want)/rate*1000)

	time.Sleep(50 * time.Millisecond)
	if got := out.Stats().DeviceFrames; got != after {
		t.Errorf("the clock kept running while paused: %d -> %d frames", after, got)
	}
	cancel()
	wg.Wait()
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}

	// The final file: header exact, samples = A, silence, B, silence.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := parseWAVHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	if int(h.dataSize)+wavHeaderSize != len(b) {
		t.Fatalf("data size %d + header != file size %d", h.dataSize, len(b))
	}
	got := floatsLE(b[wavHeaderSize:])
	if int64(len(got)/channels) != after {
		t.Errorf("file holds %d frames, the sink took %d", len(got)/channels, after)
	}
	var audio []float32
	var silentRuns, silentFrames int
	for i := 0; i < len(got); i += channels {
		if got[i] == 0 && got[i+1] == 0 {
			if i == 0 || got[i-channels] != 0 {
				silentRuns++
			}
			silentFrames++
			continue
		}
		audio = append(audio, got[i:i+channels]...)
	}
	if len(audio) != len(sig) {
		t.Fatalf("file holds %d audio samples, want %d", len(audio), len(sig))
	}
	for i := range sig {
		if math.Float32bits(audio[i]) != math.Float32bits(sig[i]) {
			t.Fatalf("sample %d = %v, want %v (bit-exact)", i, audio[i], sig[i])
		}
	}
	// The gap between A and B must be at least the 300 ms we waited.
	gapStart := len(partA)
	if got[gapStart] != 0 {
		t.Fatalf("no silence after part A")
	}
	u := st.Underruns
	if u.Frames < int64(rate*3/10) || int64(silentFrames) < u.Frames || u.Events < 1 || u.Events > int64(silentRuns) {
		t.Errorf("underruns %+v; file has %d silent frames in %d runs (gap ≥ %d frames)", u, silentFrames, silentRuns, rate*3/10)
	}
	if st.Played != int64(len(sig)/channels) || st.PlayedIndex != st.Written {
		t.Errorf("played %d index %d written %d; want %d, index = written", st.Played, st.PlayedIndex, st.Written, len(sig)/channels)
	}

	// Every snapshot the reader took is a prefix of the final data.
	if len(snaps) < 20 {
		t.Fatalf("reader took only %d snapshots", len(snaps))
	}
	data := b[wavHeaderSize:]
	grew := 0
	for i, s := range snaps {
		if s.dataLen > len(data) || crc32.ChecksumIEEE(data[:s.dataLen]) != s.crc {
			t.Fatalf("snapshot %d (%d bytes) is not a prefix of the final data", i, s.dataLen)
		}
		if i > 0 && s.dataLen > snaps[i-1].dataLen {
			grew++
		}
	}
	if grew < 10 {
		t.Errorf("the reader saw the file grow only %d times: it was not read while written", grew)
	}
}

// TestWAVReadableByTools checks the file with sox and ffmpeg, and that
// ffmpeg decodes exactly the samples written.
func TestWAVReadableByTools(t *testing.T) {
	sox := testenv.Tool(t, "sox", "sox")
	ffmpeg := testenv.Tool(t, "ffmpeg", "ffmpeg")
	const rate, channels = 44100, 2
	path := filepath.Join(t.TempDir(), "tools.wav")
	out, err := Open(Spec{Kind: KindWAV, Path: path}, Options{SampleRate: rate, Channels: channels}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	sig := sine(rate/2, channels, rate, 440, 0.5)
	if _, err := out.Write(sig); err != nil {
		t.Fatal(err)
	}
	if err := out.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the signal to play", func() bool { return out.PlayedIndex() == out.Written() })
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}

	info, err := exec.Command(sox, "--i", path).CombinedOutput()
	if err != nil {
		t.Fatalf("sox --i: %v\n%s", err, info)
	}
	for _, want := range []string{"Channels       : 2", "Sample Rate    : 44100", "32-bit Floating Point PCM"} {
		if !strings.Contains(string(info), want) {
			t.Errorf("sox --i lacks %q:\n%s", want, info)
		}
	}
	probe, _ := exec.Command(ffmpeg, "-hide_banner", "-i", path).CombinedOutput() // exits 1: no output file
	if !strings.Contains(string(probe), "pcm_f32le") || !strings.Contains(string(probe), "44100 Hz, stereo") {
		t.Errorf("ffmpeg -i does not see f32le 44100 Hz stereo:\n%s", probe)
	}
	raw, err := exec.Command(ffmpeg, "-v", "error", "-i", path, "-f", "f32le", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg decode: %v", err)
	}
	soxRaw, err := exec.Command(sox, path, "-t", "f32", "-").Output()
	if err != nil {
		t.Fatalf("sox decode: %v", err)
	}
	dec := floatsLE(raw)
	// sox converts through its 32-bit integer samples (sox --i says 25-bit
	// precision): equal within 2^-24.
	soxDec := floatsLE(soxRaw)
	if len(soxDec) != len(dec) {
		t.Errorf("sox decoded %d samples, ffmpeg %d", len(soxDec), len(dec))
	}
	for i := range min(len(soxDec), len(sig)) {
		if math.Abs(float64(soxDec[i]-sig[i])) > 1.0/(1<<24) {
			t.Fatalf("sox sample %d = %v, want %v", i, soxDec[i], sig[i])
		}
	}
	if len(dec) < len(sig) {
		t.Fatalf("ffmpeg decoded %d samples, want ≥ %d", len(dec), len(sig))
	}
	for i := range sig {
		if dec[i] != sig[i] {
			t.Fatalf("ffmpeg sample %d = %v, want %v", i, dec[i], sig[i])
		}
	}
}

func TestWAVOpenErrors(t *testing.T) {
	_, err := Open(Spec{Kind: KindWAV, Path: filepath.Join(t.TempDir(), "missing", "x.wav")}, Options{}, nil)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("open in a missing directory: %v, want ErrNotExist", err)
	}
	_, err = Open(Spec{Kind: KindWAV, Path: filepath.Join(t.TempDir(), "x.wav")}, Options{Periods: 1}, nil)
	if err == nil || !strings.Contains(err.Error(), "periods") {
		t.Fatalf("Periods 1: %v, want an error about periods", err)
	}
}

// TestLifecycle checks Pause keeps the buffer, Flush drops it, and every
// method after Close fails with ErrClosed instead of blocking.
func TestLifecycle(t *testing.T) {
	const rate, ch = 8000, 1
	path := filepath.Join(t.TempDir(), "life.wav")
	out, err := Open(Spec{Kind: KindWAV, Path: path}, Options{SampleRate: rate, Channels: ch, PeriodMS: 10, RingFrames: 4000}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := out.TryWrite(counting(1, 1000, ch)); n != 1000 {
		t.Fatalf("TryWrite %d", n)
	}
	if err := out.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "some frames to play", func() bool { return out.Played() >= 200 })
	if err := out.Pause(); err != nil {
		t.Fatal(err)
	}
	st := out.Stats()
	if st.State != StatePaused || st.Buffered == 0 || st.Buffered+st.Played != 1000 {
		t.Fatalf("after Pause: %+v; want paused with the rest buffered", st)
	}
	time.Sleep(30 * time.Millisecond)
	if p := out.Played(); p != st.Played {
		t.Fatalf("played moved while paused: %d -> %d", st.Played, p)
	}
	out.Flush()
	if st := out.Stats(); st.Buffered != 0 || st.FlushedFrames != 1000-st.Played {
		t.Fatalf("after Flush: %+v", st)
	}
	idx := out.Written()
	out.TryWrite(counting(5000, 100, ch))
	out.Start()
	waitFor(t, 2*time.Second, "post-flush frames to play", func() bool { return out.PlayedIndex() == idx+100 })
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := out.Write(counting(0, 10, ch)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
	if err := out.Start(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close: %v", err)
	}
	if err := out.Pause(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Pause after Close: %v", err)
	}
	// The file holds the pre-flush frames then the post-flush ones.
	b, _ := os.ReadFile(path)
	got := floatsLE(b[wavHeaderSize:])
	var audio []float32
	for _, v := range got {
		if v != 0 {
			audio = append(audio, v)
		}
	}
	if int64(len(audio)) != st.Played+100 || audio[0] != 1 || audio[st.Played] != 5000 || audio[len(audio)-1] != 5099 {
		t.Fatalf("file audio: %d samples, want %d; boundaries wrong", len(audio), st.Played+100)
	}
}
