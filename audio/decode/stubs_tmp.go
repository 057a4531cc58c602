package decode

import "io"

func validMPEGHeader(uint32) bool                        { return false }
func openOpus(io.Reader, io.ReadSeeker) (Decoder, error) { return nil, ErrUnsupported }
func openMP3(io.Reader, io.ReadSeeker) (Decoder, error)  { return nil, ErrUnsupported }
