//go:build unix

package decode

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jfreymuth/oggvorbis"

	"github.com/roomcast/roomcast/internal/testenv"
)

// benchSeconds is the length of the benchmark file.
const benchSeconds = 300

var bench struct {
	once sync.Once
	dir  string
	path string
	data []byte
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bench.dir != "" {
		os.RemoveAll(bench.dir)
	}
	os.Exit(code)
}

// benchFile returns a 5-minute 44.1 kHz stereo q5 Ogg Vorbis file with a
// music-like signal (three tones and pink noise, different per channel).
// It is generated with sox and oggenc once per test binary run (so that
// -count and the sub-benchmarks share it) into a temporary directory that
// TestMain removes.
func benchFile(b *testing.B) (string, []byte) {
	b.Helper()
	testenv.Tool(b, "sox", "sox libsox-fmt-all")
	testenv.Tool(b, "oggenc", "vorbis-tools")
	bench.once.Do(func() {
		bench.dir, bench.err = os.MkdirTemp("", "decode-bench-")
		if bench.err != nil {
			return
		}
		bench.path = filepath.Join(bench.dir, "music.ogg")
		cmd := exec.Command("sh", "-c", `sox -r 44100 -n -b 16 -t wav - synth "$1" sine 220 sine 331 sine 587 pinknoise channels 4 remix 1,2v0.5,4 2,3,4v0.7 norm -3 |
			oggenc -Q -q 5 -o "$2" -`, "sh", strconv.Itoa(benchSeconds), bench.path)
		if out, err := cmd.CombinedOutput(); err != nil {
			bench.err = fmt.Errorf("%v: %s", err, out)
			return
		}
		bench.data, bench.err = os.ReadFile(bench.path)
	})
	if bench.err != nil {
		b.Fatalf("generating benchmark file: %v", bench.err)
	}
	return bench.path, bench.data
}

// cpuTime returns the user+system CPU time of this process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// report adds real-time factors computed from wall and CPU time.
func report(b *testing.B, wall, cpu time.Duration) {
	n := float64(b.N)
	b.ReportMetric(benchSeconds*n/wall.Seconds(), "x-realtime")
	b.ReportMetric(benchSeconds*n/cpu.Seconds(), "x-realtime-cpu")
	b.ReportMetric(cpu.Seconds()*1000/n, "cpu-ms/op")
}

// BenchmarkDecode decodes the whole 5-minute file: with this package, with
// oggvorbis v1.0.5's Reader, and with libvorbis' oggdec (a subprocess, its
// user+system CPU time taken from the process state).
func BenchmarkDecode(b *testing.B) {
	path, data := benchFile(b)
	buf := make([]float32, 4096*2)

	b.Run("roomcast", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		c0, t0 := cpuTime(), time.Now()
		for b.Loop() {
			s, err := OpenVorbis(bytes.NewReader(data))
			if err != nil {
				b.Fatal(err)
			}
			frames := 0
			for {
				n, err := s.Read(buf)
				frames += n / 2
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			if frames < benchSeconds*44100 {
				b.Fatalf("decoded %d frames", frames)
			}
		}
		report(b, time.Since(t0), cpuTime()-c0)
	})

	b.Run("oggvorbis", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		c0, t0 := cpuTime(), time.Now()
		for b.Loop() {
			r, err := oggvorbis.NewReader(bytes.NewReader(data))
			if err != nil {
				b.Fatal(err)
			}
			for {
				_, err := r.Read(buf)
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		}
		report(b, time.Since(t0), cpuTime()-c0)
	})

	b.Run("oggdec", func(b *testing.B) {
		oggdec := testenv.Tool(b, "oggdec", "vorbis-tools")
		b.SetBytes(int64(len(data)))
		var cpu time.Duration
		t0 := time.Now()
		for b.Loop() {
			cmd := exec.Command(oggdec, "-Q", "-o", "/dev/null", path)
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("oggdec: %v\n%s", err, out)
			}
			cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		}
		report(b, time.Since(t0), cpu)
	})
}

// BenchmarkRead measures steady-state Read calls of 4096 frames. The
// allocations reported all come from github.com/jfreymuth/vorbis (about 7
// small slices per packet); see TestReadAllocations.
func BenchmarkRead(b *testing.B) {
	_, data := benchFile(b)
	s, err := OpenVorbis(bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]float32, 4096*2)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Read(buf); err == io.EOF {
			if err := s.SeekFrame(0); err != nil {
				b.Fatal(err)
			}
		} else if err != nil {
			b.Fatal(err)
		}
	}
}
