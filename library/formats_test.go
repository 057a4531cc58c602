package library

import (
	"database/sql"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/roomcast/roomcast/internal/testenv"
)

// encodeAs encodes a WAV into format ext ("flac", "mp3", "opus") with
// the reference encoders and the given title/artist/album/track tags.
func encodeAs(t testing.TB, wav, out, ext, title, artist, album, track string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	switch ext {
	case "flac":
		runTool(t, testenv.Tool(t, "flac", "flac"), "-s", "-f", "-T", "TITLE="+title, "-T", "ARTIST="+artist,
			"-T", "ALBUM="+album, "-T", "TRACKNUMBER="+track, "-o", out, wav)
	case "mp3":
		runTool(t, testenv.Tool(t, "ffmpeg", "ffmpeg"), "-loglevel", "error", "-y", "-i", wav, "-c:a", "libmp3lame",
			"-b:a", "192k", "-metadata", "title="+title, "-metadata", "artist="+artist, "-metadata", "album="+album,
			"-metadata", "track="+track, out)
	case "opus":
		runTool(t, testenv.Tool(t, "opusenc", "opus-tools"), "--quiet", "--title", title, "--artist", artist,
			"--album", album, "--comment", "TRACKNUMBER="+track, wav, out)
	default:
		t.Fatalf("no encoder for %s", ext)
	}
}

// TestFormats scans a folder with an album in each format (tracks at
// about -30, -20 and -8 LUFS) plus files we cannot play, and checks tags,
// stream parameters, the unsupported-format report, and that the
// loudness of every track and album agrees with ffmpeg's ebur128 on the
// same files within 0.1 LU.
func TestFormats(t *testing.T) {
	ffmpeg := testenv.Tool(t, "ffmpeg", "ffmpeg")
	sox := testenv.Tool(t, "sox", "sox")
	music := t.TempDir()
	// About -30 and -20 LUFS of pink noise, and a -8 LUFS sine (pink
	// noise that loud would clip).
	levels := [][]string{{"pinknoise", "gain", "-19.5"}, {"pinknoise", "gain", "-9.5"}, {"sine", "997", "gain", "-8"}}
	formats := []struct {
		ext, codec string
		rate, bits int
	}{
		{"flac", "flac", 96000, 24},
		{"mp3", "mp3", 44100, 0},
		{"opus", "opus", 48000, 0},
	}
	files := map[string][]string{}
	for _, f := range formats {
		for i, g := range levels {
			wav := filepath.Join(t.TempDir(), "s.wav")
			runTool(t, sox, append([]string{"-n", "-r", itoa(f.rate), "-c", "2", "-b", itoa(max(f.bits, 16)), wav, "synth", "6.3"}, g...)...)
			out := filepath.Join(music, f.ext, itoa(i+1)+"."+f.ext)
			encodeAs(t, wav, out, f.ext, "T"+itoa(i+1), "X", "Album "+f.ext, itoa(i+1))
			files[f.ext] = append(files[f.ext], out)
		}
	}
	for _, name := range []string{"other/a.m4a", "other/b.m4a", "other/c.WAV"} {
		p := filepath.Join(music, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("\x00\x00\x00\x20ftypM4A "), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l := openLib(t, music)
	st := runOnce(t, l)
	if st.Tracks != 9 {
		t.Fatalf("%d tracks, want 9: %+v", st.Tracks, st.Failures)
	}
	want := []FormatCount{{".m4a", 2}, {".wav", 1}}
	if len(st.Unsupported) != 2 || st.Unsupported[0] != want[0] || st.Unsupported[1] != want[1] {
		t.Errorf("unsupported = %+v, want %+v", st.Unsupported, want)
	}
	for _, p := range []string{"other/a.m4a", "other/b.m4a", "other/c.WAV"} {
		if f, ok := failureFor(st.Failures, p); !ok || !strings.Contains(f.Reason, "unsupported format") {
			t.Errorf("%s not reported as unsupported: %+v", p, st.Failures)
		}
	}
	for _, f := range formats {
		t.Run(f.ext, func(t *testing.T) {
			tracks, ok := l.Album(albumID("X", "Album "+f.ext))
			if !ok || len(tracks) != 3 {
				t.Fatalf("album: %d tracks", len(tracks))
			}
			for i, tr := range tracks {
				info := l.cat.Load().trackBy[strings.TrimPrefix(tr.URI, TrackURIPrefix)]
				if info == nil {
					t.Fatalf("track %d: no catalog entry", i)
				}
				if tr.Title != "T"+itoa(i+1) || tr.TrackNumber != i+1 || info.Codec != f.codec || info.SampleRate != f.rate ||
					info.BitDepth != f.bits || info.Channels != 2 {
					t.Errorf("track %d: %+v", i, *info)
				}
				if d := tr.DurationMS; d < 6290 || d > 6310 {
					t.Errorf("track %d: %d ms, want 6300", i, d)
				}
				if tr.LoudnessLUFS == nil {
					t.Fatalf("track %d not measured", i)
				}
				ffI, _ := ffmpegR128(t, ffmpeg, "-i", files[f.ext][i])
				t.Logf("%s: ours %.2f LUFS, ffmpeg %.1f", filepath.Base(files[f.ext][i]), *tr.LoudnessLUFS, ffI)
				if math.Abs(*tr.LoudnessLUFS-ffI) > 0.1 {
					t.Errorf("track %d: %.2f LUFS, ffmpeg %.1f", i, *tr.LoudnessLUFS, ffI)
				}
				if want := -30 + 11*float64(i); math.Abs(*tr.LoudnessLUFS-want) > 2 {
					t.Errorf("track %d: %.1f LUFS, the test wants about %.0f", i, *tr.LoudnessLUFS, want)
				}
			}
			list := filepath.Join(t.TempDir(), "list.txt")
			var b strings.Builder
			for _, p := range files[f.ext] {
				b.WriteString("file '" + p + "'\n")
			}
			os.WriteFile(list, []byte(b.String()), 0o644)
			ffI, _ := ffmpegR128(t, ffmpeg, "-f", "concat", "-safe", "0", "-i", list)
			al := tracks[0].AlbumLoudnessLUFS
			if al == nil {
				t.Fatal("album not measured")
			}
			t.Logf("album: ours %.2f LUFS, ffmpeg on the concatenation %.1f", *al, ffI)
			if math.Abs(*al-ffI) > 0.1 {
				t.Errorf("album %.2f LUFS, ffmpeg on the concatenation %.1f", *al, ffI)
			}
		})
	}
}

// TestSchema1Migration: an index written by schema 1 (Vorbis only, no
// format columns) is migrated in place: tracks stay analysed (nothing is
// decoded again) and are marked vorbis.
func TestSchema1Migration(t *testing.T) {
	music, state := t.TempDir(), t.TempDir()
	f := synth(t, music, "A/1.ogg", 1, 44100, 2, "sine", "440")
	retag(t, f, "TITLE=One", "ARTIST=X", "ALBUM=A")
	l := openLibState(t, music, state)
	runOnce(t, l)
	l.Close()
	db, err := sql.Open("sqlite", filepath.Join(state, "library.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`ALTER TABLE files DROP COLUMN codec`, `ALTER TABLE files DROP COLUMN bit_depth`,
		`UPDATE meta SET value = '1' WHERE key = 'schema'`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	l2 := openLibState(t, music, state)
	st := runOnce(t, l2)
	if st.Tracks != 1 || st.Decoded != 0 || st.FilesRead != 0 {
		t.Fatalf("after migration: %d tracks, %d decoded, %d read; want 1, 0, 0", st.Tracks, st.Decoded, st.FilesRead)
	}
	for _, info := range l2.cat.Load().trackBy {
		if info.Codec != "vorbis" || !info.Analysed {
			t.Errorf("migrated track: codec %q, analysed %v", info.Codec, info.Analysed)
		}
	}
}
