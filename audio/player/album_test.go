package player

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/roomcast/roomcast/audio/output"
	"github.com/roomcast/roomcast/protocol"
	"github.com/roomcast/roomcast/receiver"
)

// TestAlbumNull plays the .ogg files of $ROOMCAST_ALBUM_DIR as an album to
// the null output (miniaudio's real-time null device) for
// $ROOMCAST_ALBUM_SECS seconds, like roomcastd would. It is a measurement
// harness for testdata/cpu_vs_mpd.sh (which reads this process's CPU time
// and peak RSS from /proc) and is skipped when the variable is unset.
func TestAlbumNull(t *testing.T) {
	dir := os.Getenv("ROOMCAST_ALBUM_DIR")
	if dir == "" {
		t.Skip("measurement harness: set ROOMCAST_ALBUM_DIR (see testdata/cpu_vs_mpd.sh)")
	}
	secs, _ := strconv.Atoi(os.Getenv("ROOMCAST_ALBUM_SECS"))
	files, _ := filepath.Glob(filepath.Join(dir, "*.ogg"))
	sort.Strings(files)
	if len(files) == 0 || secs <= 0 {
		t.Fatal("no .ogg files or no ROOMCAST_ALBUM_SECS")
	}
	var err error
	src := newFileSource()
	var list []protocol.Track
	for i, f := range files {
		list = append(list, src.add(strconv.Itoa(i), f))
	}
	spec := output.Spec{Kind: output.KindNull}
	if o := os.Getenv("ROOMCAST_ALBUM_OUTPUT"); o != "" { // e.g. wav:/dev/null, to compare sinks
		if spec, err = output.ParseSpec(o); err != nil {
			t.Fatal(err)
		}
	}
	periodMS, _ := strconv.Atoi(os.Getenv("ROOMCAST_ALBUM_PERIOD_MS")) // 0: the default
	p, err := New(Options{Source: src, Output: spec, PeriodMS: periodMS})
	if err != nil {
		t.Fatal(err)
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
		t.Fatal(err)
	}
	setNext()
	stop := time.After(time.Duration(secs) * time.Second)
	for {
		select {
		case ev := <-p.Events():
			switch ev.Kind {
			case receiver.TrackStarted:
				idx++
				setNext()
			case receiver.Ended, receiver.TrackFailed:
				t.Fatalf("album ended early: %v %v", ev.URI, ev.Err)
			}
		case <-stop:
			uri, pos := p.Position()
			t.Logf("played %d s: at %s %d ms", secs, uri, pos)
			return
		}
	}
}
