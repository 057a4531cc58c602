//go:build !linux

package library

import (
	"io/fs"
	"os"
)

// fileKey identifies a file; this platform provides none, so only the
// walk's depth limit protects it against symlink loops.
type fileKey struct{ dev, ino uint64 }

func keyOf(fs.FileInfo) (fileKey, bool) { return fileKey{}, false }

func changeTime(fs.FileInfo) int64 { return 0 }

// openFlags opens media files read-only.
const openFlags = os.O_RDONLY
