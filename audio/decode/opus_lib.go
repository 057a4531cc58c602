//go:build cgo

package decode

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>

// libopus is loaded at run time (like miniaudio loads libasound), so the
// build needs no libopus headers or foreign-architecture libraries; the
// packages depend on libopus0 instead.
typedef struct OpusMSDecoder OpusMSDecoder;
static void *rc_opus;
static OpusMSDecoder *(*rc_create)(int, int, int, int, const unsigned char *, int *);
static int (*rc_decode)(OpusMSDecoder *, const unsigned char *, int, float *, int, int);
static void (*rc_destroy)(OpusMSDecoder *);

static int rc_opus_load(void) {
	if (rc_opus) return 0;
	void *h = dlopen("libopus.so.0", RTLD_NOW | RTLD_LOCAL);
	if (!h) return -1;
	rc_create = dlsym(h, "opus_multistream_decoder_create");
	rc_decode = dlsym(h, "opus_multistream_decode_float");
	rc_destroy = dlsym(h, "opus_multistream_decoder_destroy");
	if (!rc_create || !rc_decode || !rc_destroy) { dlclose(h); return -2; }
	rc_opus = h;
	return 0;
}
static OpusMSDecoder *rc_opus_create(int channels, int streams, int coupled, const unsigned char *mapping, int *err) {
	return rc_create(48000, channels, streams, coupled, mapping, err);
}
static int rc_opus_decode(OpusMSDecoder *d, const unsigned char *p, int n, float *pcm, int frames) {
	return rc_decode(d, p, n, pcm, frames, 0);
}
static void rc_opus_destroy(OpusMSDecoder *d) { rc_destroy(d); }
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"
)

var (
	opusLoadOnce sync.Once
	opusLoadErr  error
)

// loadOpus loads the system libopus once.
func loadOpus() error {
	opusLoadOnce.Do(func() {
		if C.rc_opus_load() != 0 {
			opusLoadErr = fmt.Errorf("%w: Opus needs the system libopus (libopus.so.0, Debian package libopus0)", ErrUnsupported)
		}
	})
	return opusLoadErr
}

// opusDecoder is one libopus multistream decoder at 48 kHz. Not safe for
// concurrent use.
type opusDecoder struct {
	d  *C.OpusMSDecoder
	ch int
}

func newOpusDecoder(channels, streams, coupled int, mapping []byte) (*opusDecoder, error) {
	if err := loadOpus(); err != nil {
		return nil, err
	}
	var cerr C.int
	d := C.rc_opus_create(C.int(channels), C.int(streams), C.int(coupled), (*C.uchar)(unsafe.Pointer(&mapping[0])), &cerr)
	if d == nil || cerr != 0 {
		return nil, fmt.Errorf("%w: libopus refuses the channel mapping (error %d)", ErrCorrupt, int(cerr))
	}
	return &opusDecoder{d: d, ch: channels}, nil
}

// decode decodes one packet into pcm (room for maxFrames frames) and
// returns the frames decoded.
func (o *opusDecoder) decode(p []byte, pcm []float32, maxFrames int) (int, error) {
	if len(p) == 0 || len(pcm) < maxFrames*o.ch {
		return 0, fmt.Errorf("%w: empty Opus packet", ErrCorrupt)
	}
	n := C.rc_opus_decode(o.d, (*C.uchar)(unsafe.Pointer(&p[0])), C.int(len(p)), (*C.float)(unsafe.Pointer(&pcm[0])), C.int(maxFrames))
	if n < 0 {
		return 0, fmt.Errorf("%w: libopus error %d", ErrCorrupt, int(n))
	}
	return int(n), nil
}

func (o *opusDecoder) close() {
	if o != nil && o.d != nil {
		C.rc_opus_destroy(o.d)
		o.d = nil
	}
}
