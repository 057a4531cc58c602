package decode

import "io"

func openOpus(io.Reader, io.ReadSeeker) (Decoder, error) { return nil, ErrUnsupported }
