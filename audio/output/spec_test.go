package output

import (
	"errors"
	"strings"
	"testing"
)

func TestParseSpec(t *testing.T) {
	long := strings.Repeat("x", maxDeviceLen)
	tests := []struct {
		in      string
		want    Spec
		wantErr string // substring of the error; "" for success
	}{
		{in: "auto", want: Spec{Kind: KindAuto}},
		{in: "AUTO", want: Spec{Kind: KindAuto}},
		{in: "null", want: Spec{Kind: KindNull}},
		{in: "alsa", want: Spec{Kind: KindALSA}},
		{in: "alsa:hw:1,0", want: Spec{Kind: KindALSA, Device: "hw:1,0"}},
		{in: "alsa:plughw:CARD=DAC,DEV=0", want: Spec{Kind: KindALSA, Device: "plughw:CARD=DAC,DEV=0"}},
		{in: "alsa::0,0", want: Spec{Kind: KindALSA, Device: ":0,0"}},
		{in: "Alsa:default", want: Spec{Kind: KindALSA, Device: "default"}},
		{in: "pulse", want: Spec{Kind: KindPulse}},
		{in: "pulse:alsa_output.usb-DAC.analog-stereo", want: Spec{Kind: KindPulse, Device: "alsa_output.usb-DAC.analog-stereo"}},
		{in: "pulse:" + long, want: Spec{Kind: KindPulse, Device: long}},
		{in: "wav:/tmp/out.wav", want: Spec{Kind: KindWAV, Path: "/tmp/out.wav"}},
		{in: "wav:rel/a:b.wav", want: Spec{Kind: KindWAV, Path: "rel/a:b.wav"}},
		{in: "wav:with space.wav", want: Spec{Kind: KindWAV, Path: "with space.wav"}},

		{in: "", wantErr: "empty"},
		{in: "oss", wantErr: `unknown output "oss"`},
		{in: " alsa", wantErr: "unknown output"},
		{in: "auto:x", wantErr: "auto takes no argument"},
		{in: "null:", wantErr: "null takes no argument"},
		{in: "alsa:", wantErr: "empty device"},
		{in: "pulse:" + long + "y", wantErr: "longer than 255 bytes"},
		{in: "pulse:a\x00b", wantErr: "control character"},
		{in: "alsa:hw\n0", wantErr: "control character"},
		{in: "wav", wantErr: "wav needs a path"},
		{in: "wav:", wantErr: "empty path"},
		{in: "wav:\xff.wav", wantErr: "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSpec(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrBadSpec) {
					t.Fatalf("ParseSpec(%q) = %+v, %v; want error containing %q wrapping ErrBadSpec", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseSpec(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
			if again, err := ParseSpec(got.String()); err != nil || again != got {
				t.Fatalf("round trip %q -> %q -> %+v, %v", tt.in, got.String(), again, err)
			}
		})
	}
}

// FuzzParseSpec checks that ParseSpec never panics, that errors wrap
// ErrBadSpec, and that accepted specs survive String and keep the
// invariants the drivers rely on.
func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{"auto", "alsa", "alsa:hw:1,0", "pulse:sink", "null", "wav:/tmp/x.wav", "wav:", "", ":", "ALSA::", "pulse:\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		spec, err := ParseSpec(s)
		if err != nil {
			if !errors.Is(err, ErrBadSpec) {
				t.Fatalf("ParseSpec(%q): error %v does not wrap ErrBadSpec", s, err)
			}
			return
		}
		again, err := ParseSpec(spec.String())
		if err != nil || again != spec {
			t.Fatalf("ParseSpec(%q) = %+v; String %q parses to %+v, %v", s, spec, spec.String(), again, err)
		}
		switch spec.Kind {
		case KindALSA, KindPulse:
			if len(spec.Device) > maxDeviceLen || strings.IndexByte(spec.Device, 0) >= 0 || spec.Path != "" {
				t.Fatalf("ParseSpec(%q) = %+v: device unusable as a C string id", s, spec)
			}
		case KindWAV:
			if spec.Path == "" || spec.Device != "" {
				t.Fatalf("ParseSpec(%q) = %+v", s, spec)
			}
		case KindAuto, KindNull:
			if spec.Device != "" || spec.Path != "" {
				t.Fatalf("ParseSpec(%q) = %+v", s, spec)
			}
		default:
			t.Fatalf("ParseSpec(%q) = %+v: unknown kind accepted", s, spec)
		}
	})
}
