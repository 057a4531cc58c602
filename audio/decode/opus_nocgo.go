//go:build !cgo

package decode

import "fmt"

// Without cgo there is no libopus: Opus files are refused.
type opusDecoder struct{ ch int }

func newOpusDecoder(channels, streams, coupled int, mapping []byte) (*opusDecoder, error) {
	return nil, fmt.Errorf("%w: Opus needs libopus, and this program was built without cgo", ErrUnsupported)
}

func (o *opusDecoder) decode(p []byte, pcm []float32, maxFrames int) (int, error) {
	return 0, ErrUnsupported
}

func (o *opusDecoder) close() {}
