// Package protocol defines roomcast's wire format: a versioned JSON
// envelope carried in websocket text frames, one Go type per message, and
// strict decoding.
//
// Decoding is strict: a frame larger than MaxFrameBytes, malformed JSON,
// trailing data, an unknown message type, an unknown field at any depth, a
// missing required field or an out-of-range value each give a *DecodeError
// with a Code; no input makes Decode panic. The spec for humans is
// docs/protocol.md.
//
// All functions are safe for concurrent use; values are not.
package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Version is the protocol version this code speaks.
const Version = 1

// MaxFrameBytes is the largest frame either side accepts by default.
const MaxFrameBytes = 256 << 10

// Type is a message's wire name.
type Type string

const (
	TypeHello              Type = "HELLO"
	TypeWelcome            Type = "WELCOME"
	TypePing               Type = "PING"
	TypePong               Type = "PONG"
	TypePlayerStateChanged Type = "PLAYER_STATE_CHANGED"
	TypeCommand            Type = "COMMAND"
	TypeDeviceStateChanged Type = "DEVICE_STATE_CHANGED"
	TypeTransferPlayback   Type = "TRANSFER_PLAYBACK"
	TypeAck                Type = "ACK"
	TypeError              Type = "ERROR"
	TypeGoodbye            Type = "GOODBYE"
)

// Message is implemented by every message type.
type Message interface {
	Type() Type
	// Validate reports missing or out-of-range fields as a *DecodeError.
	Validate() error
}

// newMessage maps a wire type to a fresh value of its Go type.
func newMessage(t Type) Message {
	switch t {
	case TypeHello:
		return new(Hello)
	case TypeWelcome:
		return new(Welcome)
	case TypePing:
		return new(Ping)
	case TypePong:
		return new(Pong)
	case TypePlayerStateChanged:
		return new(PlayerStateChanged)
	case TypeCommand:
		return new(Command)
	case TypeDeviceStateChanged:
		return new(DeviceStateChanged)
	case TypeTransferPlayback:
		return new(TransferPlayback)
	case TypeAck:
		return new(Ack)
	case TypeError:
		return new(Error)
	case TypeGoodbye:
		return new(Goodbye)
	}
	return nil
}

// Frame is one decoded envelope.
//
//	{"v":1,"type":"COMMAND","seq":7,"id":"c-12","ts":1732000000000,"payload":{...}}
//
// Seq is the sender's per-connection sequence number, starting at 1 and
// strictly increasing. ID is the request id of COMMAND and
// TRANSFER_PLAYBACK (the idempotency key), TS is the broker's clock (Unix
// ms) on frames the broker sends.
type Frame struct {
	Seq uint64
	ID  string
	TS  int64
	Msg Message
}

// envelope is the JSON shape of a Frame.
type envelope struct {
	V       int             `json:"v"`
	Type    Type            `json:"type"`
	Seq     uint64          `json:"seq"`
	ID      string          `json:"id,omitempty"`
	TS      int64           `json:"ts,omitempty"`
	Payload json.RawMessage `json:"payload"`
}

// DecodeCode classifies a decoding failure.
type DecodeCode string

const (
	CodeTooLarge           DecodeCode = "frame_too_large"
	CodeMalformed          DecodeCode = "malformed"
	CodeUnsupportedVersion DecodeCode = "unsupported_version"
	CodeUnknownType        DecodeCode = "unknown_type"
	CodeUnknownField       DecodeCode = "unknown_field"
	CodeMissingField       DecodeCode = "missing_field"
	CodeInvalidField       DecodeCode = "invalid_field"
)

// DecodeError is the only error type Decode returns.
type DecodeError struct {
	Code   DecodeCode
	Type   Type // the message type, when it was known
	Detail string
}

func (e *DecodeError) Error() string {
	if e.Type != "" {
		return fmt.Sprintf("protocol: %s in %s: %s", e.Code, e.Type, e.Detail)
	}
	return fmt.Sprintf("protocol: %s: %s", e.Code, e.Detail)
}

func missing(field string) error {
	return &DecodeError{Code: CodeMissingField, Detail: field}
}

func invalid(field, why string) error {
	return &DecodeError{Code: CodeInvalidField, Detail: field + ": " + why}
}

// Decode parses and validates one frame of at most MaxFrameBytes.
func Decode(data []byte) (Frame, error) {
	return DecodeLimit(data, MaxFrameBytes)
}

// DecodeLimit is Decode with an explicit size limit.
func DecodeLimit(data []byte, limit int) (Frame, error) {
	if len(data) > limit {
		return Frame{}, &DecodeError{Code: CodeTooLarge, Detail: fmt.Sprintf("%d bytes, limit %d", len(data), limit)}
	}
	var env envelope
	if err := strictUnmarshal(data, &env); err != nil {
		return Frame{}, err
	}
	if env.V == 0 {
		return Frame{}, missing("v")
	}
	if env.V != Version {
		return Frame{}, &DecodeError{Code: CodeUnsupportedVersion, Detail: fmt.Sprintf("envelope v %d, this side speaks %d", env.V, Version)}
	}
	if env.Type == "" {
		return Frame{}, missing("type")
	}
	if env.Seq == 0 {
		return Frame{}, missing("seq")
	}
	if len(env.ID) > MaxIDLen {
		return Frame{}, invalid("id", "too long")
	}
	msg := newMessage(env.Type)
	if msg == nil {
		return Frame{}, &DecodeError{Code: CodeUnknownType, Detail: strconv.Quote(string(env.Type))}
	}
	if len(env.Payload) == 0 || bytes.Equal(env.Payload, []byte("null")) {
		return Frame{}, &DecodeError{Code: CodeMissingField, Type: env.Type, Detail: "payload"}
	}
	if err := strictUnmarshal(env.Payload, msg); err != nil {
		return Frame{}, withType(err, env.Type)
	}
	if err := msg.Validate(); err != nil {
		return Frame{}, withType(err, env.Type)
	}
	if (env.Type == TypeCommand || env.Type == TypeTransferPlayback) && env.ID == "" {
		return Frame{}, &DecodeError{Code: CodeMissingField, Type: env.Type, Detail: "id"}
	}
	return Frame{Seq: env.Seq, ID: env.ID, TS: env.TS, Msg: msg}, nil
}

func withType(err error, t Type) error {
	var de *DecodeError
	if errors.As(err, &de) {
		de.Type = t
		return de
	}
	return &DecodeError{Code: CodeMalformed, Type: t, Detail: err.Error()}
}

// strictUnmarshal decodes exactly one JSON value, rejecting unknown fields
// and trailing data.
func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		msg := err.Error()
		if rest, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
			return &DecodeError{Code: CodeUnknownField, Detail: rest}
		}
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) && ute.Field != "" {
			return &DecodeError{Code: CodeInvalidField, Detail: fmt.Sprintf("%s: want %s, got %s", ute.Field, ute.Type, ute.Value)}
		}
		return &DecodeError{Code: CodeMalformed, Detail: msg}
	}
	for _, c := range data[dec.InputOffset():] {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return &DecodeError{Code: CodeMalformed, Detail: "trailing data after the JSON value"}
		}
	}
	return nil
}

// Encode serialises a frame. It validates the message first, so that a
// sender never puts on the wire what the other side would reject.
func Encode(f Frame) ([]byte, error) {
	if f.Msg == nil {
		return nil, errors.New("protocol: encode: nil message")
	}
	if err := f.Msg.Validate(); err != nil {
		return nil, fmt.Errorf("protocol: encode %s: %w", f.Msg.Type(), err)
	}
	payload, err := json.Marshal(f.Msg)
	if err != nil {
		return nil, fmt.Errorf("protocol: encode %s: %w", f.Msg.Type(), err)
	}
	return json.Marshal(envelope{V: Version, Type: f.Msg.Type(), Seq: f.Seq, ID: f.ID, TS: f.TS, Payload: payload})
}

// EncodeBody serialises a frame without its seq field, as a JSON object
// missing its opening brace: `"v":1,"type":...}`. A writer that numbers
// frames per connection prepends `{"seq":N,` (see AppendSeq), so one
// encoding can be fanned out to many connections.
func EncodeBody(id string, ts int64, m Message) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("protocol: encode %s: %w", m.Type(), err)
	}
	payload, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("protocol: encode %s: %w", m.Type(), err)
	}
	type bodyEnv struct {
		V       int             `json:"v"`
		Type    Type            `json:"type"`
		ID      string          `json:"id,omitempty"`
		TS      int64           `json:"ts,omitempty"`
		Payload json.RawMessage `json:"payload"`
	}
	b, err := json.Marshal(bodyEnv{V: Version, Type: m.Type(), ID: id, TS: ts, Payload: payload})
	if err != nil {
		return nil, err
	}
	return b[1:], nil
}

// AppendSeq appends `{"seq":N,` to dst: the prefix EncodeBody's output
// needs to become a complete frame.
func AppendSeq(dst []byte, seq uint64) []byte {
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	return append(dst, ',')
}
