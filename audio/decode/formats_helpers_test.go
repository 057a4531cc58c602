package decode

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// readAll decodes a Decoder to its end with Read calls of chunk frames
// and returns the samples and the error that ended decoding (nil for
// io.EOF).
func readAll(d Decoder, chunk int) ([]float32, error) {
	buf := make([]float32, chunk*d.Channels())
	var all []float32
	for {
		n, err := d.Read(buf)
		all = append(all, buf[:n]...)
		if err == io.EOF {
			return all, nil
		}
		if err != nil {
			return all, err
		}
		if n == 0 {
			return all, errors.New("Read returned 0, nil")
		}
	}
}

// openAll opens data by sniffing and decodes it completely.
func openAll(t testing.TB, data []byte, chunk int) (Decoder, []float32) {
	t.Helper()
	d, err := Open(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	pcm, err := readAll(d, chunk)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return d, pcm
}

// toolOutput runs a command and returns its standard output; it fails
// the test (with the command's standard error) on error.
func toolOutput(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, stderr.Bytes())
	}
	return out
}

// rawInts decodes little-endian signed integer PCM of bytesPer bytes.
func rawInts(b []byte, bytesPer int) []int32 {
	out := make([]int32, len(b)/bytesPer)
	for i := range out {
		p := b[i*bytesPer:]
		var v uint32
		for j := bytesPer - 1; j >= 0; j-- {
			v = v<<8 | uint32(p[j])
		}
		shift := 32 - 8*bytesPer
		out[i] = int32(v<<shift) >> shift
	}
	return out
}

// rawFloats decodes little-endian float32 PCM.
func rawFloats(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// writeTemp writes data to a file in a temporary directory.
func writeTemp(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// fuzzDecoder is the body of the per-format fuzz targets: any input opens
// (or fails with one of the package's sentinels), decodes to a bounded
// number of samples with consistent frame accounting, seeks, and decodes
// forward only, without panicking or hanging.
func fuzzDecoder(t *testing.T, data []byte) {
	hang := time.AfterFunc(20*time.Second, func() {
		os.WriteFile(filepath.Join(os.TempDir(), "decode-fuzz-hang.bin"), data, 0o644)
		panic("fuzz: input takes more than 20 s")
	})
	defer hang.Stop()
	checkErr := func(err error) {
		if err == nil || err == io.EOF {
			return
		}
		for _, want := range []error{ErrUnknownFormat, ErrUnsupported, ErrNotVorbis, ErrCorrupt, ErrTruncated, ErrChained} {
			if errors.Is(err, want) {
				return
			}
		}
		t.Fatalf("error wraps no sentinel: %v", err)
	}
	d, err := Open(bytes.NewReader(data))
	checkErr(err)
	if err != nil {
		return
	}
	if d.Channels() < 1 || d.SampleRate() < 1 {
		t.Fatalf("channels %d, rate %d", d.Channels(), d.SampleRate())
	}
	buf := make([]float32, 1000*d.Channels())
	total := 0
	for total < fuzzSampleBudget {
		n, err := d.Read(buf)
		total += n
		if n%d.Channels() != 0 {
			t.Fatalf("Read returned %d samples for %d channels", n, d.Channels())
		}
		if err != nil {
			checkErr(err)
			break
		}
	}
	frames := int64(total / d.Channels())
	if d.Position() != frames {
		t.Fatalf("Position() = %d after %d frames", d.Position(), frames)
	}
	if total < fuzzSampleBudget && d.Len() >= 0 && frames > d.Len() {
		t.Fatalf("decoded %d frames, Len() = %d", frames, d.Len())
	}
	if n := d.Len(); n > 0 {
		for _, f := range []int64{n / 2, n - 1, 0, n} {
			err := d.SeekFrame(f)
			checkErr(err)
			if err != nil {
				continue
			}
			if d.Position() != f {
				t.Fatalf("Position() = %d after SeekFrame(%d)", d.Position(), f)
			}
			_, err = d.Read(buf)
			checkErr(err)
		}
	}
	_ = d.Tags()
	r, err := NewReader(bytes.NewReader(data))
	checkErr(err)
	if err != nil {
		return
	}
	total = 0
	for total < fuzzSampleBudget {
		n, err := r.Read(buf[:len(buf)/r.Channels()*r.Channels()])
		total += n
		if err != nil {
			checkErr(err)
			break
		}
	}
}

// truncations returns data cut at a spread of lengths and with its middle
// overwritten by garbage: inputs every decoder must survive.
func truncations(data []byte) [][]byte {
	var out [][]byte
	for _, frac := range []float64{0, 0.001, 0.01, 0.1, 0.33, 0.5, 0.9, 0.999} {
		out = append(out, data[:int(float64(len(data))*frac)])
	}
	g := bytes.Clone(data)
	for i := len(g) / 3; i < len(g)/3+4096 && i < len(g); i++ {
		g[i] = byte(i * 7919)
	}
	return append(out, g)
}

func base64Decode(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }
