// Package client dials a roomcast broker and speaks the protocol: HELLO and
// WELCOME, numbered frames, automatic answers to the broker's pings, and
// request/acknowledgement matching.
//
// A Client is safe for concurrent use. One reader goroutine owns the
// socket's read side; writes are serialised by a mutex (gorilla/websocket
// allows one writer at a time).
package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/roomcast/roomcast/protocol"
)

// Options tune a connection; zero values are fine.
type Options struct {
	// HandshakeTimeout bounds dialing plus HELLO/WELCOME (default 10s).
	HandshakeTimeout time.Duration
	// FrameBuffer is the capacity of the Frames channel (default 256).
	// When it is full the reader stops reading, and the broker will
	// eventually treat the client as a slow consumer.
	FrameBuffer int
	// NetDial, when set, dials the TCP connection (tests use it to shrink
	// socket buffers or go through a proxy).
	NetDial func(network, addr string) (net.Conn, error)
}

// Client is one connection to a broker.
type Client struct {
	ws      *websocket.Conn
	frames  chan protocol.Frame
	done    chan struct{}
	welcome *protocol.Welcome

	writeMu sync.Mutex // guards ws writes and seq
	seq     uint64

	waitMu  sync.Mutex // guards waiters
	waiters map[string]chan protocol.Message

	idPrefix string
	nextID   atomic.Uint64

	errOnce sync.Once
	err     error // set once, before done is closed
	// lastServerSeq is the reader's view of the broker's numbering.
	lastServerSeq uint64
	// clockMu guards samples: the last clockSamples answers to our PINGs.
	clockMu sync.Mutex
	samples []clockSample
}

// writeTimeout bounds one frame's write (a Send, or a pong behind it).
const writeTimeout = 10 * time.Second

// clockSamples is how many recent PING answers ClockOffset chooses from.
const clockSamples = 8

// clockSample is one NTP-style measurement, in microseconds.
type clockSample struct{ offset, rtt int64 }

// WebsocketURL turns a broker base URL (http://host:port) into the
// connect endpoint's ws:// or wss:// URL.
func WebsocketURL(broker string) (string, error) {
	u, err := url.Parse(broker)
	if err != nil {
		return "", fmt.Errorf("broker URL %q: %w", broker, err)
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "ws"
	case "https", "wss":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("broker URL %q: scheme must be http or https", broker)
	}
	if u.Host == "" {
		return "", fmt.Errorf("broker URL %q: no host", broker)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/connect"
	return u.String(), nil
}

// HandshakeError is returned by Dial when the broker refuses the
// websocket upgrade (for example 401 for a bad token).
type HandshakeError struct {
	Status int
	Body   string
}

func (e *HandshakeError) Error() string {
	if e.Status == http.StatusUnauthorized {
		return "broker refused the token (401 unauthorized)"
	}
	return fmt.Sprintf("broker refused the connection: HTTP %d %s", e.Status, strings.TrimSpace(e.Body))
}

// CloseTokenRevoked is the close code of a connection whose token the
// broker revoked (docs/protocol.md; broker.CloseTokenRevoked).
const CloseTokenRevoked = 4004

// TokenRefused reports whether err says that the broker no longer accepts
// the token: Dial was refused with 401, or the connection was closed with
// CloseTokenRevoked. Retrying with the same token cannot help.
func TokenRefused(err error) bool {
	var he *HandshakeError
	if errors.As(err, &he) {
		return he.Status == http.StatusUnauthorized
	}
	var ce *CloseError
	return errors.As(err, &ce) && ce.Code == CloseTokenRevoked
}

// Dial connects, sends hello and waits for the welcome.
func Dial(ctx context.Context, broker, token string, hello protocol.Hello, opts Options) (*Client, error) {
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = 10 * time.Second
	}
	if opts.FrameBuffer <= 0 {
		opts.FrameBuffer = 256
	}
	if hello.ProtocolVersion == 0 {
		hello.ProtocolVersion = protocol.Version
	}
	wsURL, err := WebsocketURL(broker)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, opts.HandshakeTimeout)
	defer cancel()
	d := websocket.Dialer{HandshakeTimeout: opts.HandshakeTimeout, NetDial: opts.NetDial, Proxy: nil}
	hdr := http.Header{}
	hdr.Set("Authorization", "Bearer "+token)
	ws, resp, err := d.DialContext(ctx, wsURL, hdr)
	if err != nil {
		if resp != nil {
			var body [256]byte
			n, _ := resp.Body.Read(body[:])
			resp.Body.Close()
			return nil, &HandshakeError{Status: resp.StatusCode, Body: string(body[:n])}
		}
		return nil, fmt.Errorf("connect to %s: %w", broker, err)
	}
	var idp [4]byte
	_, _ = rand.Read(idp[:])
	c := &Client{
		ws:       ws,
		frames:   make(chan protocol.Frame, opts.FrameBuffer),
		done:     make(chan struct{}),
		waiters:  map[string]chan protocol.Message{},
		idPrefix: hex.EncodeToString(idp[:]) + "-",
	}
	ws.SetReadLimit(protocol.MaxFrameBytes)
	if err := c.Send("", &hello); err != nil {
		ws.Close()
		return nil, err
	}
	deadline, _ := ctx.Deadline()
	_ = ws.SetReadDeadline(deadline)
	_, data, err := ws.ReadMessage()
	if err != nil {
		ws.Close()
		return nil, fmt.Errorf("waiting for welcome: %w", closeErr(err))
	}
	f, err := protocol.Decode(data)
	if err != nil {
		ws.Close()
		return nil, fmt.Errorf("waiting for welcome: %w", err)
	}
	w, ok := f.Msg.(*protocol.Welcome)
	if !ok {
		ws.Close()
		if e, ok := f.Msg.(*protocol.Error); ok {
			return nil, e
		}
		return nil, fmt.Errorf("waiting for welcome: got %s", f.Msg.Type())
	}
	c.lastServerSeq = f.Seq
	c.welcome = w
	_ = ws.SetReadDeadline(time.Time{})
	go c.readLoop()
	return c, nil
}

// Welcome is the broker's answer to our hello.
func (c *Client) Welcome() *protocol.Welcome { return c.welcome }

// Frames delivers every frame that is not an answer to Request, in order.
// It is closed when the connection ends; Err then says why.
func (c *Client) Frames() <-chan protocol.Frame { return c.frames }

// Done is closed when the connection has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is why the connection ended (nil while it is open).
func (c *Client) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// NewID returns a request id unique to this client.
func (c *Client) NewID() string {
	return c.idPrefix + fmt.Sprint(c.nextID.Add(1))
}

// Send writes one message with request id id (may be empty).
func (c *Client) Send(id string, m protocol.Message) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.seq++
	b, err := protocol.Encode(protocol.Frame{Seq: c.seq, ID: id, Msg: m})
	if err != nil {
		return err
	}
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		return fmt.Errorf("send %s: %w", m.Type(), err)
	}
	return nil
}

// SendRaw writes bytes as one text frame, unchecked (for tests of the
// broker's decoder).
func (c *Client) SendRaw(b []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

// Request sends m under a fresh id and waits for the ACK or ERROR that
// refers to it. An ERROR comes back as a *protocol.Error.
func (c *Client) Request(ctx context.Context, m protocol.Message) (*protocol.Ack, error) {
	return c.RequestID(ctx, c.NewID(), m)
}

// RequestID is Request with a caller-chosen id (an idempotency key).
func (c *Client) RequestID(ctx context.Context, id string, m protocol.Message) (*protocol.Ack, error) {
	ch := make(chan protocol.Message, 1)
	c.waitMu.Lock()
	c.waiters[id] = ch
	c.waitMu.Unlock()
	defer func() {
		c.waitMu.Lock()
		delete(c.waiters, id)
		c.waitMu.Unlock()
	}()
	if err := c.Send(id, m); err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		switch r := r.(type) {
		case *protocol.Ack:
			return r, nil
		case *protocol.Error:
			return nil, r
		}
		return nil, fmt.Errorf("unexpected answer %s", r.Type())
	case <-c.done:
		return nil, fmt.Errorf("connection closed while waiting for an answer: %w", c.err)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// ClockOffset is ClockEstimate without ok: zero before any answer.
func (c *Client) ClockOffset() (offset, rtt time.Duration) {
	offset, rtt, _ = c.ClockEstimate()
	return offset, rtt
}

// ClockEstimate estimates the broker's clock minus ours, NTP-style: of the
// last 8 answered Pings it takes the one with the shortest round trip
// (the least queueing, so the most symmetric path), and returns its offset
// and round trip. ok is false before any answer.
func (c *Client) ClockEstimate() (offset, rtt time.Duration, ok bool) {
	c.clockMu.Lock()
	defer c.clockMu.Unlock()
	if len(c.samples) == 0 {
		return 0, 0, false
	}
	best := c.samples[0]
	for _, s := range c.samples[1:] {
		if s.rtt < best.rtt {
			best = s
		}
	}
	return time.Duration(best.offset) * time.Microsecond, time.Duration(best.rtt) * time.Microsecond, true
}

// Ping sends a PING; the answer updates ClockOffset.
func (c *Client) Ping() error {
	return c.Send("", &protocol.Ping{T0US: time.Now().UnixMicro()})
}

// Close ends the connection with a normal close frame.
func (c *Client) Close() error {
	c.writeMu.Lock()
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.writeMu.Unlock()
	c.fail(errors.New("closed by client"))
	return c.ws.Close()
}

// Abort drops the TCP connection without a close frame, as a crashed or
// unplugged device would.
func (c *Client) Abort() { c.ws.NetConn().Close() }

func (c *Client) fail(err error) {
	c.errOnce.Do(func() {
		c.err = err
		close(c.done)
	})
}

// CloseError reports the close code and reason the broker sent, if any.
type CloseError = websocket.CloseError

func closeErr(err error) error {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce
	}
	return err
}

func (c *Client) readLoop() {
	defer close(c.frames)
	defer c.ws.Close()
	// The broker pings every heartbeat_ms; silence for drop_after_ms means
	// the path is dead (a frozen network never returns an error by itself).
	silence := time.Duration(c.welcome.DropAfterMS) * time.Millisecond
	if silence > 0 {
		c.ws.SetPingHandler(func(data string) error {
			// WriteControl may run concurrently with Send (gorilla), but
			// it waits for a frame being written: while the broker does
			// not read (its hub is backed up) a Send may take up to
			// writeTimeout, and the pong waits as long. A pong that still
			// cannot go out is not worth the connection (the stuck
			// write's own error ends it), as in gorilla's default handler.
			err := c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(writeTimeout))
			_ = c.ws.SetReadDeadline(time.Now().Add(silence))
			var ne net.Error
			if errors.Is(err, websocket.ErrCloseSent) || errors.As(err, &ne) && ne.Timeout() {
				return nil
			}
			return err
		})
	}
	for {
		if silence > 0 {
			_ = c.ws.SetReadDeadline(time.Now().Add(silence))
		}
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			c.fail(closeErr(err))
			return
		}
		t3 := time.Now().UnixMicro()
		f, err := protocol.Decode(data)
		if err != nil {
			c.fail(fmt.Errorf("broker sent a bad frame: %w", err))
			return
		}
		if f.Seq <= c.lastServerSeq {
			c.fail(fmt.Errorf("broker frame seq %d after %d", f.Seq, c.lastServerSeq))
			return
		}
		c.lastServerSeq = f.Seq
		switch m := f.Msg.(type) {
		case *protocol.Ping:
			now := time.Now().UnixMicro()
			_ = c.Send("", &protocol.Pong{T0US: m.T0US, T1US: t3, T2US: now})
			continue
		case *protocol.Pong:
			rtt := (t3 - m.T0US) - (m.T2US - m.T1US)
			if rtt >= 0 {
				c.clockMu.Lock()
				c.samples = append(c.samples, clockSample{offset: ((m.T1US - m.T0US) + (m.T2US - t3)) / 2, rtt: rtt})
				if len(c.samples) > clockSamples {
					c.samples = c.samples[1:]
				}
				c.clockMu.Unlock()
			}
		case *protocol.Ack:
			if c.deliver(m.Ref, m) {
				continue
			}
		case *protocol.Error:
			if m.Ref != "" && c.deliver(m.Ref, m) {
				continue
			}
		}
		select {
		case c.frames <- f:
		case <-c.done:
			return
		}
	}
}

func (c *Client) deliver(ref string, m protocol.Message) bool {
	c.waitMu.Lock()
	ch := c.waiters[ref]
	c.waitMu.Unlock()
	if ch == nil {
		return false
	}
	select {
	case ch <- m:
	default:
	}
	return true
}
