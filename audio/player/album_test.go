package player

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/roomcast/roomcast/audio/output"
	"github.com/roomcast/roomcast/playback"
)

// TestMain runs the tests, or, with ROOMCAST_ALBUM_DIR set, only the
// album measurement harness (playAlbum) for testdata/cpu_vs_mpd.sh.
func TestMain(m *testing.M) {
	if dir := os.Getenv("ROOMCAST_ALBUM_DIR"); dir != "" {
		if err := playAlbum(dir); err != nil {
			fmt.Fprintln(os.Stderr, "album harness:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// playAlbum plays the .ogg files of dir as an album to the null output
// (miniaudio's real-time null device; $ROOMCAST_ALBUM_OUTPUT picks
// another, e.g. wav:/dev/null, and $ROOMCAST_ALBUM_PERIOD_MS the device
// period) for $ROOMCAST_ALBUM_SECS seconds, like roomcastd would. It is the
// process whose CPU time and peak RSS testdata/cpu_vs_mpd.sh reads from
// /proc.
func playAlbum(dir string) error {
	secs, _ := strconv.Atoi(os.Getenv("ROOMCAST_ALBUM_SECS"))
	files, _ := filepath.Glob(filepath.Join(dir, "*.ogg"))
	sort.Strings(files)
	if len(files) == 0 || secs <= 0 {
		return errors.New("no .ogg files in ROOMCAST_ALBUM_DIR or no ROOMCAST_ALBUM_SECS")
	}
	src := newFileSource()
	var list []playback.Track
	for i, f := range files {
		list = append(list, src.add(strconv.Itoa(i), f))
	}
	spec := output.Spec{Kind: output.KindNull}
	if o := os.Getenv("ROOMCAST_ALBUM_OUTPUT"); o != "" {
		var err error
		if spec, err = output.ParseSpec(o); err != nil {
			return err
		}
	}
	periodMS, _ := strconv.Atoi(os.Getenv("ROOMCAST_ALBUM_PERIOD_MS")) // 0: the default
	p, err := New(Options{Source: src, Output: spec, PeriodMS: periodMS})
	if err != nil {
		return err
	}
	defer p.Close()
	idx := 0
	setNext := func() {
		if idx+1 < len(list) {
			p.SetNext(&list[idx+1], true)
		} else {
			p.SetNext(nil, true)
		}
	}
	if err := p.Load(list[0], true, 0, true); err != nil {
		return err
	}
	setNext()
	stop := time.After(time.Duration(secs) * time.Second)
	for {
		select {
		case ev := <-p.Events():
			switch ev.Kind {
			case playback.TrackStarted:
				idx++
				setNext()
			case playback.Ended, playback.TrackFailed:
				return fmt.Errorf("album ended early: %v %v", ev.URI, ev.Err)
			}
		case <-stop:
			uri, pos := p.Position()
			fmt.Printf("played %d s: at %s %d ms\n", secs, uri, pos)
			return nil
		}
	}
}
