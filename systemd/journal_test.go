package systemd

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// parseEntry decodes a journald native-protocol entry independently of the
// encoder: "KEY=value\n" lines, or "KEY\n" + uint64le length + value + "\n".
func parseEntry(t *testing.T, data []byte) map[string][]string {
	t.Helper()
	fields := map[string][]string{}
	for len(data) > 0 {
		nl := bytes.IndexByte(data, '\n')
		if nl < 0 {
			t.Fatalf("entry: unterminated line %q", data)
		}
		line := data[:nl]
		data = data[nl+1:]
		if key, value, ok := bytes.Cut(line, []byte("=")); ok {
			fields[string(key)] = append(fields[string(key)], string(value))
			continue
		}
		if len(data) < 8 {
			t.Fatalf("entry: binary field %q without length", line)
		}
		size := binary.LittleEndian.Uint64(data[:8])
		data = data[8:]
		if uint64(len(data)) < size+1 || data[size] != '\n' {
			t.Fatalf("entry: binary field %q: bad length %d", line, size)
		}
		fields[string(line)] = append(fields[string(line)], string(data[:size]))
		data = data[size+1:]
	}
	for k := range fields {
		if fieldName(k) != k && !strings.HasPrefix(k, "CODE_") && !reservedFields[k] {
			t.Errorf("entry: invalid field name %q", k)
		}
	}
	return fields
}

func TestFieldName(t *testing.T) {
	cases := []struct{ key, want string }{
		{"device", "DEVICE"},
		{"Track", "TRACK"},
		{"sample-rate", "SAMPLE_RATE"},
		{"http.status", "HTTP_STATUS"},
		{"_private", "PRIVATE"},
		{"__x", "X"},
		{"9lives", "X_9LIVES"},
		{"_9", "X_9"},
		{"été", "T_"},
		{"日本", "ATTR"},
		{"", "ATTR"},
		{"message", "ATTR_MESSAGE"},
		{"priority", "ATTR_PRIORITY"},
		{"message_id", "MESSAGE_ID"},
		{strings.Repeat("a", 80), strings.Repeat("A", 64)},
	}
	for _, tc := range cases {
		t.Run(tc.key, func(t *testing.T) {
			if got := fieldName(tc.key); got != tc.want {
				t.Fatalf("fieldName(%q) = %q, want %q", tc.key, got, tc.want)
			}
		})
	}
}

type errStringer struct{}

func (errStringer) String() string { return "stringer" }

func TestJournalHandlerEntries(t *testing.T) {
	ts := time.Date(2024, 5, 1, 12, 0, 0, 5, time.UTC)
	cases := []struct {
		name string
		log  func(l *slog.Logger)
		want map[string]string // exact single values expected
		none []string          // fields that must be absent
	}{
		{"levels and attrs", func(l *slog.Logger) {
			l.Info("track started", "device", "hw:0,0", "track", "Blue in Green", "volume", 0.75)
		}, map[string]string{
			"PRIORITY": "6", "MESSAGE": "track started", "SYSLOG_IDENTIFIER": "roomcastd-test",
			"DEVICE": "hw:0,0", "TRACK": "Blue in Green", "VOLUME": "0.75",
		}, []string{"CODE_FILE"}},
		{"debug priority", func(l *slog.Logger) { l.Debug("d") },
			map[string]string{"PRIORITY": "7"}, nil},
		{"warn priority", func(l *slog.Logger) { l.Warn("w") },
			map[string]string{"PRIORITY": "4"}, nil},
		{"error priority", func(l *slog.Logger) { l.Error("e", "err", errors.New("boom")) },
			map[string]string{"PRIORITY": "3", "ERR": "boom"}, nil},
		{"above error", func(l *slog.Logger) { l.Log(context.Background(), slog.LevelError+4, "c") },
			map[string]string{"PRIORITY": "3"}, nil},
		{"newline values use binary form", func(l *slog.Logger) {
			l.Info("line one\nline two", "stack", "a\nb\n")
		}, map[string]string{"MESSAGE": "line one\nline two", "STACK": "a\nb\n"}, nil},
		{"groups flatten", func(l *slog.Logger) {
			l.WithGroup("http").With("method", "GET").Info("req",
				slog.Group("peer", "addr", "10.0.0.2"), slog.Int("status", 200))
		}, map[string]string{"HTTP_METHOD": "GET", "HTTP_PEER_ADDR": "10.0.0.2", "HTTP_STATUS": "200"}, nil},
		{"nested groups", func(l *slog.Logger) {
			l.WithGroup("a").With("x", 1).WithGroup("b").Info("m", "k", 2)
		}, map[string]string{"A_X": "1", "A_B_K": "2"}, []string{"B_K", "K"}},
		{"with attrs before group", func(l *slog.Logger) {
			l.With("room", "kitchen").WithGroup("g").Info("m", "k", 1)
		}, map[string]string{"ROOM": "kitchen", "G_K": "1"}, nil},
		{"kinds", func(l *slog.Logger) {
			l.Info("m", "t", ts, "d", 1500*time.Millisecond, "b", true, "s", errStringer{},
				slog.Any("lv", slog.AnyValue(slog.LevelWarn)))
		}, map[string]string{"T": "2024-05-01T12:00:00.000000005Z", "D": "1.5s", "B": "true", "S": "stringer", "LV": "WARN"}, nil},
		{"empty attrs and groups dropped", func(l *slog.Logger) {
			l.Info("m", slog.Attr{}, slog.Group("empty"), slog.Group("", slog.String("inline", "y")))
		}, map[string]string{"INLINE": "y"}, []string{"EMPTY", "ATTR"}},
		{"reserved keys cannot override", func(l *slog.Logger) {
			l.Info("real", "message", "fake", "priority", "0")
		}, map[string]string{"MESSAGE": "real", "PRIORITY": "6", "ATTR_MESSAGE": "fake", "ATTR_PRIORITY": "0"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sock := listenDgram(t, false)
			var text bytes.Buffer
			h := NewJournalHandler(&HandlerOptions{
				Level:            slog.LevelDebug,
				JournalSocket:    sock.addr,
				SyslogIdentifier: "roomcastd-test",
			}, slog.NewTextHandler(&text, nil))
			tc.log(slog.New(h))
			fields := parseEntry(t, sock.recv(t, time.Second).data)
			for k, want := range tc.want {
				if got := fields[k]; len(got) != 1 || got[0] != want {
					t.Errorf("%s = %q, want [%q]\nentry: %q", k, got, want, fields)
				}
			}
			for _, k := range tc.none {
				if _, ok := fields[k]; ok {
					t.Errorf("unexpected field %s in %q", k, fields)
				}
			}
			if text.Len() != 0 {
				t.Errorf("fallback used: %s", text.String())
			}
			sock.expectNone(t, 20*time.Millisecond)
		})
	}
}

func TestJournalHandlerSource(t *testing.T) {
	sock := listenDgram(t, true)
	log := slog.New(NewJournalHandler(&HandlerOptions{JournalSocket: sock.addr, AddSource: true}, nil))
	log.Info("here")
	fields := parseEntry(t, sock.recv(t, time.Second).data)
	if f := fields["CODE_FILE"]; len(f) != 1 || filepath.Base(f[0]) != "journal_test.go" {
		t.Errorf("CODE_FILE = %q", f)
	}
	if f := fields["CODE_FUNC"]; len(f) != 1 || !strings.HasSuffix(f[0], "TestJournalHandlerSource") {
		t.Errorf("CODE_FUNC = %q", f)
	}
	if len(fields["CODE_LINE"]) != 1 {
		t.Errorf("CODE_LINE = %q", fields["CODE_LINE"])
	}
	if id := fields["SYSLOG_IDENTIFIER"]; len(id) != 1 || id[0] != filepath.Base(os.Args[0]) {
		t.Errorf("SYSLOG_IDENTIFIER = %q, want program name", id)
	}
}

func TestJournalHandlerLevel(t *testing.T) {
	sock := listenDgram(t, false)
	var lv slog.LevelVar // Info
	log := slog.New(NewJournalHandler(&HandlerOptions{JournalSocket: sock.addr, Level: &lv}, nil))
	log.Debug("hidden")
	sock.expectNone(t, 30*time.Millisecond)
	lv.Set(slog.LevelDebug)
	log.Debug("shown")
	if got := parseEntry(t, sock.recv(t, time.Second).data)["MESSAGE"]; got[0] != "shown" {
		t.Fatalf("MESSAGE = %q", got)
	}
}

// TestJournalHandlerLargeEntry: entries beyond the datagram limit travel as a
// sealed memfd passed with SCM_RIGHTS, as journald expects.
func TestJournalHandlerLargeEntry(t *testing.T) {
	sock := listenDgram(t, false)
	log := slog.New(NewJournalHandler(&HandlerOptions{JournalSocket: sock.addr}, nil))
	big := strings.Repeat("x", 8<<20) // far above any default socket buffer
	log.Info(big, "track", "t")
	d := sock.recv(t, 5*time.Second)
	if len(d.data) != 0 || d.fd < 0 {
		t.Fatalf("want empty datagram with an fd, got %d bytes, fd %d", len(d.data), d.fd)
	}
	f := os.NewFile(uintptr(d.fd), "memfd")
	defer f.Close()
	seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
	if err != nil {
		t.Fatal(err)
	}
	wantSeals := unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE | unix.F_SEAL_SEAL
	if seals&wantSeals != wantSeals {
		t.Errorf("seals = %#x, want %#x", seals, wantSeals)
	}
	data, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<30))
	if err != nil {
		t.Fatal(err)
	}
	fields := parseEntry(t, data)
	if m := fields["MESSAGE"]; len(m) != 1 || m[0] != big {
		t.Errorf("MESSAGE has %d values, first %d bytes", len(m), len(m[0]))
	}
	if fields["TRACK"][0] != "t" {
		t.Errorf("TRACK = %q", fields["TRACK"])
	}
}

// TestJournalHandlerFallback: when journald cannot be reached the entry,
// with its WithAttrs/WithGroup context, is written as text instead.
func TestJournalHandlerFallback(t *testing.T) {
	var text bytes.Buffer
	h := NewJournalHandler(&HandlerOptions{JournalSocket: filepath.Join(t.TempDir(), "missing")},
		slog.NewTextHandler(&text, nil))
	slog.New(h).With("room", "kitchen").WithGroup("audio").Info("underrun", "frames", 512)
	out := text.String()
	for _, want := range []string{`msg=underrun`, `room=kitchen`, `audio.frames=512`} {
		if !strings.Contains(out, want) {
			t.Errorf("fallback output %q lacks %q", out, want)
		}
	}

	// Without a fallback the send error is returned.
	h2 := NewJournalHandler(&HandlerOptions{JournalSocket: filepath.Join(t.TempDir(), "missing")}, nil)
	if err := h2.Handle(context.Background(), slog.NewRecord(time.Now(), slog.LevelInfo, "m", 0)); err == nil {
		t.Error("Handle without fallback = nil, want error")
	}
}

func TestJournalHandlerConcurrent(t *testing.T) {
	sock := listenDgram(t, true)
	base := slog.New(NewJournalHandler(&HandlerOptions{JournalSocket: sock.addr}, nil))
	const workers, each = 8, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := base.With("worker", w)
			for i := range each {
				l.Info("tick", "i", i)
			}
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for range workers * each {
		f := parseEntry(t, sock.recv(t, 2*time.Second).data)
		seen[f["WORKER"][0]+"/"+f["I"][0]] = true
	}
	if len(seen) != workers*each {
		t.Fatalf("got %d distinct entries, want %d", len(seen), workers*each)
	}
}

// TestNewHandlerDetection: the journal is used only when the writer is the
// very file JOURNAL_STREAM names.
func TestNewHandlerDetection(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "stream")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	match := fmt.Sprintf("%d:%d", st.Dev, st.Ino)
	cases := []struct {
		name        string
		w           io.Writer
		env         string
		wantJournal bool
	}{
		{"matching file", f, match, true},
		{"unset", f, "", false},
		{"other inode", f, fmt.Sprintf("%d:%d", st.Dev, st.Ino+1), false},
		{"other device", f, fmt.Sprintf("%d:%d", st.Dev+1, st.Ino), false},
		{"garbage", f, "journal", false},
		{"not a file", &bytes.Buffer{}, match, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("JOURNAL_STREAM", tc.env)
			sock := listenDgram(t, false)
			h := NewHandler(tc.w, &HandlerOptions{JournalSocket: sock.addr})
			_, isJournal := h.(*JournalHandler)
			if isJournal != tc.wantJournal {
				t.Fatalf("handler %T, wantJournal %v", h, tc.wantJournal)
			}
			if _, isText := h.(*slog.TextHandler); !isJournal && !isText {
				t.Fatalf("handler %T, want *slog.TextHandler", h)
			}
			if tc.wantJournal {
				slog.New(h).Info("to journal", "device", "hw:1")
				fields := parseEntry(t, sock.recv(t, time.Second).data)
				if fields["DEVICE"][0] != "hw:1" {
					t.Fatalf("DEVICE = %q", fields["DEVICE"])
				}
				if fi, _ := f.Stat(); fi.Size() != 0 {
					t.Fatalf("journal entry also written as text")
				}
			}
		})
	}
}

func TestNewLogger(t *testing.T) {
	t.Setenv("JOURNAL_STREAM", "")
	var buf bytes.Buffer
	log := NewLogger(&buf, slog.LevelWarn)
	log.Info("quiet")
	log.Warn("loud", "device", "hw:0")
	out := buf.String()
	if strings.Contains(out, "quiet") || !strings.Contains(out, "level=WARN msg=loud device=hw:0") {
		t.Fatalf("output = %q", out)
	}
}
