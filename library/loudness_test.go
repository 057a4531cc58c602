package library

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/roomcast/roomcast/internal/testenv"
)

var (
	reFFI    = regexp.MustCompile(`(?m)^\s*I:\s+(-?[0-9.]+) LUFS`)
	reFFPeak = regexp.MustCompile(`(?m)^\s*Peak:\s+(-?[0-9.]+) dBFS`)
)

// ffmpegR128 runs ffmpeg's ebur128 filter (true peak on) over the input
// arguments and returns the summary's integrated loudness and peak.
func ffmpegR128(t *testing.T, bin string, input ...string) (i, peak float64) {
	t.Helper()
	args := append([]string{"-hide_banner", "-nostats"}, input...)
	args = append(args, "-af", "ebur128=peak=true", "-f", "null", "-")
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
	}
	k := bytes.LastIndex(out, []byte("Summary:"))
	if k < 0 {
		t.Fatalf("ffmpeg printed no summary:\n%s", out)
	}
	parse := func(re *regexp.Regexp) float64 {
		m := re.FindSubmatch(out[k:])
		if m == nil {
			t.Fatalf("ffmpeg summary without %s:\n%s", re, out[k:])
		}
		v, err := strconv.ParseFloat(string(m[1]), 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	return parse(reFFI), parse(reFFPeak)
}

// TestLoudnessAgainstFFmpeg measures two generated tracks of one album at
// different levels and compares with ffmpeg's ebur128 on the same Ogg
// files, and on their concatenation for the album. ffmpeg prints one
// decimal: agreement within 0.1 LU (integrated) and 0.2 dB (true peak).
func TestLoudnessAgainstFFmpeg(t *testing.T) {
	ffmpeg := testenv.Tool(t, "ffmpeg", "ffmpeg")
	music := t.TempDir()
	files := []string{
		synth(t, music, "Album/1.ogg", 12, 44100, 2, "pinknoise", "gain", "-8"),
		synth(t, music, "Album/2.ogg", 9, 44100, 2, "sine", "220", "sine", "1300", "remix", "1,2", "1,2", "gain", "-9"),
	}
	retag(t, files[0], "TITLE=Quiet", "ARTIST=X", "ALBUM=Levels", "TRACKNUMBER=1")
	retag(t, files[1], "TITLE=Loud", "ARTIST=X", "ALBUM=Levels", "TRACKNUMBER=2")
	l := openLib(t, music)
	runOnce(t, l)
	tracks, ok := l.Album(albumID("X", "Levels"))
	if !ok || len(tracks) != 2 {
		t.Fatalf("album: %d tracks", len(tracks))
	}
	maxTP := math.Inf(-1)
	for i, tr := range tracks {
		if tr.LoudnessLUFS == nil || tr.TruePeakDBTP == nil {
			t.Fatalf("%s: not measured", tr.Title)
		}
		ffI, ffPeak := ffmpegR128(t, ffmpeg, "-i", files[i])
		t.Logf("%s: ours I=%.2f TP=%.2f, ffmpeg I=%.1f TP=%.1f", tr.Title, *tr.LoudnessLUFS, *tr.TruePeakDBTP, ffI, ffPeak)
		if math.Abs(*tr.LoudnessLUFS-ffI) > 0.1 {
			t.Errorf("%s: integrated %.2f LUFS, ffmpeg %.1f", tr.Title, *tr.LoudnessLUFS, ffI)
		}
		if math.Abs(*tr.TruePeakDBTP-ffPeak) > 0.2 {
			t.Errorf("%s: true peak %.2f dBTP, ffmpeg %.1f", tr.Title, *tr.TruePeakDBTP, ffPeak)
		}
		maxTP = max(maxTP, *tr.TruePeakDBTP)
	}
	q, ld := *tracks[0].LoudnessLUFS, *tracks[1].LoudnessLUFS
	// Less than 10 LU apart, so both tracks pass the album's relative
	// gate and the album value lies clearly between them.
	if d := ld - q; d < 4 || d > 9 {
		t.Fatalf("test signals %.1f and %.1f LUFS: want 4 to 9 LU apart", q, ld)
	}
	al := tracks[0].AlbumLoudnessLUFS
	if al == nil || tracks[0].AlbumTruePeakDBTP == nil {
		t.Fatal("album not measured")
	}
	if !(*al > q+0.5 && *al < ld-0.5) {
		t.Errorf("album %.2f LUFS not between the tracks' %.2f and %.2f", *al, q, ld)
	}
	if *tracks[0].AlbumTruePeakDBTP != maxTP || *tracks[1].AlbumTruePeakDBTP != maxTP {
		t.Errorf("album true peak %.3f, want the tracks' maximum %.3f", *tracks[0].AlbumTruePeakDBTP, maxTP)
	}
	list := filepath.Join(t.TempDir(), "list.txt")
	if err := os.WriteFile(list, []byte("file '"+files[0]+"'\nfile '"+files[1]+"'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ffI, _ := ffmpegR128(t, ffmpeg, "-f", "concat", "-safe", "0", "-i", list)
	t.Logf("album: ours %.2f LUFS, ffmpeg on the concatenation %.1f", *al, ffI)
	if math.Abs(*al-ffI) > 0.1 {
		t.Errorf("album %.2f LUFS, ffmpeg on the concatenation %.1f", *al, ffI)
	}
}
