package output

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/testenv"
)

// -6 dBFS peak sine: RMS is 3 dB lower.
const (
	testAmp  = 0.5
	testFreq = 440.0
)

var testRMSdB = 20 * math.Log10(testAmp/math.Sqrt2)

// TestPulseNullSink plays a sine through a real PulseAudio daemon (null
// sink) and checks what the sink's monitor recorded: frequency, purity and
// level. It also lists the devices and expects the sink to be among them.
func TestPulseNullSink(t *testing.T) {
	pa := startPulse(t)
	const rate = 44100

	devs, err := List()
	found := false
	for _, d := range devs {
		found = found || d.Spec == "pulse:ci_sink"
	}
	if !found {
		t.Errorf("List() = %+v, %v; pulse:ci_sink missing", devs, err)
	}

	out, err := Open(Spec{Kind: KindPulse}, Options{SampleRate: rate, Channels: 2}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	wg := feed(ctx, t, out, testFreq, testAmp)
	defer func() { cancel(); out.Close(); wg.Wait() }()
	if b := out.Stats().Backend; b != "PulseAudio" {
		t.Fatalf("backend %q, want PulseAudio", b)
	}

	rec := pa.record(rate)
	if err := out.Start(); err != nil {
		t.Fatal(err)
	}
	// The null sink asks for little data in its first second or two: wait
	// for audio actually played rather than for a fixed time.
	waitFor(t, 10*time.Second, "1.5 s of audio to play", func() bool { return out.Played() > rate*3/2 })
	checkSine(t, rec.stop(), rate, testFreq, testRMSdB)
	t.Logf("pulse: %+v latency %v", out.Stats(), out.Latency())
}

// TestPulseDeviceLoss unloads the sink while playing into it: the output
// must report the loss, keep the producer alive, reopen when the sink comes
// back, and play the sine again.
func TestPulseDeviceLoss(t *testing.T) {
	pa := startPulse(t)
	const rate = 44100
	// An explicit sink: PulseAudio kills the stream when it goes away
	// (miniaudio connects with PA_STREAM_DONT_MOVE). With the default sink
	// the stream would be moved to another sink instead, not lost.
	out, err := Open(Spec{Kind: KindPulse, Device: "ci_sink"},
		Options{SampleRate: rate, Channels: 2, RetryMin: 100 * time.Millisecond, RetryMax: 400 * time.Millisecond}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	wg := feed(ctx, t, out, testFreq, testAmp)
	defer func() { cancel(); out.Close(); wg.Wait() }()

	rec := pa.record(rate)
	if err := out.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "1 s of audio to play", func() bool { return out.Played() > rate })
	checkSine(t, rec.stop(), rate, testFreq, testRMSdB)

	before := out.Stats()
	unloaded := time.Now()
	pa.pactl("unload-module", pa.nullSinkModule())
	select {
	case err := <-out.Errors():
		if !errors.Is(err, ErrDeviceLost) {
			t.Fatalf("reported %v, want ErrDeviceLost", err)
		}
		t.Logf("loss reported after %v: %v", time.Since(unloaded).Round(time.Millisecond), err)
	case <-time.After(DefaultStall + 3*time.Second):
		t.Fatalf("no loss reported %v after the sink was unloaded; stats %+v", DefaultStall+3*time.Second, out.Stats())
	}
	if st := out.Stats(); st.State != StateLost || st.Losses != 1 {
		t.Fatalf("after the loss: %+v", st)
	}
	time.Sleep(500 * time.Millisecond) // a few failed reopen attempts
	if st := out.Stats(); st.State != StateLost || st.Reopens != 0 {
		t.Fatalf("reopened a sink that does not exist: %+v", st)
	}

	pa.pactl("load-module", "module-null-sink", "sink_name=ci_sink")
	reloaded := time.Now()
	waitFor(t, 5*time.Second, "the output to reopen", func() bool {
		st := out.Stats()
		return st.State == StatePlaying && st.Reopens == 1
	})
	reopened := time.Since(reloaded)
	rec = pa.record(rate)
	played := out.Played()
	waitFor(t, 10*time.Second, "playback to resume", func() bool { return out.Played() > played })
	resumed := time.Since(reloaded)
	waitFor(t, 10*time.Second, "2 s of audio to play again", func() bool { return out.Played() > played+2*rate })
	checkSine(t, rec.stop(), rate, testFreq, testRMSdB)
	t.Logf("sink back: reopened after %v, audio flowing after %v", reopened.Round(time.Millisecond), resumed.Round(time.Millisecond))

	st := out.Stats()
	if st.Losses != 1 || st.Errors < 1 || st.LostFrames <= before.LostFrames || st.Played <= before.Played {
		t.Errorf("counters did not move as expected: before %+v after %+v", before, st)
	}
	if st.PlayedIndex-st.Played != st.LostFrames+st.FlushedFrames {
		t.Errorf("position accounting: index %d - played %d != lost %d + flushed %d",
			st.PlayedIndex, st.Played, st.LostFrames, st.FlushedFrames)
	}
}

// TestPulseServerRestart kills the PulseAudio daemon while playing and
// starts a new one: the output must notice, reconnect and play again.
func TestPulseServerRestart(t *testing.T) {
	pa := startPulse(t)
	const rate = 44100
	out, err := Open(Spec{Kind: KindPulse}, Options{SampleRate: rate, Channels: 2,
		RetryMin: 100 * time.Millisecond, RetryMax: 400 * time.Millisecond}, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	wg := feed(ctx, t, out, testFreq, testAmp)
	defer func() { cancel(); out.Close(); wg.Wait() }()
	if err := out.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "1 s of audio to play", func() bool { return out.Played() > rate })

	killed := time.Now()
	pa.restart()
	select {
	case err := <-out.Errors():
		if !errors.Is(err, ErrDeviceLost) {
			t.Fatalf("reported %v, want ErrDeviceLost", err)
		}
		t.Logf("loss reported %v after the kill: %v", time.Since(killed).Round(time.Millisecond), err)
	case <-time.After(DefaultStall + 3*time.Second):
		t.Fatalf("no loss reported after the daemon was restarted; stats %+v", out.Stats())
	}
	waitFor(t, 5*time.Second, "the output to reconnect", func() bool {
		st := out.Stats()
		return st.State == StatePlaying && st.Reopens == 1
	})
	rec := pa.record(rate)
	played := out.Played()
	waitFor(t, 10*time.Second, "2 s of audio to play again", func() bool { return out.Played() > played+2*rate })
	t.Logf("playing again %v after the kill; %+v", time.Since(killed).Round(time.Millisecond), out.Stats())
	checkSine(t, rec.stop(), rate, testFreq, testRMSdB)
}
