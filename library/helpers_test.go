package library

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/testenv"
)

func runTool(t testing.TB, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// addTrack copies the Ogg file src to music/rel and replaces its Vorbis
// comments with tags ("KEY=value"); it returns the new file's path.
func addTrack(t testing.TB, music, rel, src string, tags ...string) string {
	t.Helper()
	dst := filepath.Join(music, filepath.FromSlash(rel))
	testenv.CopyFile(t, src, dst, 0o644)
	retag(t, dst, tags...)
	return dst
}

// retag replaces a file's Vorbis comments (vorbiscomment -w).
func retag(t testing.TB, path string, tags ...string) {
	t.Helper()
	bin := testenv.Tool(t, "vorbiscomment", "vorbis-tools")
	args := []string{"-w"}
	for _, tag := range tags {
		args = append(args, "-t", tag)
	}
	if len(tags) == 0 {
		args = append(args, "-t", "COMMENT=none")
	}
	runTool(t, bin, append(args, path)...)
}

// synth encodes a sox-generated signal as Ogg Vorbis (oggenc -q 3) into
// dir/name and returns the path. effects are sox synth arguments after the
// duration, e.g. "pinknoise", "gain", "-20".
func synth(t testing.TB, dir, name string, seconds float64, rate, channels int, effects ...string) string {
	t.Helper()
	sox := testenv.Tool(t, "sox", "sox")
	oggenc := testenv.Tool(t, "oggenc", "vorbis-tools")
	wav := filepath.Join(t.TempDir(), "s.wav")
	args := []string{"-n", "-r", itoa(rate), "-c", itoa(channels), "-b", "16", wav, "synth", ftoa(seconds)}
	runTool(t, sox, append(args, effects...)...)
	out := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	runTool(t, oggenc, "-Q", "-q", "3", "-o", out, wav)
	return out
}

func itoa(v int) string { return strconv.Itoa(v) }

func ftoa(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func fixturePath(name string) string { return filepath.Join("testdata", name) }

// openLib opens a Library on music with a fresh state directory.
func openLib(t testing.TB, music string) *Library {
	t.Helper()
	return openLibState(t, music, t.TempDir())
}

func openLibState(t testing.TB, music, state string) *Library {
	t.Helper()
	l, err := Open(Options{MusicDir: music, StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// runOnce scans and analyses, failing the test on error or after a minute.
func runOnce(t testing.TB, l *Library) Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := l.RunOnce(ctx); err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	return l.Status()
}
