//go:build linux

package library

import (
	"io/fs"
	"os"
	"syscall"
)

// fileKey identifies a file or directory on this machine (device and
// inode), so the walk can recognise a directory it has already entered
// through a symlink, and a file it has already indexed under another name.
type fileKey struct{ dev, ino uint64 }

// keyOf returns fi's identity; ok is false where the platform does not
// provide one.
func keyOf(fi fs.FileInfo) (k fileKey, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileKey{}, false
	}
	return fileKey{dev: uint64(st.Dev), ino: uint64(st.Ino)}, true
}

// changeTime returns fi's inode change time (ctime) in nanoseconds, or 0.
// Unlike the modification time it cannot be set back by a program, so
// the media handler uses it to notice a file rewritten in place.
func changeTime(fi fs.FileInfo) int64 {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0
	}
	return st.Ctim.Nano()
}

// openFlags opens media files without blocking: a FIFO named like a
// track must not hang the scanner (it is then refused as not regular).
const openFlags = os.O_RDONLY | syscall.O_NONBLOCK
