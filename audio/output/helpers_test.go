package output

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/testenv"
)

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sine returns frames of an interleaved sine, the same in every channel.
func sine(frames, channels, rate int, freq, amp float64) []float32 {
	out := make([]float32, frames*channels)
	for i := range frames {
		v := float32(amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))
		for c := range channels {
			out[i*channels+c] = v
		}
	}
	return out
}

// wavInfo is a parsed header of the WAV files this package writes.
type wavInfo struct {
	riffSize, dataSize, factFrames uint32
	format, channels, bits         uint16
	rate                           uint32
}

// parseWAVHeader parses a header laid out as wav.go documents, and checks
// the constant fields.
func parseWAVHeader(b []byte) (wavInfo, error) {
	if len(b) < wavHeaderSize {
		return wavInfo{}, fmt.Errorf("short header: %d bytes", len(b))
	}
	le := binary.LittleEndian
	for off, tag := range map[int]string{0: "RIFF", 8: "WAVE", 12: "fmt ", 38: "fact", 50: "data"} {
		if string(b[off:off+4]) != tag {
			return wavInfo{}, fmt.Errorf("offset %d: %q, want %q", off, b[off:off+4], tag)
		}
	}
	if le.Uint32(b[16:]) != 18 || le.Uint16(b[36:]) != 0 || le.Uint32(b[42:]) != 4 {
		return wavInfo{}, errors.New("bad fmt/fact chunk sizes")
	}
	return wavInfo{
		riffSize:   le.Uint32(b[4:]),
		format:     le.Uint16(b[20:]),
		channels:   le.Uint16(b[22:]),
		rate:       le.Uint32(b[24:]),
		bits:       le.Uint16(b[34:]),
		factFrames: le.Uint32(b[46:]),
		dataSize:   le.Uint32(b[54:]),
	}, nil
}

func floatsLE(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// level returns the RMS of x in dBFS.
func levelDB(x []float32) float64 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return 10 * math.Log10(s/float64(len(x)))
}

// zeroCrossFreq estimates the frequency of a mono signal from its rising
// zero crossings.
func zeroCrossFreq(x []float32, rate int) float64 {
	first, last, n := -1, -1, 0
	for i := 1; i < len(x); i++ {
		if x[i-1] < 0 && x[i] >= 0 {
			if first < 0 {
				first = i
			} else {
				n++
			}
			last = i
		}
	}
	if n == 0 {
		return 0
	}
	return float64(n) * float64(rate) / float64(last-first)
}

// goertzel returns the power of frequency f in x relative to the total
// power (1 for a pure tone at f).
func goertzel(x []float32, rate int, f float64) float64 {
	w := 2 * math.Pi * f / float64(rate)
	c := 2 * math.Cos(w)
	var s1, s2, total float64
	for _, v := range x {
		s := float64(v) + c*s1 - s2
		s2, s1 = s1, s
		total += float64(v) * float64(v)
	}
	p := s1*s1 + s2*s2 - c*s1*s2
	return 2 * p / (float64(len(x)) * total)
}

// channel extracts channel c of interleaved samples.
func channel(x []float32, channels, c int) []float32 {
	out := make([]float32, len(x)/channels)
	for i := range out {
		out[i] = x[i*channels+c]
	}
	return out
}

// audible returns the part of a mono recording between the first and the
// last sample above threshold.
func audible(x []float32, threshold float32) []float32 {
	first, last := -1, -1
	for i, v := range x {
		if v > threshold || v < -threshold {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		return nil
	}
	return x[first : last+1]
}

// longestRun returns the longest part of a mono recording without a
// dropout (4 or more consecutive samples below 1e-3: a sine of the test
// level crosses zero within one sample) and the number of dropouts in the
// audible part.
func longestRun(x []float32) ([]float32, int) {
	x = audible(x, 0.05)
	var best []float32
	start, quiet, gaps := 0, 0, 0
	for i, v := range x {
		if v > -1e-3 && v < 1e-3 {
			quiet++
			if quiet == 4 {
				gaps++
				if end := i - 3; end-start > len(best) {
					best = x[start:end]
				}
			}
			continue
		}
		if quiet >= 4 {
			start = i
		}
		quiet = 0
	}
	if len(x)-start > len(best) && quiet < 4 {
		best = x[start:]
	}
	return best, gaps
}

// pulseServer is a private PulseAudio daemon with a null sink ci_sink, run
// in its own XDG_RUNTIME_DIR (the test process uses it through
// t.Setenv). It is killed at cleanup.
type pulseServer struct {
	t   testing.TB
	dir string
}

func startPulse(t *testing.T) *pulseServer {
	t.Helper()
	testenv.Tool(t, "pulseaudio", "pulseaudio")
	testenv.Tool(t, "pactl", "pulseaudio-utils")
	testenv.Tool(t, "parec", "pulseaudio-utils")
	dir, err := os.MkdirTemp("", "rcpa") // short: the socket path must fit sun_path
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_RUNTIME_DIR", dir)
	t.Setenv("PULSE_SERVER", "") // never reach another engineer's server
	os.Unsetenv("PULSE_SERVER")
	p := &pulseServer{t: t, dir: dir}
	t.Cleanup(p.kill)
	p.launch()
	return p
}

func (p *pulseServer) launch() {
	p.t.Helper()
	cmd := exec.Command("pulseaudio", "--daemonize=yes", "--exit-idle-time=-1", "-n",
		"--load=module-native-protocol-unix auth-anonymous=1",
		"--load=module-null-sink sink_name=ci_sink", "--load=module-always-sink")
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+p.dir, "HOME="+p.dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		p.t.Fatalf("start pulseaudio: %v\n%s", err, out)
	}
	waitFor(p.t, 5*time.Second, "pulseaudio to answer", func() bool {
		return exec.Command("pactl", "info").Run() == nil
	})
	p.pactl("set-default-sink", "ci_sink")
}

// restart kills the daemon and starts a new one in the same directory,
// as when a user's PulseAudio crashes or is restarted.
func (p *pulseServer) restart() {
	p.t.Helper()
	p.stopDaemon()
	p.launch()
}

// pactl runs pactl against the private server and returns its output.
func (p *pulseServer) pactl(args ...string) string {
	p.t.Helper()
	out, err := exec.Command("pactl", args...).CombinedOutput()
	if err != nil {
		p.t.Fatalf("pactl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// nullSinkModule returns the index of the loaded module-null-sink.
func (p *pulseServer) nullSinkModule() string {
	for _, line := range strings.Split(p.pactl("list", "short", "modules"), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[1] == "module-null-sink" {
			return f[0]
		}
	}
	p.t.Fatal("module-null-sink not loaded")
	return ""
}

// kill stops the daemon this test started (by the pid in its own runtime
// directory) and removes the directory.
func (p *pulseServer) kill() {
	p.stopDaemon()
	_ = os.RemoveAll(p.dir)
}

func (p *pulseServer) stopDaemon() {
	b, err := os.ReadFile(filepath.Join(p.dir, "pulse", "pid"))
	if err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGTERM)
			for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
				time.Sleep(20 * time.Millisecond)
			}
			if syscall.Kill(pid, 0) == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}

// recorder records ci_sink.monitor as float32 stereo at rate with parec.
type recorder struct {
	cmd *exec.Cmd
	buf *bytes.Buffer
}

func (p *pulseServer) record(rate int) *recorder {
	p.t.Helper()
	var buf bytes.Buffer
	cmd := exec.Command("parec", "-d", "ci_sink.monitor", "--format=float32le",
		"--rate="+strconv.Itoa(rate), "--channels=2", "--latency-msec=20")
	cmd.Stdout = &buf
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("parec: %v", err)
	}
	r := &recorder{cmd: cmd, buf: &buf}
	p.t.Cleanup(func() { r.stop() })
	return r
}

// stop ends the recording and returns it (interleaved stereo).
func (r *recorder) stop() []float32 {
	if r.cmd.Process != nil && r.cmd.ProcessState == nil {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		_ = r.cmd.Wait()
	}
	return floatsLE(r.buf.Bytes())
}

// checkSine asserts that a stereo recording holds a sine of freq Hz at
// level dB (RMS dBFS, ±1 dB) in both channels.
func checkSine(t *testing.T, rec []float32, rate int, freq, wantDB float64) {
	t.Helper()
	for c := range 2 {
		// The PulseAudio null sink renders before it asks streams for
		// much data, so the first second or two after a stream starts can
		// have dropouts: analyse the longest clean stretch.
		x, gaps := longestRun(channel(rec, 2, c))
		if len(x) < rate/2 {
			t.Fatalf("channel %d: longest clean stretch %d frames (%d dropouts), want ≥ %d", c, len(x), gaps, rate/2)
		}
		if gaps > 0 {
			t.Logf("channel %d: %d dropouts in the recording", c, gaps)
		}
		// Skip the edges (fade in of the first period, cut at the end).
		x = x[len(x)/10 : len(x)-len(x)/10]
		f, g, l := zeroCrossFreq(x, rate), goertzel(x, rate, freq), levelDB(x)
		t.Logf("channel %d: %d frames, %.2f Hz, %.4f of the power at %.0f Hz, %.2f dBFS", c, len(x), f, g, freq, l)
		if math.Abs(f-freq) > freq*0.005 {
			t.Errorf("channel %d: frequency %.2f Hz, want %.0f Hz", c, f, freq)
		}
		if g < 0.95 {
			t.Errorf("channel %d: only %.3f of the power at %.0f Hz", c, g, freq)
		}
		if math.Abs(l-wantDB) > 1 {
			t.Errorf("channel %d: level %.2f dBFS, want %.2f ±1 dB", c, l, wantDB)
		}
	}
}
