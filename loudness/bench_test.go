package loudness

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/testenv"
)

const (
	benchRate    = 44100
	benchSeconds = 300 // 5 minutes
)

var benchSignal = sync.OnceValue(func() []float32 {
	return musicLike(benchRate, 2, benchSeconds, 2024)
})

// risingNoise is the true-peak detector's worst case: white noise whose
// level rises steadily, so every block can hold a new peak and no block is
// skipped.
var risingNoise = sync.OnceValue(func() []float32 {
	n := benchRate * benchSeconds
	rng := rand.New(rand.NewPCG(5, 6))
	out := make([]float32, 2*n)
	for i := range out {
		out[i] = float32(rng.NormFloat64() * 0.1 * (0.05 + float64(i)/float64(len(out))))
	}
	return out
})

func benchMeter(b *testing.B, sig []float32) {
	m, err := NewMeter(benchRate, 2)
	if err != nil {
		b.Fatal(err)
	}
	const chunk = 2 * 4096 // a typical decoder buffer
	b.SetBytes(int64(4 * len(sig)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		m.Reset()
		for s := sig; len(s) > 0; {
			n := min(chunk, len(s))
			m.Write(s[:n])
			s = s[n:]
		}
		_ = m.Result()
	}
	audio := float64(len(sig)/2) / benchRate
	b.ReportMetric(audio*float64(b.N)/b.Elapsed().Seconds(), "xrealtime")
}

// BenchmarkMeter measures integrated loudness, LRA, sample and true peak of
// 5 minutes of 44.1 kHz stereo music-like signal (x real time = audio
// seconds per wall-clock second).
func BenchmarkMeter(b *testing.B) { benchMeter(b, benchSignal()) }

// BenchmarkMeterWorstCase is the same on rising noise, where the true-peak
// block skip never applies.
func BenchmarkMeterWorstCase(b *testing.B) { benchMeter(b, risingNoise()) }

// BenchmarkVsFFmpeg times this package against `ffmpeg -af
// ebur128=peak=true` on the same 5-minute WAV file, both starting from the
// file on disk, alternating runs, and reports medians of 5 (run it with
// -benchtime 1x; it takes about a minute). It fails if the results of the
// two disagree by more than 0.1 LU.
func BenchmarkVsFFmpeg(b *testing.B) {
	for b.Loop() {
		benchVsFFmpeg(b)
	}
}

func benchVsFFmpeg(t *testing.B) {
	bin := testenv.Tool(t, "ffmpeg", "ffmpeg")
	path := filepath.Join(t.TempDir(), "bench.wav")
	if err := writeWAV(path, benchRate, 2, 0, benchSignal()); err != nil {
		t.Fatal(err)
	}
	const runs = 5
	var ours, theirs []time.Duration
	var r Result
	var ff ffmpegSummary
	for i := 0; i < runs; i++ {
		start := time.Now()
		ff = runFFmpegEBUR128(t, bin, path)
		theirs = append(theirs, time.Since(start))

		start = time.Now()
		rate, ch, samples, err := readWAV(path)
		if err != nil {
			t.Fatal(err)
		}
		m, err := NewMeter(rate, ch)
		if err != nil {
			t.Fatal(err)
		}
		for s := samples; len(s) > 0; {
			n := min(8192, len(s))
			m.Write(s[:n])
			s = s[n:]
		}
		r = m.Result()
		ours = append(ours, time.Since(start))
	}
	slices.Sort(ours)
	slices.Sort(theirs)
	mo, mf := ours[runs/2], theirs[runs/2]
	t.Logf("PERF ours   runs %v median %v = %.0f x real time", ours, mo, benchSeconds/mo.Seconds())
	t.Logf("PERF ffmpeg runs %v median %v = %.0f x real time", theirs, mf, benchSeconds/mf.Seconds())
	t.Logf("PERF speed-up (ffmpeg median / ours median) = %.2f", mf.Seconds()/mo.Seconds())
	t.ReportMetric(benchSeconds/mo.Seconds(), "ours-xrealtime")
	t.ReportMetric(benchSeconds/mf.Seconds(), "ffmpeg-xrealtime")
	t.ReportMetric(mf.Seconds()/mo.Seconds(), "speedup")
	t.Logf("PERF results ours I=%.2f LRA=%.2f TP=%.2f | ffmpeg I=%.1f LRA=%.1f Peak=%.1f",
		r.Integrated, r.Range, r.TruePeak, ff.I, ff.LRA, ff.Peak)
	if math.Abs(r.Integrated-ff.I) > 0.1 {
		t.Errorf("integrated differs: ours %.2f, ffmpeg %.1f", r.Integrated, ff.I)
	}
}
