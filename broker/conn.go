package broker

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/roomcast/roomcast/protocol"
)

// Close codes the broker uses besides the standard ones (1000 normal, 1001
// going away, 1008 policy, 1009 too big, 1012 service restart).
const (
	CloseReplaced         = 4000 // a newer connection of the same device took over
	CloseSlowConsumer     = 4001 // the send queue overflowed
	CloseHeartbeatTimeout = 4002 // nothing heard within DropAfter
	CloseProtocolErrors   = 4003 // too many malformed frames, or no HELLO first
	CloseTokenRevoked     = 4004 // the token the connection logged in with was revoked
)

// outFrame is one queued server frame: a body from protocol.EncodeBody,
// numbered by the writer. It is immutable once queued, so one outFrame is
// shared by every recipient of a broadcast (queues hold pointers: 8 bytes
// a slot, which keeps an idle connection small).
type outFrame struct {
	body []byte
	typ  protocol.Type
	// recv is when the frame that caused this one was read, for the
	// fan-out latency histogram (zero: not measured).
	recv time.Time
}

// conn is one websocket client. The reader is the HTTP handler's
// goroutine, the writer is writeLoop; everything else talks to the
// connection through send and closeWith, which are safe for concurrent use
// and never block.
type conn struct {
	b         *Broker
	ws        *websocket.Conn
	user      string
	tokenHash string // store.HashToken of the token it logged in with
	session   string
	// device is set before the connection is registered and not changed
	// afterwards except by the owning hub.
	device protocol.DeviceInfo

	out        chan *outFrame
	done       chan struct{} // closed by closeWith
	readerDone chan struct{} // closed when the read side has finished

	closeOnce   sync.Once
	closeCode   int    // written once inside closeOnce, read by writeLoop after done
	closeReason string // idem
}

func newConn(b *Broker, ws *websocket.Conn, user string) *conn {
	return &conn{
		b:          b,
		ws:         ws,
		user:       user,
		out:        make(chan *outFrame, b.opts.SendQueue),
		done:       make(chan struct{}),
		readerDone: make(chan struct{}),
	}
}

// send queues a frame. A full queue means the client does not keep up: it
// is disconnected with CloseSlowConsumer rather than allowed to delay
// anyone. It reports whether the frame was queued.
func (c *conn) send(f *outFrame) bool {
	select {
	case <-c.done:
		return false
	default:
	}
	select {
	case c.out <- f:
		return true
	default:
		c.closeWith(CloseSlowConsumer, "slow consumer: send queue full")
		return false
	}
}

// sendMsg encodes and queues one message.
func (c *conn) sendMsg(id string, m protocol.Message) bool {
	body, err := protocol.EncodeBody(id, time.Now().UnixMilli(), m)
	if err != nil {
		c.b.log.Error("encode", "type", m.Type(), "err", err)
		return false
	}
	return c.send(&outFrame{body: body, typ: m.Type()})
}

// closeWith starts closing the connection with a close code; the first
// call wins. It does not block: the writer finishes the frame it is
// writing (bounded by WriteTimeout), then sends the close frame (bounded
// by WriteTimeout again) and drops the TCP connection. So a client that
// is slow but alive still learns the close code, and a dead one holds
// its socket for at most twice WriteTimeout.
func (c *conn) closeWith(code int, reason string) {
	c.closeOnce.Do(func() {
		c.closeCode, c.closeReason = code, reason
		// Counted before the writer may send the close frame: a client
		// that sees its close code finds it in /metrics.
		c.b.metrics.disconnects.WithLabelValues(closeLabel(code)).Inc()
		close(c.done)
	})
}

func closeLabel(code int) string {
	switch code {
	case CloseReplaced:
		return "replaced"
	case CloseSlowConsumer:
		return "slow_consumer"
	case CloseHeartbeatTimeout:
		return "heartbeat_timeout"
	case CloseProtocolErrors:
		return "protocol_error"
	case CloseTokenRevoked:
		return "token_revoked"
	case websocket.CloseMessageTooBig:
		return "too_large"
	case websocket.CloseServiceRestart:
		return "shutdown"
	}
	return "closed"
}

// writeLoop owns all writes to the socket except gorilla's own control
// replies. It numbers frames, sends heartbeats and, once done is closed,
// the close frame.
func (c *conn) writeLoop() {
	defer c.b.wg.Done()
	defer c.ws.NetConn().Close()
	hb := time.NewTicker(c.b.opts.HeartbeatInterval)
	defer hb.Stop()
	var seq uint64
	var prefix []byte
	for {
		select {
		case f := <-c.out:
			seq++
			prefix = protocol.AppendSeq(prefix[:0], seq)
			if err := c.write(prefix, f.body); err != nil {
				// A write that cannot finish within WriteTimeout means the
				// client stopped reading: it is a slow consumer too.
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					c.closeWith(CloseSlowConsumer, "slow consumer: write timed out")
				} else {
					c.closeWith(websocket.CloseAbnormalClosure, "write failed")
				}
				continue
			}
			c.b.metrics.sentByType(f.typ).Inc()
			if !f.recv.IsZero() {
				c.b.metrics.fanout.Observe(time.Since(f.recv).Seconds())
			}
		case <-hb.C:
			deadline := time.Now().Add(c.b.opts.WriteTimeout)
			if err := c.ws.WriteControl(websocket.PingMessage, nil, deadline); err != nil {
				c.closeWith(websocket.CloseAbnormalClosure, "ping failed")
				continue
			}
			// The application-level ping lets clients without access to
			// websocket pings (browsers) see the heartbeat and estimate
			// their clock offset.
			c.sendMsg("", &protocol.Ping{T0US: time.Now().UnixMicro()})
		case <-c.done:
			// Frames queued before the close (a GOODBYE) go out first,
			// unless the queue overflowing is why we close.
			for c.closeCode != CloseSlowConsumer && len(c.out) > 0 {
				f := <-c.out
				seq++
				prefix = protocol.AppendSeq(prefix[:0], seq)
				if c.write(prefix, f.body) != nil {
					break
				}
			}
			msg := websocket.FormatCloseMessage(c.closeCode, c.closeReason)
			_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(c.b.opts.WriteTimeout))
			// Closing handshake: wait for the client's close (the reader
			// then ends) before dropping TCP, or unread bytes turn our
			// close into a reset and the client never sees the code.
			t := time.NewTimer(c.b.opts.WriteTimeout)
			select {
			case <-c.readerDone:
			case <-t.C:
			}
			t.Stop()
			return
		}
	}
}

func (c *conn) write(prefix, body []byte) error {
	if err := c.ws.SetWriteDeadline(time.Now().Add(c.b.opts.WriteTimeout)); err != nil {
		return err
	}
	w, err := c.ws.NextWriter(websocket.TextMessage)
	if err != nil {
		return err
	}
	if _, err := w.Write(prefix); err != nil {
		return err
	}
	if _, err := w.Write(body); err != nil {
		return err
	}
	return w.Close()
}

// readLoop reads frames until the connection ends and hands them to the
// hub. It answers PING itself so the reply carries precise timestamps.
// It returns the reason the connection ended.
func (c *conn) readLoop(h *hub, lastSeq uint64) string {
	dropAfter := c.b.opts.DropAfter
	c.ws.SetPongHandler(func(string) error {
		return c.ws.SetReadDeadline(time.Now().Add(dropAfter))
	})
	var errCount int
	var errWindow time.Time
	for {
		if err := c.ws.SetReadDeadline(time.Now().Add(dropAfter)); err != nil {
			return "closed"
		}
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return c.readErrorReason(err)
		}
		recv := time.Now()
		f, err := protocol.DecodeLimit(data, c.b.opts.MaxFrameBytes)
		if err == nil && f.Seq <= lastSeq {
			err = &protocol.DecodeError{Code: protocol.CodeInvalidField, Type: f.Msg.Type(), Detail: "seq must increase"}
		}
		if err != nil {
			c.b.metrics.protocolErrors.Inc()
			c.sendMsg("", &protocol.Error{Code: protocol.ErrProtocol, Message: err.Error()})
			if recv.Sub(errWindow) > c.b.opts.ProtocolErrorWindow {
				errWindow, errCount = recv, 0
			}
			errCount++
			if errCount > c.b.opts.MaxProtocolErrors {
				c.closeWith(CloseProtocolErrors, "too many protocol errors")
				return "protocol_error"
			}
			continue
		}
		lastSeq = f.Seq
		c.b.metrics.receivedByType(f.Msg.Type()).Inc()
		switch m := f.Msg.(type) {
		case *protocol.Ping:
			now := time.Now().UnixMicro()
			c.sendMsg("", &protocol.Pong{T0US: m.T0US, T1US: recv.UnixMicro(), T2US: now})
			continue
		case *protocol.Pong:
			continue // the read deadline was already extended
		case *protocol.Hello:
			c.sendMsg("", &protocol.Error{Code: protocol.ErrProtocol, Message: "HELLO was already received"})
			continue
		}
		if !h.post(evFrame{c: c, f: f, recv: recv}) {
			return "shutdown"
		}
	}
}

func (c *conn) readErrorReason(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		c.closeWith(CloseHeartbeatTimeout, "heartbeat timeout")
		return "timeout"
	case errors.Is(err, websocket.ErrReadLimit):
		c.closeWith(websocket.CloseMessageTooBig, "frame too large")
		return "too_large"
	}
	c.closeWith(websocket.CloseNormalClosure, "")
	return "left"
}
