// Package buildinfo reports the version, commit and build target that the
// Makefile stamps into every binary with -ldflags -X.
package buildinfo

import (
	"fmt"
	"runtime"
)

// Set at link time: -X github.com/roomcast/roomcast/buildinfo.Version=...
var (
	Version = "dev"
	Commit  = "unknown"
)

// String is the one line every command prints for --version.
func String(program string) string {
	return fmt.Sprintf("%s %s (commit %s, %s/%s, %s)", program, Version, Commit, runtime.GOOS, runtime.GOARCH, runtime.Version())
}
