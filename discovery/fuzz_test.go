package discovery

import (
	"bytes"
	"crypto/ecdh"
	"strings"
	"testing"
)

// FuzzParseTXT: ParseTXT never panics, and what it accepts survives an
// EncodeTXT/ParseTXT round trip unchanged. The fuzzer's input is split on
// newlines into TXT strings.
func FuzzParseTXT(f *testing.F) {
	f.Add(strings.Join(goodTXT(), "\n"))
	f.Add("txtvers=1\nid=rc-1\ntype=speaker\npv=1\npaired=yes\ninfo=/v1/info\nextra=\n\n")
	f.Add("TXTVERS=1\nID=a:b.c_d\nTYPE=computer\nPV=65535\nPAIRED=no\nINFO=/x")
	f.Add("txtvers=1\nid=rc-1\nid=rc-2")
	f.Add("txtvers=01\npv=0\npaired=\ninfo=/../")
	f.Add("=\n==\nx\x00=1\n\xff\xfe")
	f.Fuzz(func(t *testing.T, s string) {
		txt := strings.Split(s, "\n")
		in, err := ParseTXT(txt)
		if err != nil {
			return
		}
		enc, err := EncodeTXT(in)
		if err != nil {
			t.Fatalf("accepted %q but cannot encode %+v: %v", txt, in, err)
		}
		back, err := ParseTXT(enc)
		if err != nil || back != in {
			t.Fatalf("round trip of %+v: %+v, %v", in, back, err)
		}
	})
}

// FuzzPairRequest: DecodePairRequest never panics; an accepted request
// re-encodes to one that decodes the same; opening it never panics and,
// for anything but the genuine seed, fails.
func FuzzPairRequest(f *testing.F) {
	priv, err := ecdh.X25519().NewPrivateKey(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		f.Fatal(err)
	}
	eph, err := ecdh.X25519().NewPrivateKey(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		f.Fatal(err)
	}
	genuine, err := sealWith(eph, priv.PublicKey(), "rc-fuzz", modeOpen, "",
		pairPayload{BrokerURL: "http://10.0.0.1:4100", Token: "rc_tok", TSMilli: 1795439425643, Nonce: b64.EncodeToString(make([]byte, 16))})
	if err != nil {
		f.Fatal(err)
	}
	gb, err := genuine.encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(gb)
	f.Add([]byte(`{"v":1,"id":"rc-fuzz","epk":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","ct":"AAAAAAAAAAAAAAAAAAAAAAAA"}`))
	f.Add([]byte(`{"v":1,"id":"rc-fuzz","epk":"","ct":""}`))
	f.Add([]byte(`{"v":2}`))
	f.Add([]byte(`{"v":1,"id":"rc-fuzz","epk":"x","ct":"y"} {}`))
	f.Add([]byte(`[]`))
	f.Add(bytes.Repeat([]byte("{"), 5000))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := DecodePairRequest(b)
		if err != nil {
			return
		}
		enc, err := req.encode()
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodePairRequest(enc)
		if err != nil || again.DeviceID != req.DeviceID || !bytes.Equal(again.Ephemeral, req.Ephemeral) || !bytes.Equal(again.Ciphertext, req.Ciphertext) {
			t.Fatalf("re-decode: %+v, %v", again, err)
		}
		p, err := req.open(priv, modeOpen, "")
		if err == nil && !bytes.Equal(enc, gb) {
			// Only the genuine request may open (b64 decoding is
			// canonical, so its re-encoding equals the seed).
			t.Fatalf("forged request opened: %+v", p)
		}
	})
}
