// Package fetch gets media from the broker: HTTP range requests that resume
// after a dropped connection, and an LRU disk cache so that replays and
// network loss are survived.
//
// A partially downloaded file lives under a ".part" name and is renamed to
// its final name only once its size matches what the server announced, so
// a partial file is never taken for a complete one.
package fetch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// DefaultCacheBytes is the default cache size cap (1 GiB).
const DefaultCacheBytes = 1 << 30

// Cache is a directory of complete media files, evicted least recently
// used first when their total size exceeds the cap. Safe for concurrent
// use; mu guards only the bookkeeping, never I/O of media bytes.
type Cache struct {
	dir string
	max int64 // 0: caching off (downloads go to temp files)

	mu sync.Mutex // guards inUse
	// inUse counts open readers per key; such entries are never evicted.
	inUse map[string]int
}

// OpenCache prepares dir as a cache of at most maxBytes (0 disables it:
// files are downloaded to temporary files removed on Close). Leftover
// .part files from a crash are removed.
func OpenCache(dir string, maxBytes int64) (*Cache, error) {
	if maxBytes < 0 {
		return nil, fmt.Errorf("fetch: cache size %d is negative", maxBytes)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("fetch: cache dir: %w", err)
	}
	c := &Cache{dir: dir, max: maxBytes, inUse: map[string]int{}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("fetch: cache dir: %w", err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".part") {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	return c, nil
}

// validKey reports whether key is safe as a file name: ids only, never a
// path.
func validKey(key string) bool {
	if key == "" || len(key) > 128 {
		return false
	}
	for _, r := range key {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func (c *Cache) path(key string) string { return filepath.Join(c.dir, key+".media") }

// lookup returns the complete cached file for key, marking it used now.
func (c *Cache) lookup(key string) (string, int64, bool) {
	if c.max == 0 {
		return "", 0, false
	}
	p := c.path(key)
	fi, err := os.Stat(p)
	if err != nil || !fi.Mode().IsRegular() {
		return "", 0, false
	}
	now := time.Now()
	_ = os.Chtimes(p, now, now) // LRU order is the modification time
	return p, fi.Size(), true
}

// partFile creates the download file for key: inside the cache as
// key.<random>.part, or a temp file when caching is off.
func (c *Cache) partFile(key string) (*os.File, error) {
	if c.max == 0 {
		return os.CreateTemp("", "roomcast-"+key+"-*.part")
	}
	return os.CreateTemp(c.dir, key+".*.part")
}

// commit turns a finished download into the cached file for key and
// evicts what no longer fits. With caching off it does nothing.
func (c *Cache) commit(key, partPath string) (string, error) {
	if c.max == 0 {
		return partPath, nil
	}
	final := c.path(key)
	if err := os.Rename(partPath, final); err != nil {
		return partPath, fmt.Errorf("fetch: cache: %w", err)
	}
	c.evict()
	return final, nil
}

func (c *Cache) acquire(key string) {
	c.mu.Lock()
	c.inUse[key]++
	c.mu.Unlock()
}

func (c *Cache) release(key string) {
	c.mu.Lock()
	if c.inUse[key]--; c.inUse[key] <= 0 {
		delete(c.inUse, key)
	}
	c.mu.Unlock()
}

// evict removes least recently used complete files until the total fits
// the cap. Files being read are kept (the cap may be exceeded by them).
func (c *Cache) evict() {
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return
	}
	type file struct {
		key  string
		size int64
		mod  time.Time
	}
	var files []file
	var total int64
	for _, e := range entries {
		key, ok := strings.CutSuffix(e.Name(), ".media")
		if !ok {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		files = append(files, file{key, fi.Size(), fi.ModTime()})
		total += fi.Size()
	}
	sort.Slice(files, func(i, j int) bool { return files[i].mod.Before(files[j].mod) })
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range files {
		if total <= c.max {
			return
		}
		if c.inUse[f.key] > 0 {
			continue
		}
		if err := os.Remove(c.path(f.key)); err == nil || errors.Is(err, os.ErrNotExist) {
			total -= f.size
		}
	}
}

// Size is the total size of the complete cached files.
func (c *Cache) Size() int64 {
	entries, _ := os.ReadDir(c.dir)
	var total int64
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".media") {
			if fi, err := e.Info(); err == nil {
				total += fi.Size()
			}
		}
	}
	return total
}
