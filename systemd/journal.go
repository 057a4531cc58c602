package systemd

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultJournalSocket is where journald receives native-protocol datagrams.
const DefaultJournalSocket = "/run/systemd/journal/socket"

// HandlerOptions configure [NewHandler] and [NewJournalHandler].
// The zero value is usable: level Info, no source fields, the default socket.
type HandlerOptions struct {
	// Level is the minimum level logged; nil means slog.LevelInfo.
	// A *slog.LevelVar allows changing it at run time (e.g. on SIGHUP).
	Level slog.Leveler
	// AddSource adds CODE_FILE=, CODE_LINE= and CODE_FUNC= to journal entries
	// (and source= to text output).
	AddSource bool
	// JournalSocket overrides DefaultJournalSocket (tests point it at their
	// own unixgram socket).
	JournalSocket string
	// SyslogIdentifier is sent as SYSLOG_IDENTIFIER=; empty means the base
	// name of os.Args[0].
	SyslogIdentifier string
}

// NewLogger returns a logger for w at level, as [NewHandler] would build it.
func NewLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(NewHandler(w, &HandlerOptions{Level: level}))
}

// NewHandler returns a journald [JournalHandler] when w is an *os.File whose
// device and inode match $JOURNAL_STREAM, i.e. when systemd connected it to
// the journal; that handler falls back to text on w for any entry journald
// does not accept. In every other case it returns a slog.TextHandler on w.
// opts may be nil.
func NewHandler(w io.Writer, opts *HandlerOptions) slog.Handler {
	if opts == nil {
		opts = &HandlerOptions{}
	}
	text := slog.NewTextHandler(w, &slog.HandlerOptions{Level: opts.Level, AddSource: opts.AddSource})
	if f, ok := w.(*os.File); ok && isJournalStream(f, os.Getenv("JOURNAL_STREAM")) {
		return NewJournalHandler(opts, text)
	}
	return text
}

// isJournalStream reports whether f is the stream described by JOURNAL_STREAM
// ("<device>:<inode>", both decimal), as systemd.exec(5) documents.
func isJournalStream(f *os.File, env string) bool {
	devStr, inoStr, ok := strings.Cut(env, ":")
	if !ok {
		return false
	}
	dev, err1 := strconv.ParseUint(devStr, 10, 64)
	ino, err2 := strconv.ParseUint(inoStr, 10, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	return uint64(st.Dev) == dev && uint64(st.Ino) == ino
}

// JournalHandler is a slog.Handler that sends each record as one journald
// native-protocol entry (systemd.io/JOURNAL_NATIVE_PROTOCOL):
//
//   - PRIORITY= from the level (Debug 7, Info 6, Warn 4, Error and above 3),
//     MESSAGE=, SYSLOG_IDENTIFIER=, and with AddSource CODE_FILE/LINE/FUNC.
//   - Every attribute becomes a field named by upper-casing its key, joined to
//     enclosing group names with '_', with characters outside [A-Z0-9_]
//     replaced by '_' (one per rune), leading '_' removed (journald reserves them), "X_"
//     prefixed if it would start with a digit, "ATTR" if nothing is left, and
//     cut to 64 bytes. Keys that would clash with the fields above get an
//     "ATTR_" prefix. So slog.String("device", "hw:0") becomes DEVICE=hw:0.
//   - Values containing a newline use the protocol's binary-safe form.
//   - Entries too large for a datagram are passed as a sealed memfd.
//
// If an entry cannot be sent, it is written by the fallback handler instead.
// The record time is not sent: journald stamps entries on receipt.
//
// A JournalHandler is immutable after construction and safe for concurrent
// use; handlers derived with WithAttrs/WithGroup share one socket.
type JournalHandler struct {
	opts     HandlerOptions
	conn     *journalConn
	fallback slog.Handler
	prefix   string // group prefix, e.g. "HTTP_"
	preset   []byte // encoded fields from WithAttrs
}

// NewJournalHandler returns a handler that writes to journald and uses
// fallback (which may be nil to drop entries) when that fails. opts may be nil.
func NewJournalHandler(opts *HandlerOptions, fallback slog.Handler) *JournalHandler {
	h := &JournalHandler{fallback: fallback}
	if opts != nil {
		h.opts = *opts
	}
	if h.opts.JournalSocket == "" {
		h.opts.JournalSocket = DefaultJournalSocket
	}
	if h.opts.SyslogIdentifier == "" {
		h.opts.SyslogIdentifier = filepath.Base(os.Args[0])
	}
	h.conn = &journalConn{addr: &net.UnixAddr{Name: h.opts.JournalSocket, Net: "unixgram"}}
	return h
}

// Enabled implements slog.Handler.
func (h *JournalHandler) Enabled(_ context.Context, level slog.Level) bool {
	minLevel := slog.LevelInfo
	if h.opts.Level != nil {
		minLevel = h.opts.Level.Level()
	}
	return level >= minLevel
}

// Handle implements slog.Handler.
func (h *JournalHandler) Handle(ctx context.Context, r slog.Record) error {
	buf := make([]byte, 0, 256+len(r.Message)+len(h.preset))
	buf = appendField(buf, "PRIORITY", strconv.Itoa(priority(r.Level)))
	buf = appendField(buf, "MESSAGE", r.Message)
	buf = appendField(buf, "SYSLOG_IDENTIFIER", h.opts.SyslogIdentifier)
	if h.opts.AddSource && r.PC != 0 {
		frame, _ := runtime.CallersFrames([]uintptr{r.PC}).Next()
		buf = appendField(buf, "CODE_FILE", frame.File)
		buf = appendField(buf, "CODE_LINE", strconv.Itoa(frame.Line))
		buf = appendField(buf, "CODE_FUNC", frame.Function)
	}
	buf = append(buf, h.preset...)
	r.Attrs(func(a slog.Attr) bool {
		buf = appendAttr(buf, h.prefix, a)
		return true
	})
	err := h.conn.send(buf)
	if err == nil {
		return nil
	}
	if h.fallback == nil {
		return err
	}
	return h.fallback.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h *JournalHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	h2 := *h
	h2.preset = append([]byte(nil), h.preset...)
	for _, a := range attrs {
		h2.preset = appendAttr(h2.preset, h.prefix, a)
	}
	if h.fallback != nil {
		h2.fallback = h.fallback.WithAttrs(attrs)
	}
	return &h2
}

// WithGroup implements slog.Handler.
func (h *JournalHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.prefix = h.prefix + name + "_"
	if h.fallback != nil {
		h2.fallback = h.fallback.WithGroup(name)
	}
	return &h2
}

// priority maps slog levels to syslog priorities.
func priority(l slog.Level) int {
	switch {
	case l < slog.LevelInfo:
		return 7 // debug
	case l < slog.LevelWarn:
		return 6 // info
	case l < slog.LevelError:
		return 4 // warning
	default:
		return 3 // err
	}
}

// reservedFields are set by Handle itself; attributes may not shadow them.
var reservedFields = map[string]bool{
	"MESSAGE": true, "PRIORITY": true, "SYSLOG_IDENTIFIER": true,
	"CODE_FILE": true, "CODE_LINE": true, "CODE_FUNC": true,
}

// fieldName turns a (group-prefixed) slog key into a valid journal field name.
func fieldName(key string) string {
	b := make([]byte, 0, len(key))
	for _, c := range key {
		switch {
		case c >= 'a' && c <= 'z':
			b = append(b, byte(c-'a'+'A'))
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_':
			b = append(b, byte(c))
		default:
			b = append(b, '_')
		}
	}
	name := strings.TrimLeft(string(b), "_")
	switch {
	case name == "":
		name = "ATTR"
	case name[0] >= '0' && name[0] <= '9':
		name = "X_" + name
	case reservedFields[name]:
		name = "ATTR_" + name
	}
	if len(name) > 64 {
		name = name[:64]
	}
	return name
}

// appendAttr encodes a, flattening groups into prefixed field names.
func appendAttr(buf []byte, prefix string, a slog.Attr) []byte {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return buf
	}
	if a.Value.Kind() == slog.KindGroup {
		if a.Key != "" {
			prefix += a.Key + "_"
		}
		for _, ga := range a.Value.Group() {
			buf = appendAttr(buf, prefix, ga)
		}
		return buf
	}
	var s string
	switch a.Value.Kind() {
	case slog.KindString:
		s = a.Value.String()
	case slog.KindTime:
		s = a.Value.Time().Format(time.RFC3339Nano)
	default:
		s = a.Value.String()
	}
	return appendField(buf, fieldName(prefix+a.Key), s)
}

// appendField encodes one field: "NAME=value\n", or, when value contains a
// newline, "NAME\n" + little-endian uint64 length + value + "\n".
func appendField(buf []byte, name, value string) []byte {
	buf = append(buf, name...)
	if !strings.Contains(value, "\n") {
		buf = append(buf, '=')
		buf = append(buf, value...)
		return append(buf, '\n')
	}
	buf = append(buf, '\n')
	buf = binary.LittleEndian.AppendUint64(buf, uint64(len(value)))
	buf = append(buf, value...)
	return append(buf, '\n')
}

// journalConn is the unbound datagram socket shared by a handler family.
type journalConn struct {
	addr *net.UnixAddr

	once sync.Once
	conn *net.UnixConn
	err  error
}

func (c *journalConn) send(entry []byte) error {
	c.once.Do(func() {
		// An empty name makes the kernel autobind; we only send.
		c.conn, c.err = net.ListenUnixgram("unixgram", &net.UnixAddr{Net: "unixgram"})
	})
	if c.err != nil {
		return fmt.Errorf("journal: %w", c.err)
	}
	_, _, err := c.conn.WriteMsgUnix(entry, nil, c.addr)
	if err == nil {
		return nil
	}
	if !errors.Is(err, syscall.EMSGSIZE) && !errors.Is(err, syscall.ENOBUFS) {
		return fmt.Errorf("journal: %w", err)
	}
	return sendViaMemfd(c.conn, c.addr, entry)
}
