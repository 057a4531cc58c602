package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestScanCommand(t *testing.T) {
	music := t.TempDir()
	for _, f := range []string{"gapless-01.ogg", "gapless-02.ogg", "levels-01.ogg"} {
		b, err := os.ReadFile(filepath.Join("../../demo", f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(music, f), b, 0o644)
	}
	os.WriteFile(filepath.Join(music, "broken.ogg"), []byte("OggS but not really"), 0o644)
	var out, errb bytes.Buffer
	state := t.TempDir()
	if err := run([]string{"scan", "--music", music, "--state-dir", state}, &out, &errb); err != nil {
		t.Fatalf("scan: %v\n%s", err, errb.String())
	}
	s := out.String()
	if !strings.Contains(s, "3 tracks in 2 albums, 3 measured") || !strings.Contains(s, "broken.ogg") {
		t.Fatalf("scan summary:\n%s", s)
	}
	if _, err := os.Stat(filepath.Join(state, "library.db")); err != nil {
		t.Fatal(err)
	}
	// A second scan reads nothing new.
	out.Reset()
	if err := run([]string{"scan", "--music", music, "--state-dir", state}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "0 decoded") {
		t.Fatalf("rescan decoded again:\n%s", out.String())
	}
	for _, args := range [][]string{{"scan"}, {"scan", "--music", filepath.Join(music, "nope")}} {
		if err := run(args, &out, &errb); err == nil {
			t.Errorf("%v succeeded", args)
		}
	}
}
