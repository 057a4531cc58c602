package discovery

import (
	"reflect"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/roomcast/roomcast/protocol"
)

func goodTXT() []string {
	return []string{"txtvers=1", "id=rc-0123abcd", "type=speaker", "pv=1", "paired=no", "info=/v1/info"}
}

func TestTXTRoundTrip(t *testing.T) {
	in := Info{ID: "rc-0123abcd", Type: protocol.DeviceSpeaker, Version: protocol.Version, Paired: true, InfoPath: "/v1/info"}
	txt, err := EncodeTXT(in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseTXT(txt)
	if err != nil || got != in {
		t.Fatalf("ParseTXT(EncodeTXT) = %+v, %v; want %+v", got, err, in)
	}
	// Keys are case-insensitive, unknown keys and empty strings ignored.
	got, err = ParseTXT(append([]string{"", "future=1", "flag"}, "TXTVERS=1", "ID=rc-0123abcd", "Type=speaker", "pv=1", "paired=yes", "info=/v1/info"))
	if err != nil || got != in {
		t.Fatalf("mixed case: %+v, %v", got, err)
	}
}

func TestParseTXTRejects(t *testing.T) {
	replace := func(key, kv string) []string {
		var out []string
		for _, s := range goodTXT() {
			if strings.HasPrefix(s, key+"=") {
				if kv != "" {
					out = append(out, kv)
				}
				continue
			}
			out = append(out, s)
		}
		return out
	}
	long := strings.Repeat("a", 300)
	many := make([]string, 40)
	cases := []struct {
		name string
		txt  []string
		want string
	}{
		{"missing id", replace("id", ""), `"id" missing`},
		{"missing paired", replace("paired", ""), `"paired" missing`},
		{"empty id", replace("id", "id="), "device id is empty"},
		{"bad id char", replace("id", "id=rc 1"), "not allowed"},
		{"id too long", replace("id", "id="+strings.Repeat("a", 129)), "at most 128"},
		{"bad type", replace("type", "type=toaster"), "device type"},
		{"pv zero", replace("pv", "pv=0"), "pv"},
		{"pv leading zero", replace("pv", "pv=01"), "pv"},
		{"pv sign", replace("pv", "pv=+1"), "pv"},
		{"pv huge", replace("pv", "pv=99999999999999999999"), "pv"},
		{"paired maybe", replace("paired", "paired=maybe"), "yes or no"},
		{"txtvers 2", replace("txtvers", "txtvers=2"), "txtvers"},
		{"info relative", replace("info", "info=v1/info"), "must start with /"},
		{"info dotdot", replace("info", "info=/v1/../x"), "not a clean path"},
		{"info query", replace("info", "info=/v1/info?x=1"), "not allowed"},
		{"info double slash", replace("info", "info=//evil.example/x"), "not a clean path"},
		{"duplicate key", append(goodTXT(), "id=rc-other"), "appears twice"},
		{"duplicate key case", append(goodTXT(), "ID=rc-other"), "appears twice"},
		{"known key no value", append(replace("paired", ""), "paired"), "has no value"},
		{"string too long", append(goodTXT(), "x="+long), "at most 255"},
		{"too many strings", append(goodTXT(), many...), "at most 32"},
		{"empty key", append(goodTXT(), "=x"), "empty key"},
		{"key bad byte", append(goodTXT(), "k\x00y=1"), "not allowed"},
		{"non-ascii value", replace("id", "id=rc-\xff"), "not allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseTXT(c.txt)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("ParseTXT(%q) error %v, want one containing %q", c.txt, err, c.want)
			}
		})
	}
}

func TestParseInterfaces(t *testing.T) {
	good := map[string]InterfaceSpec{
		"":               {},
		"auto":           {},
		"off":            {Off: true},
		"eth0":           {Names: []string{"eth0"}},
		" eth0 , wlan0 ": {Names: []string{"eth0", "wlan0"}},
		"veth-rc1,lo":    {Names: []string{"veth-rc1", "lo"}},
	}
	for in, want := range good {
		got, err := ParseInterfaces(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseInterfaces(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"eth0,", ",eth0", "eth0,off", "eth0,eth0", "a/b", "averyveryverylongname0"} {
		if _, err := ParseInterfaces(in); err == nil {
			t.Errorf("ParseInterfaces(%q) accepted", in)
		}
	}
	if s, _ := ParseInterfaces("off"); s.String() != "off" {
		t.Errorf("String() = %q", s.String())
	}
}

// TestInstanceNameEscaping checks that our presentation-format escaping is
// what miekg/dns produces when it unpacks the same label, for awkward
// names, and that splitFirstLabel undoes it.
func TestInstanceNameEscaping(t *testing.T) {
	for _, name := range []string{"Kitchen", "Kitchen (2)", "Küche. Nord", `Back\slash "q"; @x`, "tab\there"} {
		fq := escapeLabel(name) + "._roomcast._tcp.local."
		buf := make([]byte, 512)
		off, err := dns.PackDomainName(fq, buf, 0, nil, false)
		if err != nil {
			t.Fatalf("%q: pack: %v", name, err)
		}
		if int(buf[0]) != len(name) {
			t.Fatalf("%q: first label is %d bytes on the wire, want %d", name, buf[0], len(name))
		}
		back, _, err := dns.UnpackDomainName(buf[:off], 0)
		if err != nil || back != fq {
			t.Fatalf("%q: unpacked %q (%v), want %q", name, back, err, fq)
		}
		label, rest, err := splitFirstLabel(back)
		if err != nil || label != name || rest != "_roomcast._tcp.local." {
			t.Fatalf("%q: split = %q %q %v", name, label, rest, err)
		}
	}
	for _, bad := range []string{`abc\`, `a\25`, `a\999.b`} {
		if _, _, err := splitFirstLabel(bad); err == nil {
			t.Errorf("splitFirstLabel(%q) accepted", bad)
		}
	}
}

func TestNames(t *testing.T) {
	if n, err := CleanInstanceName("  Living\t room \x07 "); err != nil || n != "Living room" {
		t.Fatalf("CleanInstanceName = %q, %v", n, err)
	}
	if _, err := CleanInstanceName(" \x01 "); err == nil {
		t.Fatal("empty name accepted")
	}
	long := strings.Repeat("ü", 40) // 80 bytes
	n, _ := CleanInstanceName(long)
	if len(n) > 63 || !strings.HasPrefix(long, n) {
		t.Fatalf("long name cut to %q (%d bytes)", n, len(n))
	}
	c := conflictName(n, 12)
	if len(c) > 63 || !strings.HasSuffix(c, " (12)") {
		t.Fatalf("conflictName = %q (%d bytes)", c, len(c))
	}
	if got := conflictName("Kitchen", 2); got != "Kitchen (2)" {
		t.Fatalf("conflictName = %q", got)
	}
	if got := hostLabel("rc-AB_cd.1"); got != "roomcast-rc-ab-cd-1" {
		t.Fatalf("hostLabel = %q", got)
	}
	if _, ok := dns.IsDomainName(hostLabel(strings.Repeat("x", 128)) + ".local."); !ok || len(hostLabel(strings.Repeat("x", 128))) > 63 {
		t.Fatal("hostLabel of a long id is not a label")
	}
}
