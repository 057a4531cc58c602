package protocol

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func ptr[T any](v T) *T { return &v }

// validFrames has one frame of every message type.
func validFrames() []Frame {
	st := PlayerState{DeviceID: "kitchen", Status: StatusPlaying, ContextURI: "roomcast:album:a1",
		Index: 2, PositionMS: 1234, Repeat: RepeatContext, Volume: 40,
		Track: &Track{URI: "roomcast:track:t1", Title: "T", DurationMS: 200000, LoudnessLUFS: ptr(-9.5)}}
	dev := DeviceInfo{ID: "kitchen", Name: "Kitchen", Type: DeviceSpeaker, Volume: 40, Capabilities: []string{CapPlay, CapVolume}}
	return []Frame{
		{Seq: 1, Msg: &Hello{ProtocolVersion: Version, Device: dev, Resume: &Resume{Active: true, StateVersion: 3}}},
		{Seq: 2, TS: 17, Msg: &Welcome{ProtocolVersion: Version, SessionID: "s1", User: "u", ServerTimeMS: 5, HeartbeatMS: 10000, Devices: []DeviceInfo{dev}, ActiveDeviceID: "kitchen", State: &st}},
		{Seq: 3, Msg: &Ping{T0US: 99}},
		{Seq: 4, Msg: &Pong{T0US: 99, T1US: 100, T2US: 101}},
		{Seq: 5, Msg: &PlayerStateChanged{State: st, TrackChanged: true}},
		{Seq: 6, ID: "c1", Msg: &Command{Name: CmdPlay, ContextURI: "roomcast:album:a1", Offset: 1, PositionMS: ptr(int64(500))}},
		{Seq: 7, ID: "c2", Msg: &Command{Name: CmdVolume, Volume: ptr(0)}},
		{Seq: 8, ID: "c3", Msg: &Command{Name: CmdSeek, PositionMS: ptr(int64(0))}},
		{Seq: 9, ID: "c4", Msg: &Command{Name: CmdShuffle, Shuffle: ptr(false)}},
		{Seq: 10, ID: "c5", Msg: &Command{Name: CmdRepeat, Repeat: RepeatTrack}},
		{Seq: 11, ID: "c6", Msg: &Command{Name: CmdAddToQueue, URI: "roomcast:track:x"}},
		{Seq: 12, ID: "c7", Msg: &Command{Name: CmdSkipNext}},
		{Seq: 13, Msg: &DeviceStateChanged{Devices: []DeviceInfo{dev}, ActiveDeviceID: "kitchen", Changed: "kitchen", Reason: "joined"}},
		{Seq: 14, ID: "x1", Msg: &TransferPlayback{DeviceID: "den", Play: ptr(true), State: &st}},
		{Seq: 15, Msg: &Ack{Ref: "c1", State: &st}},
		{Seq: 16, Msg: &Error{Ref: "c1", Code: ErrNoActiveDevice, Message: "no device is active"}},
		{Seq: 17, Msg: &Goodbye{Reason: "shutdown", ReconnectMS: 1000}},
	}
}

func TestRoundTrip(t *testing.T) {
	seen := map[Type]bool{}
	for _, f := range validFrames() {
		b, err := Encode(f)
		if err != nil {
			t.Fatalf("encode %s: %v", f.Msg.Type(), err)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("decode %s: %v\n%s", f.Msg.Type(), err, b)
		}
		if !reflect.DeepEqual(got, f) {
			t.Errorf("%s: round trip changed the frame:\n got %#v\nwant %#v", f.Msg.Type(), got, f)
		}
		seen[f.Msg.Type()] = true

		// The fan-out encoding must decode to the same frame.
		body, err := EncodeBody(f.ID, f.TS, f.Msg)
		if err != nil {
			t.Fatal(err)
		}
		got2, err := Decode(append(AppendSeq(nil, f.Seq), body...))
		if err != nil {
			t.Fatalf("decode body %s: %v", f.Msg.Type(), err)
		}
		if !reflect.DeepEqual(got2, f) {
			t.Errorf("%s: EncodeBody round trip changed the frame", f.Msg.Type())
		}
	}
	for _, typ := range []Type{TypeHello, TypeWelcome, TypePing, TypePong, TypePlayerStateChanged, TypeCommand,
		TypeDeviceStateChanged, TypeTransferPlayback, TypeAck, TypeError, TypeGoodbye} {
		if !seen[typ] {
			t.Errorf("no round-trip case for %s", typ)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	big := `{"v":1,"type":"PING","seq":1,"payload":{"t0_us":1},"pad":"` + strings.Repeat("x", MaxFrameBytes) + `"}`
	cases := []struct {
		name, in string
		code     DecodeCode
	}{
		{"empty", ``, CodeMalformed},
		{"not json", `hello`, CodeMalformed},
		{"array", `[1,2]`, CodeMalformed},
		{"trailing", `{"v":1,"type":"PING","seq":1,"payload":{"t0_us":1}} x`, CodeMalformed},
		{"two values", `{"v":1,"type":"PING","seq":1,"payload":{"t0_us":1}}{}`, CodeMalformed},
		{"too large", big, CodeTooLarge},
		{"no version", `{"type":"PING","seq":1,"payload":{"t0_us":1}}`, CodeMissingField},
		{"future version", `{"v":2,"type":"PING","seq":1,"payload":{"t0_us":1}}`, CodeUnsupportedVersion},
		{"no type", `{"v":1,"seq":1,"payload":{}}`, CodeMissingField},
		{"unknown type", `{"v":1,"type":"SELF_DESTRUCT","seq":1,"payload":{}}`, CodeUnknownType},
		{"no seq", `{"v":1,"type":"PING","payload":{"t0_us":1}}`, CodeMissingField},
		{"unknown envelope field", `{"v":1,"type":"PING","seq":1,"payload":{"t0_us":1},"x":1}`, CodeUnknownField},
		{"unknown payload field", `{"v":1,"type":"PING","seq":1,"payload":{"t0_us":1,"evil":true}}`, CodeUnknownField},
		{"unknown nested field", `{"v":1,"type":"PLAYER_STATE_CHANGED","seq":1,"payload":{"state":{"device_id":"a","status":"idle","track":{"uri":"roomcast:track:1","x":1}}}}`, CodeUnknownField},
		{"no payload", `{"v":1,"type":"PING","seq":1}`, CodeMissingField},
		{"null payload", `{"v":1,"type":"PING","seq":1,"payload":null}`, CodeMissingField},
		{"missing t0", `{"v":1,"type":"PING","seq":1,"payload":{}}`, CodeMissingField},
		{"wrong type", `{"v":1,"type":"PING","seq":1,"payload":{"t0_us":"soon"}}`, CodeInvalidField},
		{"negative seq", `{"v":1,"type":"PING","seq":-1,"payload":{"t0_us":1}}`, CodeInvalidField},
		{"command without id", `{"v":1,"type":"COMMAND","seq":1,"payload":{"name":"pause"}}`, CodeMissingField},
		{"command without name", `{"v":1,"type":"COMMAND","seq":1,"id":"a","payload":{}}`, CodeMissingField},
		{"unknown command", `{"v":1,"type":"COMMAND","seq":1,"id":"a","payload":{"name":"explode"}}`, CodeInvalidField},
		{"seek without position", `{"v":1,"type":"COMMAND","seq":1,"id":"a","payload":{"name":"seek"}}`, CodeMissingField},
		{"seek negative", `{"v":1,"type":"COMMAND","seq":1,"id":"a","payload":{"name":"seek","position_ms":-5}}`, CodeInvalidField},
		{"volume 101", `{"v":1,"type":"COMMAND","seq":1,"id":"a","payload":{"name":"volume","volume":101}}`, CodeInvalidField},
		{"volume missing", `{"v":1,"type":"COMMAND","seq":1,"id":"a","payload":{"name":"volume"}}`, CodeMissingField},
		{"bad repeat", `{"v":1,"type":"COMMAND","seq":1,"id":"a","payload":{"name":"repeat","repeat":"forever"}}`, CodeInvalidField},
		{"play nothing", `{"v":1,"type":"COMMAND","seq":1,"id":"a","payload":{"name":"play"}}`, CodeMissingField},
		{"play bad uri", `{"v":1,"type":"COMMAND","seq":1,"id":"a","payload":{"name":"play","uris":["file:///etc/passwd"]}}`, CodeInvalidField},
		{"play offset out of range", `{"v":1,"type":"COMMAND","seq":1,"id":"a","payload":{"name":"play","uris":["roomcast:track:1"],"offset":1}}`, CodeInvalidField},
		{"hello wrong version", `{"v":1,"type":"HELLO","seq":1,"payload":{"protocol_version":9,"device":{"id":"a","name":"A","type":"speaker","volume":1}}}`, CodeUnsupportedVersion},
		{"hello no device id", `{"v":1,"type":"HELLO","seq":1,"payload":{"protocol_version":1,"device":{"name":"A","type":"speaker","volume":1}}}`, CodeMissingField},
		{"hello bad device id", `{"v":1,"type":"HELLO","seq":1,"payload":{"protocol_version":1,"device":{"id":"../x","name":"A","type":"speaker","volume":1}}}`, CodeInvalidField},
		{"hello bad type", `{"v":1,"type":"HELLO","seq":1,"payload":{"protocol_version":1,"device":{"id":"a","name":"A","type":"toaster","volume":1}}}`, CodeInvalidField},
		{"state bad status", `{"v":1,"type":"PLAYER_STATE_CHANGED","seq":1,"payload":{"state":{"device_id":"a","status":"dancing"}}}`, CodeInvalidField},
		{"state no status", `{"v":1,"type":"PLAYER_STATE_CHANGED","seq":1,"payload":{"state":{"device_id":"a"}}}`, CodeMissingField},
		{"transfer no device", `{"v":1,"type":"TRANSFER_PLAYBACK","seq":1,"id":"a","payload":{}}`, CodeMissingField},
		{"ack no ref", `{"v":1,"type":"ACK","seq":1,"payload":{}}`, CodeMissingField},
		{"error no code", `{"v":1,"type":"ERROR","seq":1,"payload":{"message":"x"}}`, CodeMissingField},
		{"goodbye no reason", `{"v":1,"type":"GOODBYE","seq":1,"payload":{}}`, CodeMissingField},
		{"device state empty", `{"v":1,"type":"DEVICE_STATE_CHANGED","seq":1,"payload":{}}`, CodeMissingField},
		{"huge int", `{"v":1,"type":"PING","seq":1,"payload":{"t0_us":1e400}}`, CodeInvalidField},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode([]byte(c.in))
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("got %v (%T), want a *DecodeError", err, err)
			}
			if de.Code != c.code {
				t.Fatalf("code %s, want %s (%v)", de.Code, c.code, err)
			}
		})
	}
}

func TestEncodeRefusesInvalid(t *testing.T) {
	if _, err := Encode(Frame{Seq: 1, ID: "a", Msg: &Command{Name: CmdVolume, Volume: ptr(300)}}); err == nil {
		t.Fatal("Encode accepted volume 300")
	}
	if _, err := EncodeBody("", 0, &Ping{}); err == nil {
		t.Fatal("EncodeBody accepted a ping without t0")
	}
}

func TestNewer(t *testing.T) {
	cases := []struct {
		a, b PlayerState
		want bool
	}{
		{PlayerState{ServerTS: 2}, PlayerState{ServerTS: 1}, true},
		{PlayerState{ServerTS: 1}, PlayerState{ServerTS: 2}, false},
		{PlayerState{ServerTS: 1, Version: 5}, PlayerState{ServerTS: 1, Version: 4}, true},
		{PlayerState{ServerTS: 1, Version: 4, DeviceID: "b"}, PlayerState{ServerTS: 1, Version: 4, DeviceID: "a"}, true},
		{PlayerState{ServerTS: 1, Version: 4, DeviceID: "a"}, PlayerState{ServerTS: 1, Version: 4, DeviceID: "b"}, false},
	}
	for i, c := range cases {
		if got := Newer(&c.a, &c.b); got != c.want {
			t.Errorf("case %d: Newer = %v, want %v", i, got, c.want)
		}
		// Exactly one side wins unless the states are identical.
		if !reflect.DeepEqual(c.a, c.b) && Newer(&c.a, &c.b) == Newer(&c.b, &c.a) {
			t.Errorf("case %d: Newer is not antisymmetric", i)
		}
	}
}

func TestPositionAt(t *testing.T) {
	s := PlayerState{Status: StatusPlaying, PositionMS: 1000, ServerTS: 10_000, Track: &Track{URI: "roomcast:track:1", DurationMS: 3000}}
	for _, c := range []struct{ now, want int64 }{{9_000, 1000}, {10_000, 1000}, {10_500, 1500}, {20_000, 3000}} {
		if got := s.PositionAt(c.now); got != c.want {
			t.Errorf("PositionAt(%d) = %d, want %d", c.now, got, c.want)
		}
	}
	s.Status = StatusPaused
	if got := s.PositionAt(20_000); got != 1000 {
		t.Errorf("paused PositionAt = %d, want 1000", got)
	}
}

func FuzzDecode(f *testing.F) {
	for _, fr := range validFrames() {
		b, err := Encode(fr)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"v":1,"type":"PING","seq":1,"payload":{"t0_us":1}} x`))
	f.Add([]byte(`{"v":1,"type":"COMMAND","seq":1,"id":"a","payload":{"name":"play","uris":[],"offset":-1}}`))
	f.Add([]byte(`{"v":1,"type":"HELLO","seq":1,"payload":{"protocol_version":1,"device":{"id":"a","name":"A","type":"speaker","volume":1,"capabilities":null}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := Decode(data)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode returned %T, want *DecodeError", err)
			}
			return
		}
		// Whatever decodes must re-encode and decode to the same frame.
		b, err := Encode(fr)
		if err != nil {
			t.Fatalf("decoded frame does not re-encode: %v", err)
		}
		fr2, err := Decode(b)
		if err != nil {
			t.Fatalf("re-encoded frame does not decode: %v\n%s", err, b)
		}
		j1, _ := json.Marshal(fr.Msg)
		j2, _ := json.Marshal(fr2.Msg)
		if string(j1) != string(j2) || fr.Seq != fr2.Seq || fr.ID != fr2.ID {
			t.Fatalf("round trip changed the frame:\n%s\n%s", j1, j2)
		}
	})
}
