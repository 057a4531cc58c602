package discovery

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/roomcast/roomcast/protocol"
	"github.com/roomcast/roomcast/protocol/httpapi"
)

// ServiceType is the DNS-SD service type roomcast speakers announce.
const ServiceType = "_roomcast._tcp"

// DefaultInfoPath is where Pairing serves the speaker's info.
const DefaultInfoPath = "/v1/info"

// TXTVersion is the version of the TXT record layout ("txtvers" key).
const TXTVersion = 1

// Limits on what ParseTXT accepts.
const (
	maxTXTStrings   = 32  // key=value strings in one TXT record
	maxTXTString    = 255 // bytes, the DNS character-string limit
	maxInfoPathLen  = 128
	maxTXTKeyLength = 16
)

// Info is what a speaker's TXT record says about it.
//
// TXT layout (RFC 6763 §6 key=value strings, keys case-insensitive):
//
//	txtvers=1  layout version; required, must be 1
//	id=...     device id (protocol id characters, at most 128)
//	type=...   speaker, computer or controller
//	pv=1       protocol version the device speaks (decimal, 1-65535)
//	paired=yes|no
//	info=/v1/info  path of the info endpoint on the SRV host and port
//
// Unknown keys are ignored (room for later fields); a known key twice, a
// known key without a value or with a bad value is an error.
type Info = httpapi.Info

// validateInfo checks every field as ParseTXT would.
func validateInfo(in Info) error {
	if err := checkDeviceID(in.ID); err != nil {
		return err
	}
	if err := checkDeviceType(string(in.Type)); err != nil {
		return err
	}
	if in.Version < 1 || in.Version > 65535 {
		return fmt.Errorf("protocol version %d: must be 1-65535", in.Version)
	}
	return checkInfoPath(in.InfoPath)
}

// EncodeTXT is the TXT record for in. It fails only if a field is invalid.
func EncodeTXT(in Info) ([]string, error) {
	if err := validateInfo(in); err != nil {
		return nil, err
	}
	return []string{
		"txtvers=" + strconv.Itoa(TXTVersion),
		"id=" + in.ID,
		"type=" + string(in.Type),
		"pv=" + strconv.Itoa(in.Version),
		"paired=" + yesNo(in.Paired),
		"info=" + in.InfoPath,
	}, nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// ParseTXT decodes and validates a speaker's TXT record. Its input comes
// from anyone on the LAN: every string is bounded and checked, and every
// failure is an error saying which key was wrong.
func ParseTXT(txt []string) (Info, error) {
	if len(txt) > maxTXTStrings {
		return Info{}, fmt.Errorf("TXT: %d strings, at most %d", len(txt), maxTXTStrings)
	}
	seen := make(map[string]string, len(txt))
	for _, s := range txt {
		if len(s) > maxTXTString {
			return Info{}, fmt.Errorf("TXT: a string of %d bytes, at most %d", len(s), maxTXTString)
		}
		if s == "" {
			continue // RFC 6763 §6.1: an empty TXT record is one empty string
		}
		key, value, hasValue := strings.Cut(s, "=")
		key = strings.ToLower(key)
		if err := checkTXTKey(key); err != nil {
			return Info{}, err
		}
		if !knownTXTKey(key) {
			continue
		}
		if !hasValue {
			return Info{}, fmt.Errorf("TXT: key %q has no value", key)
		}
		if _, dup := seen[key]; dup {
			return Info{}, fmt.Errorf("TXT: key %q appears twice", key)
		}
		seen[key] = value
	}
	for _, k := range []string{"txtvers", "id", "type", "pv", "paired", "info"} {
		if _, ok := seen[k]; !ok {
			return Info{}, fmt.Errorf("TXT: key %q missing", k)
		}
	}
	if v, err := parseSmallUint(seen["txtvers"]); err != nil || v != TXTVersion {
		return Info{}, fmt.Errorf("TXT: txtvers %q: this side reads version %d", seen["txtvers"], TXTVersion)
	}
	pv, err := parseSmallUint(seen["pv"])
	if err != nil {
		return Info{}, fmt.Errorf("TXT: pv: %w", err)
	}
	var paired bool
	switch seen["paired"] {
	case "yes":
		paired = true
	case "no":
	default:
		return Info{}, fmt.Errorf("TXT: paired %q: must be yes or no", seen["paired"])
	}
	in := Info{ID: seen["id"], Type: protocol.DeviceType(seen["type"]), Version: pv, Paired: paired, InfoPath: seen["info"]}
	if err := validateInfo(in); err != nil {
		return Info{}, fmt.Errorf("TXT: %w", err)
	}
	return in, nil
}

func knownTXTKey(k string) bool {
	switch k {
	case "txtvers", "id", "type", "pv", "paired", "info":
		return true
	}
	return false
}

func checkTXTKey(k string) error {
	if k == "" {
		return errors.New("TXT: empty key")
	}
	if len(k) > maxTXTKeyLength {
		return fmt.Errorf("TXT: key of %d bytes, at most %d", len(k), maxTXTKeyLength)
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("TXT: key %q: byte %q not allowed (a-z 0-9 - _)", k, c)
		}
	}
	return nil
}

// parseSmallUint accepts 1-65535 written in decimal without sign or
// leading zeros.
func parseSmallUint(s string) (int, error) {
	if s == "" || len(s) > 5 || s[0] == '0' {
		return 0, fmt.Errorf("%q is not a number 1-65535", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q is not a number 1-65535", s)
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%q is not a number 1-65535", s)
	}
	return n, nil
}

// checkDeviceID applies the protocol's id rules (A-Z a-z 0-9 - _ . :, at
// most protocol.MaxIDLen bytes) and refuses the empty id.
func checkDeviceID(id string) error {
	if id == "" {
		return errors.New("device id is empty")
	}
	if len(id) > protocol.MaxIDLen {
		return fmt.Errorf("device id of %d bytes, at most %d", len(id), protocol.MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return fmt.Errorf("device id: byte %q not allowed (A-Z a-z 0-9 - _ . :)", c)
		}
	}
	return nil
}

func checkDeviceType(t string) error {
	switch protocol.DeviceType(t) {
	case protocol.DeviceSpeaker, protocol.DeviceComputer, protocol.DeviceController:
		return nil
	}
	return fmt.Errorf("device type %q: must be speaker, computer or controller", t)
}

// checkInfoPath accepts an absolute URL path of plain characters: no
// query, no "..", no "//", at most 128 bytes.
func checkInfoPath(p string) error {
	if p == "" || p[0] != '/' {
		return fmt.Errorf("info path %q: must start with /", p)
	}
	if len(p) > maxInfoPathLen {
		return fmt.Errorf("info path of %d bytes, at most %d", len(p), maxInfoPathLen)
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '/' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("info path: byte %q not allowed (A-Z a-z 0-9 / - _ .)", c)
		}
	}
	if strings.Contains(p, "//") || strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") || strings.Contains(p, "/./") || strings.HasSuffix(p, "/.") {
		return fmt.Errorf("info path %q: not a clean path", p)
	}
	return nil
}
