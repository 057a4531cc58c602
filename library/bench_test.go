package library

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/roomcast/roomcast/internal/testenv"
	"time"
)

// benchLibrary generates a library of albums×perAlbum tracks of secs
// seconds (44.1 kHz stereo, oggenc -q 3): a few distinct encodings,
// copied and re-tagged, so generation stays quick.
func benchLibrary(b *testing.B, albums, perAlbum int, secs float64) (dir string, audioSeconds float64) {
	b.Helper()
	dir = b.TempDir()
	src := b.TempDir()
	var bases []string
	for i, sig := range [][]string{
		{"pinknoise", "gain", "-12"},
		{"sine", "220", "sine", "330", "remix", "1,2", "1,2", "gain", "-10"},
		{"brownnoise", "gain", "-8"},
		{"pinknoise", "tremolo", "3", "80", "gain", "-14"},
		{"whitenoise", "lowpass", "4000", "gain", "-16"},
	} {
		bases = append(bases, synth(b, src, fmt.Sprintf("base%d.ogg", i), secs, 44100, 2, sig...))
	}
	n := 0
	for a := range albums {
		for t := range perAlbum {
			rel := fmt.Sprintf("Artist %02d/Album %02d/%02d.ogg", a%7, a, t+1)
			addTrack(b, dir, rel, bases[n%len(bases)],
				fmt.Sprintf("TITLE=Track %d", t+1), fmt.Sprintf("ARTIST=Artist %02d", a%7),
				fmt.Sprintf("ALBUM=Album %02d", a), fmt.Sprintf("TRACKNUMBER=%d/%d", t+1, perAlbum), "DATE=2020")
			n++
		}
	}
	return dir, float64(n) * secs
}

// BenchmarkScan measures a full scan and analysis of a generated
// 500-track library (50 albums of 10 tracks, 10 s each) from an empty
// index: tracks/s overall, the tag scan alone, and the analysis speed
// as a multiple of real time. Run it once: -bench Scan -benchtime 1x.
func BenchmarkScan(b *testing.B) {
	const albums, perAlbum, secs = 50, 10, 10.0
	music, audio := benchLibrary(b, albums, perAlbum, secs)
	tracks := albums * perAlbum
	var total, scan time.Duration
	for b.Loop() {
		state := b.TempDir()
		l, err := Open(Options{MusicDir: music, StateDir: state})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := l.RunOnce(context.Background()); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		st := l.Status()
		scan += st.ScanFinished.Sub(st.ScanStarted)
		if st.Tracks != tracks || st.Measured != tracks || st.Albums != albums {
			b.Fatalf("indexed %d tracks (%d measured), %d albums", st.Tracks, st.Measured, st.Albums)
		}
		l.Close()
		os.RemoveAll(filepath.Join(state, DBFileName))
	}
	n := float64(b.N)
	b.ReportMetric(float64(tracks)*n/total.Seconds(), "tracks/s")
	b.ReportMetric(float64(tracks)*n/scan.Seconds(), "scan_tracks/s")
	b.ReportMetric(audio*n/(total-scan).Seconds(), "x_realtime_analysis")
}

// BenchmarkAnalyseTrack decodes and meters one 60 s track as the analyser
// does (track meter + album meter); compare with
// `ffmpeg -nostats -i FILE -af ebur128=peak=true -f null -` on the same file.
func BenchmarkAnalyseTrack(b *testing.B) {
	dir := b.TempDir()
	path := synth(b, dir, "t.ogg", 60, 44100, 2, "pinknoise", "gain", "-12")
	root, err := os.OpenRoot(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer root.Close()
	fi, _ := os.Stat(path)
	rec := &fileRec{Path: "t.ogg", Size: fi.Size(), MtimeNS: fi.ModTime().UnixNano(), Rate: 44100, Channels: 2}
	var a analyser
	b.SetBytes(fi.Size())
	for b.Loop() {
		a.startAlbum()
		if _, err := a.measure(context.Background(), root, rec); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(60*float64(b.N)/b.Elapsed().Seconds(), "x_realtime")
	if os.Getenv("LIBRARY_BENCH_KEEP") != "" {
		b.Logf("file kept at %s", path)
	}
}

// BenchmarkAnalyseFormat is BenchmarkAnalyseTrack for each format: the
// same 60 s of pink noise as Ogg Vorbis, FLAC, MP3 and Opus.
func BenchmarkAnalyseFormat(b *testing.B) {
	dir := b.TempDir()
	sox := testenv.Tool(b, "sox", "sox")
	wav := filepath.Join(dir, "t.wav")
	runTool(b, sox, "-n", "-r", "44100", "-c", "2", "-b", "16", wav, "synth", "60", "pinknoise", "gain", "-12")
	files := map[string]string{"vorbis": synth(b, dir, "t.ogg", 60, 44100, 2, "pinknoise", "gain", "-12")}
	for _, ext := range []string{"flac", "mp3", "opus"} {
		files[ext] = filepath.Join(dir, "t."+ext)
		encodeAs(b, wav, files[ext], ext, "t", "a", "b", "1")
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer root.Close()
	for _, format := range []string{"vorbis", "flac", "mp3", "opus"} {
		b.Run(format, func(b *testing.B) {
			path := files[format]
			fi, _ := os.Stat(path)
			rate := 44100
			if format == "opus" {
				rate = 48000
			}
			rec := &fileRec{Path: filepath.Base(path), Size: fi.Size(), MtimeNS: fi.ModTime().UnixNano(), Rate: rate, Channels: 2}
			var a analyser
			b.SetBytes(fi.Size())
			for b.Loop() {
				a.startAlbum()
				if _, err := a.measure(context.Background(), root, rec); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(60*float64(b.N)/b.Elapsed().Seconds(), "x_realtime")
		})
	}
}
