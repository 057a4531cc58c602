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
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/testenv"
)

var formatBench struct {
	once  sync.Once
	files map[string]string
	err   error
}

// formatBenchFiles encodes the 5-minute music-like signal of benchFile as
// 16-bit FLAC, 192 kbit/s MP3 (ffmpeg libmp3lame) and 128 kbit/s Opus
// (opusenc), once per test binary run.
func formatBenchFiles(b *testing.B) map[string]string {
	b.Helper()
	benchFile(b) // creates bench.dir
	for _, tool := range [][2]string{{"flac", "flac"}, {"ffmpeg", "ffmpeg"}, {"opusenc", "opus-tools"}} {
		testenv.Tool(b, tool[0], tool[1])
	}
	formatBench.once.Do(func() {
		dir := bench.dir
		wav := filepath.Join(dir, "music.wav")
		f := map[string]string{"flac": filepath.Join(dir, "music.flac"), "mp3": filepath.Join(dir, "music.mp3"), "opus": filepath.Join(dir, "music.opus")}
		script := `sox -r 44100 -n -b 16 "$1" synth "$2" sine 220 sine 331 sine 587 pinknoise channels 4 remix 1,2v0.5,4 2,3,4v0.7 norm -3 &&
			flac -s -f -o "$3" "$1" && ffmpeg -loglevel error -y -i "$1" -c:a libmp3lame -b:a 192k "$4" &&
			opusenc --quiet --bitrate 128 "$1" "$5"`
		cmd := exec.Command("sh", "-c", script, "sh", wav, strconv.Itoa(benchSeconds), f["flac"], f["mp3"], f["opus"])
		if out, err := cmd.CombinedOutput(); err != nil {
			formatBench.err = fmt.Errorf("%v: %s", err, out)
			return
		}
		formatBench.files = f
	})
	if formatBench.err != nil {
		b.Fatalf("generating benchmark files: %v", formatBench.err)
	}
	return formatBench.files
}

// BenchmarkDecodeFormats decodes the same 5 minutes as FLAC, MP3 and Opus
// with this package (Open, Read to the end) and with each format's
// reference decoder in a subprocess (its user+system CPU time from the
// process state), side by side in one run: flac -d, mpg123, opusdec.
func BenchmarkDecodeFormats(b *testing.B) {
	files := formatBenchFiles(b)
	refs := map[string][]string{
		"flac": {"flac", "flac", "-d", "-s", "-f", "-o", "/dev/null"},
		"mp3":  {"mpg123", "mpg123", "-q", "-w", "/dev/null"},
		"opus": {"opusdec", "opus-tools", "--quiet", "--float"},
	}
	for _, format := range []string{"flac", "mp3", "opus"} {
		path := files[format]
		data, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(format+"/roomcast", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			buf := make([]float32, 4096*2)
			c0, t0 := cpuTime(), time.Now()
			for b.Loop() {
				d, err := Open(bytes.NewReader(data))
				if err != nil {
					b.Fatal(err)
				}
				frames := 0
				for {
					n, err := d.Read(buf)
					frames += n / d.Channels()
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				if frames < benchSeconds*d.SampleRate()-1 {
					b.Fatalf("decoded %d frames", frames)
				}
			}
			report(b, time.Since(t0), cpuTime()-c0)
		})
		r := refs[format]
		b.Run(format+"/"+r[0], func(b *testing.B) {
			bin := testenv.Tool(b, r[0], r[1])
			b.SetBytes(int64(len(data)))
			var cpu time.Duration
			t0 := time.Now()
			for b.Loop() {
				args := append(append([]string{}, r[2:]...), path)
				if format == "opus" {
					args = append(args, "/dev/null")
				}
				cmd := exec.Command(bin, args...)
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("%s: %v\n%s", r[0], err, out)
				}
				cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
			}
			report(b, time.Since(t0), cpu)
		})
	}
}
