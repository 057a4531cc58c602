package main

import (
	"bytes"
	"os"
	"testing"
)

func TestScratchScan(t *testing.T) {
	var out, errb bytes.Buffer
	err := scanCommand([]string{"--music", os.Getenv("SCRATCH_MUSIC"), "--state-dir", t.TempDir()}, &out, &errb)
	t.Logf("err=%v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	err = scanCommand([]string{}, &out, &errb)
	t.Logf("no music: %v", err)
	err = scanCommand([]string{"--music", "/nonexistent"}, &out, &errb)
	t.Logf("bad music: %v", err)
}
