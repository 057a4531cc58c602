package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Errors a File's Read may return besides I/O errors.
var (
	// ErrChanged: the file changed on the server while it was being read.
	ErrChanged = errors.New("fetch: media changed on the server during download")
	// ErrClosed: Read after Close.
	ErrClosed = errors.New("fetch: file closed")
)

// StatusError is an HTTP answer that retrying cannot fix (401, 404, ...).
type StatusError struct {
	Status int
	URL    string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("fetch %s: HTTP %d %s", e.URL, e.Status, http.StatusText(e.Status))
}

// Fetcher opens media by id from a broker. Safe for concurrent use.
type Fetcher struct {
	// Base is the broker URL (http://host:port); media is at
	// Base/v1/media/<id>.
	Base  string
	Token string
	Cache *Cache
	// Client defaults to an http.Client without overall timeout (a
	// download may be long); stalls are caught by StallTimeout.
	Client *http.Client
	Log    *slog.Logger
	// RetryFor bounds how long a download keeps retrying after the
	// connection drops (default 60 s); backoff grows from 100 ms to 5 s.
	RetryFor time.Duration
	// StallTimeout aborts (and retries) a response that delivers no byte
	// for this long (default 10 s).
	StallTimeout time.Duration
	// NearBytes: a read this far past the downloaded part waits for the
	// download; farther reads (a decoder looking at the end of the file)
	// are served by their own range request. Default 256 KiB.
	NearBytes int64
}

func (f *Fetcher) defaults() {
	if f.Client == nil {
		f.Client = &http.Client{}
	}
	if f.Log == nil {
		f.Log = slog.New(slog.DiscardHandler)
	}
	if f.RetryFor <= 0 {
		f.RetryFor = time.Minute
	}
	if f.StallTimeout <= 0 {
		f.StallTimeout = 10 * time.Second
	}
	if f.NearBytes <= 0 {
		f.NearBytes = 256 << 10
	}
}

func (f *Fetcher) url(id string) string {
	return strings.TrimSuffix(f.Base, "/") + "/v1/media/" + id
}

// Open returns a reader of media id. A complete cached copy is used
// without touching the network; otherwise a download starts in the
// background and reads wait for the bytes they need. The first response's
// headers are awaited, so a bad token or unknown id fails here.
func (f *Fetcher) Open(ctx context.Context, id string) (*File, error) {
	f.defaults()
	if !validKey(id) {
		return nil, fmt.Errorf("fetch: invalid media id %q", id)
	}
	f.Cache.acquire(id)
	if p, size, ok := f.Cache.lookup(id); ok {
		fd, err := os.Open(p)
		if err == nil {
			return &File{f: f, id: id, fd: fd, size: size, done: true, downloaded: size}, nil
		}
	}
	part, err := f.Cache.partFile(id)
	if err != nil {
		f.Cache.release(id)
		return nil, fmt.Errorf("fetch: %w", err)
	}
	dctx, cancel := context.WithCancel(context.Background())
	file := &File{f: f, id: id, fd: part, size: -1, cancel: cancel, partPath: part.Name(), finished: make(chan struct{})}
	file.cond = sync.NewCond(&file.mu)
	started := make(chan error, 1)
	go file.download(dctx, started)
	select {
	case err := <-started:
		if err != nil {
			file.Close()
			return nil, err
		}
	case <-ctx.Done():
		file.Close()
		return nil, ctx.Err()
	}
	return file, nil
}

// File is one opened medium: io.ReadSeekCloser. Not safe for concurrent
// Read/Seek (one decoder owns it); Close may be called from any goroutine.
type File struct {
	f        *Fetcher
	id       string
	fd       *os.File // the cached file, or the .part being written
	partPath string
	cancel   context.CancelFunc
	finished chan struct{} // closed when the download goroutine has ended
	off      int64         // reader's offset; reader goroutine only

	mu   sync.Mutex // guards the fields below; cond signals changes
	cond *sync.Cond
	// downloaded bytes [0, downloaded) are in fd; size is the total (-1
	// until known); done means fully downloaded; err ends the download.
	downloaded, size int64
	done             bool
	err              error
	closed           bool
	consumed         bool // bytes were handed to the reader
}

// Size is the total size, or -1 when not known yet.
func (fl *File) Size() int64 {
	if fl.cond == nil {
		return fl.size
	}
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return fl.size
}

// Cached reports whether the whole file is on disk.
func (fl *File) Cached() bool {
	if fl.cond == nil {
		return true
	}
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return fl.done
}

// Seek implements io.Seeker.
func (fl *File) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = fl.off + offset
	case io.SeekEnd:
		size := fl.Size()
		if size < 0 {
			return 0, errors.New("fetch: seek from end: size unknown")
		}
		abs = size + offset
	default:
		return 0, errors.New("fetch: bad whence")
	}
	if abs < 0 {
		return 0, errors.New("fetch: negative position")
	}
	fl.off = abs
	return abs, nil
}

// Read implements io.Reader, waiting for the download where needed.
func (fl *File) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if fl.cond == nil { // complete cached file
		n, err := fl.fd.ReadAt(p, fl.off)
		fl.off += int64(n)
		if err == io.EOF && n > 0 {
			err = nil
		}
		return n, err
	}
	fl.mu.Lock()
	for {
		switch {
		case fl.closed:
			fl.mu.Unlock()
			return 0, ErrClosed
		case fl.off < fl.downloaded:
			n := int64(len(p))
			if rest := fl.downloaded - fl.off; rest < n {
				n = rest
			}
			fl.consumed = true
			fl.mu.Unlock()
			got, err := fl.fd.ReadAt(p[:n], fl.off)
			fl.off += int64(got)
			if err == io.EOF && got > 0 {
				err = nil
			}
			return got, err
		case fl.size >= 0 && fl.off >= fl.size:
			fl.mu.Unlock()
			return 0, io.EOF
		case fl.err != nil:
			err := fl.err
			fl.mu.Unlock()
			return 0, err
		case fl.size >= 0 && fl.off > fl.downloaded+fl.f.NearBytes:
			fl.mu.Unlock()
			return fl.readDirect(p)
		}
		fl.cond.Wait()
	}
}

// readDirect serves a read far ahead of the download with its own range
// request (e.g. a decoder reading the last page for the duration).
func (fl *File) readDirect(p []byte) (int, error) {
	want := int64(max(len(p), 64<<10))
	req, err := http.NewRequest("GET", fl.f.url(fl.id), nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+fl.f.Token)
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", fl.off, fl.off+want-1))
	resp, err := fl.f.Client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("fetch %s: %w", fl.id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		return 0, &StatusError{Status: resp.StatusCode, URL: fl.f.url(fl.id)}
	}
	n, err := io.ReadFull(resp.Body, p[:min(int64(len(p)), want)])
	if err == io.ErrUnexpectedEOF && n > 0 {
		err = nil
	}
	fl.off += int64(n)
	return n, err
}

// Close stops the download; an incomplete download is deleted.
func (fl *File) Close() error {
	if fl.cond == nil {
		fl.f.Cache.release(fl.id)
		return fl.fd.Close()
	}
	fl.mu.Lock()
	if fl.closed {
		fl.mu.Unlock()
		return nil
	}
	fl.closed = true
	complete := fl.size >= 0 && fl.downloaded == fl.size
	fl.cond.Broadcast()
	fl.mu.Unlock()
	// A download with every byte in is let finish, so it reaches the
	// cache; any other is stopped.
	if !complete {
		fl.cancel()
	}
	<-fl.finished
	fl.mu.Lock()
	done, path := fl.done, fl.partPath
	fl.mu.Unlock()
	err := fl.fd.Close()
	if !done || fl.f.Cache.max == 0 {
		_ = os.Remove(path)
	}
	fl.f.Cache.release(fl.id)
	return err
}

// download fetches the file into fd, resuming with Range after errors,
// and reports the first response (or a permanent error) on started.
func (fl *File) download(ctx context.Context, started chan<- error) {
	defer close(fl.finished)
	f := fl.f
	var etag string
	backoff := 100 * time.Millisecond
	var failingSince time.Time
	first := true
	fail := func(err error) {
		fl.mu.Lock()
		if fl.err == nil {
			fl.err = err
		}
		fl.cond.Broadcast()
		fl.mu.Unlock()
		if first {
			started <- err
		}
	}
	for {
		fl.mu.Lock()
		from := fl.downloaded
		fl.mu.Unlock()
		n, total, tag, err := fl.fetchFrom(ctx, from, etag, func() {
			if first {
				first = false
				started <- nil
			}
		})
		if tag != "" {
			etag = tag
		}
		if total >= 0 {
			fl.mu.Lock()
			fl.size = total
			fl.mu.Unlock()
		}
		if n > 0 {
			failingSince, backoff = time.Time{}, 100*time.Millisecond
		}
		if err == nil {
			break
		}
		var se *StatusError
		switch {
		case ctx.Err() != nil:
			fail(ErrClosed)
			return
		case errors.As(err, &se), errors.Is(err, ErrChanged):
			fail(err)
			return
		}
		if failingSince.IsZero() {
			failingSince = time.Now()
		}
		if time.Since(failingSince) > f.RetryFor {
			fail(fmt.Errorf("fetch %s: giving up after %s: %w", fl.id, f.RetryFor, err))
			return
		}
		f.Log.Warn("media download interrupted; resuming", "id", fl.id, "at", from+n, "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			fail(ErrClosed)
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
	// Complete: hand it to the cache. (Once done is set, Close no longer
	// deletes the file, so the rename below cannot race with it.)
	fl.mu.Lock()
	fl.done = true
	fl.size = fl.downloaded
	path := fl.partPath
	fl.cond.Broadcast()
	fl.mu.Unlock()
	if final, err := f.Cache.commit(fl.id, path); err != nil {
		f.Log.Warn("media not cached", "id", fl.id, "err", err)
	} else {
		fl.mu.Lock()
		fl.partPath = final
		fl.mu.Unlock()
	}
}

// fetchFrom performs one GET from offset from and appends the body to fd.
// It returns the bytes appended, the total size (-1 if unknown), the ETag,
// and nil once the whole file is downloaded.
func (fl *File) fetchFrom(ctx context.Context, from int64, etag string, onResponse func()) (int64, int64, string, error) {
	f := fl.f
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, "GET", f.url(fl.id), nil)
	if err != nil {
		return 0, -1, "", err
	}
	req.Header.Set("Authorization", "Bearer "+f.Token)
	if from > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", from))
		if etag != "" {
			req.Header.Set("If-Range", etag)
		}
	}
	resp, err := f.Client.Do(req)
	if err != nil {
		return 0, -1, "", err
	}
	defer resp.Body.Close()
	total := int64(-1)
	switch {
	case resp.StatusCode == http.StatusOK:
		if from > 0 {
			// The server sent the whole file: it changed since we began.
			fl.mu.Lock()
			consumed := fl.consumed
			if !consumed {
				fl.downloaded = 0
			}
			fl.mu.Unlock()
			if consumed {
				return 0, -1, "", ErrChanged
			}
			from = 0
		}
		if resp.ContentLength >= 0 {
			total = resp.ContentLength
		}
	case resp.StatusCode == http.StatusPartialContent:
		start, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != from {
			return 0, -1, "", fmt.Errorf("fetch %s: bad Content-Range %q for offset %d", fl.id, resp.Header.Get("Content-Range"), from)
		}
		total = size
	default:
		return 0, -1, "", &StatusError{Status: resp.StatusCode, URL: f.url(fl.id)}
	}
	if total >= 0 {
		fl.mu.Lock()
		fl.size = total
		fl.mu.Unlock()
	}
	onResponse()
	tag := resp.Header.Get("ETag")

	// A watchdog cancels a response that stops delivering bytes.
	progress := make(chan struct{}, 1)
	go func() {
		t := time.NewTimer(f.StallTimeout)
		defer t.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-progress:
				t.Reset(f.StallTimeout)
			case <-t.C:
				cancel()
				return
			}
		}
	}()
	buf := make([]byte, 64<<10)
	var n int64
	for {
		m, rerr := resp.Body.Read(buf)
		if m > 0 {
			if _, err := fl.fd.WriteAt(buf[:m], from+n); err != nil {
				return n, total, tag, fmt.Errorf("fetch %s: write cache: %w", fl.id, err)
			}
			n += int64(m)
			fl.mu.Lock()
			fl.downloaded = from + n
			fl.cond.Broadcast()
			fl.mu.Unlock()
			select {
			case progress <- struct{}{}:
			default:
			}
		}
		if rerr == io.EOF {
			if total >= 0 && from+n != total {
				return n, total, tag, fmt.Errorf("fetch %s: body ended at %d of %d", fl.id, from+n, total)
			}
			return n, total, tag, nil
		}
		if rerr != nil {
			return n, total, tag, rerr
		}
	}
}

// parseContentRange parses "bytes START-END/SIZE".
func parseContentRange(s string) (start, size int64, ok bool) {
	rest, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, total, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	a, b, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	size, err3 := strconv.ParseInt(total, 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || start < 0 || end < start || end >= size {
		return 0, 0, false
	}
	return start, size, true
}
