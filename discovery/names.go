package discovery

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxLabel is the DNS label limit (RFC 1035 §2.3.4): an instance name is
// one label, so at most 63 bytes of UTF-8.
const maxLabel = 63

// CleanInstanceName makes name usable as a DNS-SD instance name: control
// characters dropped, spaces collapsed, at most 63 bytes of UTF-8 (cut on
// a character boundary). An empty result is an error.
func CleanInstanceName(name string) (string, error) {
	var b strings.Builder
	space := false
	for _, r := range strings.TrimSpace(name) {
		switch {
		case r == utf8.RuneError, unicode.IsControl(r):
			continue
		case unicode.IsSpace(r):
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	s := truncateUTF8(b.String(), maxLabel)
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("instance name is empty")
	}
	return s, nil
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// conflictName is the n-th alternative of base (n >= 2): "Kitchen (2)",
// keeping the result within one DNS label.
func conflictName(base string, n int) string {
	if n < 2 {
		return base
	}
	suffix := " (" + strconv.Itoa(n) + ")"
	return strings.TrimSpace(truncateUTF8(base, maxLabel-len(suffix))) + suffix
}

// escapeLabel writes one DNS label in the presentation format
// github.com/miekg/dns uses (what it produces when it unpacks a name): the
// same escaping on both sides lets names be compared as strings.
func escapeLabel(label string) string {
	var b strings.Builder
	for i := 0; i < len(label); i++ {
		c := label[i]
		switch {
		case c == '.' || c == '(' || c == ')' || c == ';' || c == ' ' || c == '@' || c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < ' ' || c > '~':
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// splitFirstLabel splits a presentation-format name into its first label
// (unescaped) and the rest (still escaped, without the leading dot).
func splitFirstLabel(name string) (label, rest string, err error) {
	var b []byte
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch c {
		case '.':
			return string(b), name[i+1:], nil
		case '\\':
			v, n, err := unescapeAt(name, i)
			if err != nil {
				return "", "", err
			}
			b = append(b, v)
			i += n - 1
		default:
			b = append(b, c)
		}
	}
	return string(b), "", nil
}

// unescapeString undoes the \X and \DDD escapes miekg/dns writes into
// character strings (TXT data).
func unescapeString(s string) (string, error) {
	if !strings.Contains(s, "\\") {
		return s, nil
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b = append(b, s[i])
			continue
		}
		v, n, err := unescapeAt(s, i)
		if err != nil {
			return "", err
		}
		b = append(b, v)
		i += n - 1
	}
	return string(b), nil
}

// unescapeAt decodes the escape starting at s[i] == '\\' and says how many
// bytes it used.
func unescapeAt(s string, i int) (byte, int, error) {
	if i+1 >= len(s) {
		return 0, 0, errors.New("name ends in a backslash")
	}
	c := s[i+1]
	if c < '0' || c > '9' {
		return c, 2, nil
	}
	if i+4 > len(s) {
		return 0, 0, errors.New("short \\DDD escape")
	}
	v := 0
	for j := 1; j <= 3; j++ {
		d := s[i+j]
		if d < '0' || d > '9' {
			return 0, 0, errors.New("bad \\DDD escape")
		}
		v = v*10 + int(d-'0')
	}
	if v > 255 {
		return 0, 0, errors.New("\\DDD escape above 255")
	}
	return byte(v), 4, nil
}

// hostLabel is the host name label the advertiser uses for its A/AAAA
// records: derived from the device id so that it never collides with the
// machine's own host name (which avahi may publish).
func hostLabel(deviceID string) string {
	var b strings.Builder
	b.WriteString("roomcast-")
	for i := 0; i < len(deviceID) && b.Len() < maxLabel; i++ {
		c := deviceID[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b.WriteByte(c)
		case c >= 'A' && c <= 'Z':
			b.WriteByte(c + 'a' - 'A')
		default:
			b.WriteByte('-')
		}
	}
	return strings.TrimRight(b.String(), "-")
}
