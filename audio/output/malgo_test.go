package output

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gen2brain/malgo"
	"github.com/roomcast/roomcast/internal/testenv"
)

// feed writes a phase-continuous sine into out until ctx ends, using the
// non-blocking TryWrite + Writable pattern a pipeline goroutine uses.
func feed(ctx context.Context, t *testing.T, out Output, freq, amp float64) *sync.WaitGroup {
	f := out.Format()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]float32, 441*f.Channels)
		var phase int64
		for {
			for i := 0; i < len(buf); i += f.Channels {
				v := float32(amp * math.Sin(2*math.Pi*freq*float64(phase)/float64(f.SampleRate)))
				for c := range f.Channels {
					buf[i+c] = v
				}
				phase++
			}
			for rest := buf; len(rest) > 0; {
				n, err := out.TryWrite(rest)
				if err != nil {
					if !errors.Is(err, ErrClosed) {
						t.Errorf("TryWrite: %v", err)
					}
					return
				}
				rest = rest[n:]
				if len(rest) == 0 {
					break
				}
				select {
				case <-out.Writable():
				case <-time.After(50 * time.Millisecond): // Writable is a hint; poll too
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return &wg
}

// TestNullBackendConstant documents the malgo v0.11.24 bug this package
// works around: malgo.BackendNull (13) is miniaudio's custom backend,
// which cannot be initialised without callbacks, while 14 is the null
// backend. If malgo fixes its constant this test fails: drop backendNull.
func TestNullBackendConstant(t *testing.T) {
	if malgo.BackendNull != 13 {
		t.Fatalf("malgo.BackendNull = %d: malgo changed; revisit backendNull", malgo.BackendNull)
	}
	if ctx, err := malgo.InitContext([]malgo.Backend{malgo.BackendNull}, malgo.ContextConfig{}, nil); err == nil {
		_ = ctx.Uninit()
		ctx.Free()
		t.Fatal("malgo.BackendNull initialised a context: it may be the null backend after all")
	}
	out, err := open(Spec{Kind: KindNull}, Options{}, testenv.Logger(t))
	if err != nil {
		t.Fatalf("open null backend (14): %v", err)
	}
	defer out.Close()
	if b := out.Stats().Backend; b != "Null" {
		t.Fatalf("backend 14 is %q, want miniaudio's \"Null\"", b)
	}
}

// TestNullBackendPlays plays through miniaudio's null device, which
// consumes in real time: the callback must take frames at about the device
// rate, the position must follow, and Pause must stop consumption.
func TestNullBackendPlays(t *testing.T) {
	const rate = 44100
	out, err := Open(Spec{Kind: KindNull}, Options{SampleRate: rate, Channels: 2, PeriodMS: 10}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	ctx, cancel := context.WithCancel(context.Background())
	wg := feed(ctx, t, out, 440, 0.5)
	defer func() { cancel(); out.Close(); wg.Wait() }()

	waitFor(t, 2*time.Second, "the ring to fill", func() bool { return out.Stats().Buffered > rate/10 })
	if err := out.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	f1, t1 := out.Stats().DeviceFrames, time.Now()
	time.Sleep(time.Second)
	st, t2 := out.Stats(), time.Now()
	measured := float64(st.DeviceFrames-f1) / t2.Sub(t1).Seconds()
	if math.Abs(measured-rate)/rate > 0.1 {
		t.Errorf("null device consumed %.0f frames/s, want %d ±10%%", measured, rate)
	}
	t.Logf("null device: %.0f frames/s, latency %v, %d callbacks", measured, out.Latency(), st.Callbacks)
	if st.PlayedIndex <= 0 || st.PlayedIndex > st.Written || st.Played != st.PlayedIndex {
		t.Errorf("position: played %d index %d written %d", st.Played, st.PlayedIndex, st.Written)
	}
	// The position trails what the device took by about its latency.
	lag := st.DeviceFrames - st.PlayedIndex
	if lat := int64(out.Latency().Seconds() * rate); lag < lat/2 || lag > lat+rate/10 {
		t.Errorf("played index trails the device by %d frames, latency is %d", lag, lat)
	}
	if st.Underruns.Events != 0 {
		t.Errorf("underruns while the producer kept up: %+v", st.Underruns)
	}

	if err := out.Pause(); err != nil {
		t.Fatal(err)
	}
	p := out.Stats()
	if p.State != StatePaused {
		t.Fatalf("state %v after Pause", p.State)
	}
	// Pause drained the device with silence before stopping it: every
	// frame taken from the ring has been heard, none is left in the device.
	if taken := out.(*Stream).ring.read.Load(); p.PlayedIndex != taken || p.Played != taken {
		t.Errorf("after Pause: played %d, index %d; the device took %d", p.Played, p.PlayedIndex, taken)
	}
	time.Sleep(100 * time.Millisecond)
	if q := out.Stats(); q.DeviceFrames != p.DeviceFrames || q.Played != p.Played {
		t.Errorf("device kept consuming after Pause: %d -> %d frames", p.DeviceFrames, q.DeviceFrames)
	}
	if err := out.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "playback to resume", func() bool { return out.Played() > p.Played+rate/10 })
}

// TestAutoSkipsALSAWithoutCards: auto leaves ALSA out exactly when the
// kernel lists no sound card (no libasound error screen on a machine with
// none); an explicit alsa output still uses it.
func TestAutoSkipsALSAWithoutCards(t *testing.T) {
	dir := t.TempDir()
	old := procAsoundCards
	t.Cleanup(func() { procAsoundCards = old })
	cases := []struct {
		name, content string // content "" with name "missing": no file
		alsa          bool
	}{
		{"missing", "", false},
		{"empty", "\n", false},
		{"none", "--- no soundcards ---\n", false},
		{"pi", " 0 [Headphones     ]: bcm2835_headpho - bcm2835 Headphones\n                      bcm2835 Headphones\n", true},
		{"usb", " 1 [Device         ]: USB-Audio - USB Audio Device\n", true},
	}
	for _, c := range cases {
		procAsoundCards = filepath.Join(dir, c.name)
		if c.name != "missing" {
			if err := os.WriteFile(procAsoundCards, []byte(c.content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got := slices.Contains(backendsFor(KindAuto), malgo.BackendAlsa)
		if got != c.alsa {
			t.Errorf("%s: auto includes ALSA = %v, want %v", c.name, got, c.alsa)
		}
		if !slices.Contains(backendsFor(KindAuto), malgo.BackendPulseaudio) {
			t.Errorf("%s: auto lost PulseAudio", c.name)
		}
		if b := backendsFor(KindALSA); len(b) != 1 || b[0] != malgo.BackendAlsa {
			t.Errorf("%s: alsa backends %v", c.name, b)
		}
	}
	if slices.Contains(backendsFor(KindAuto), malgo.BackendJack) {
		t.Error("auto includes JACK (its context init crashes without a JACK server)")
	}
	if len(autoBackends) != 9 || !slices.Contains(autoBackends, malgo.BackendAlsa) {
		t.Fatalf("the shared auto list was modified: %v", autoBackends)
	}
}
