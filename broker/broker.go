// Package broker is roomcast's Connect hub: a websocket server that keeps
// every user's connected devices, relays commands to the active device,
// stamps and fans out player state, and moves playback between devices.
//
// Concurrency: each user has one hub goroutine that owns all of that
// user's state (devices, active device, player state, pending commands);
// connections talk to it with typed events. Each connection has its own
// writer goroutine and a bounded queue, so a slow client never delays
// another. The only shared maps (users' hubs, the token cache) sit behind
// one mutex each and are never held across I/O.
package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/roomcast/roomcast/broker/store"
	"github.com/roomcast/roomcast/protocol"
)

// Options configure a Broker. Zero values take the defaults listed.
type Options struct {
	// Addr is the listen address (default ":4100"); Listener, when set,
	// is used instead.
	Addr     string
	Listener net.Listener
	// MetricsAddr, when set, serves /metrics without a token there.
	MetricsAddr string
	// StateDir holds broker.db. Required unless Store is set.
	StateDir string
	Store    *store.Store
	Logger   *slog.Logger

	HeartbeatInterval time.Duration // server pings (default 8s)
	DropAfter         time.Duration // silence before a client is dropped (default 20s)
	HelloTimeout      time.Duration // time to send HELLO after connecting (default 10s)
	// RevocationPoll is how often the store is read for revoked tokens
	// (`roomcast-broker token revoke` may run in another process); their
	// connections are then closed with CloseTokenRevoked (default 2s).
	RevocationPoll      time.Duration
	WriteTimeout        time.Duration // one frame write (default 10s)
	CommandTimeout      time.Duration // device's ACK to a command (default 5s)
	TransferOutTimeout  time.Duration // old device's ACK to a transfer pause (default 1.5s)
	SendQueue           int           // frames queued per connection (default 256)
	MaxFrameBytes       int           // default protocol.MaxFrameBytes
	MaxProtocolErrors   int           // malformed frames tolerated per window (default 5)
	ProtocolErrorWindow time.Duration // default 60s
	PersistInterval     time.Duration // coalescing of state writes (default 250ms)

	// Mux, when set, receives the broker's routes; other packages (the
	// library, the web picker) add theirs to the same mux.
	Mux *http.ServeMux
	// Resolver, when set (a library), turns the URIs or context of a play
	// command or transfer into the track list with metadata and loudness
	// that devices receive in Command.Tracks / TransferPlayback.Tracks.
	Resolver Resolver
}

// Resolver resolves play lists. It is called from hub goroutines, so it
// must be safe for concurrent use and quick (an index lookup).
type Resolver interface {
	// ResolveTracks returns the tracks of contextURI (when set) or of
	// uris, in order; an unknown context or track is an error.
	ResolveTracks(contextURI string, uris []string) ([]protocol.Track, error)
}

func (o *Options) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if o.Addr == "" {
		o.Addr = ":4100"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	def(&o.HeartbeatInterval, 8*time.Second)
	def(&o.DropAfter, 20*time.Second)
	def(&o.HelloTimeout, 10*time.Second)
	def(&o.RevocationPoll, 2*time.Second)
	def(&o.WriteTimeout, 10*time.Second)
	def(&o.CommandTimeout, 5*time.Second)
	def(&o.TransferOutTimeout, 1500*time.Millisecond)
	def(&o.ProtocolErrorWindow, time.Minute)
	def(&o.PersistInterval, 250*time.Millisecond)
	if o.SendQueue <= 0 {
		o.SendQueue = 256
	}
	if o.MaxFrameBytes <= 0 {
		o.MaxFrameBytes = protocol.MaxFrameBytes
	}
	if o.MaxProtocolErrors <= 0 {
		o.MaxProtocolErrors = 5
	}
}

// Broker is the hub server. Create it with New, run it with Run.
type Broker struct {
	opts      Options
	log       *slog.Logger
	store     *store.Store
	ownsStore bool
	metrics   *metrics
	registry  *prometheus.Registry
	persist   *persister
	upgrader  websocket.Upgrader
	mux       *http.ServeMux
	started   time.Time

	quit     chan struct{} // closed when shutdown begins
	closing  atomic.Bool
	wg       sync.WaitGroup // connection goroutines
	hubsWG   sync.WaitGroup
	addrCh   chan net.Addr
	addr     atomic.Value // net.Addr once listening
	hubsMu   sync.Mutex   // guards hubs
	hubs     map[string]*hub
	tokensMu sync.Mutex // guards tokens
	tokens   map[string]string
}

// New prepares a broker; nothing listens until Run.
func New(opts Options) (*Broker, error) {
	opts.setDefaults()
	b := &Broker{
		opts:    opts,
		log:     opts.Logger,
		store:   opts.Store,
		quit:    make(chan struct{}),
		hubs:    map[string]*hub{},
		tokens:  map[string]string{},
		addrCh:  make(chan net.Addr, 1),
		started: time.Now(),
	}
	if b.store == nil {
		if opts.StateDir == "" {
			return nil, errors.New("broker: a state directory is required")
		}
		s, err := store.OpenDir(opts.StateDir)
		if err != nil {
			return nil, fmt.Errorf("broker: %w", err)
		}
		b.store, b.ownsStore = s, true
	}
	b.registry = prometheus.NewRegistry()
	b.metrics = newMetrics(b.registry)
	b.persist = newPersister(b.store, opts.PersistInterval, b.log)
	b.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		// A small read buffer of its own (frames are mostly a few hundred
		// bytes; larger ones are read through it in pieces) and write
		// buffers borrowed from a pool only while a frame is written:
		// an idle connection holds 1 KB of buffers.
		ReadBufferSize:  1024,
		WriteBufferSize: 4096,
		WriteBufferPool: &sync.Pool{},
	}
	b.mux = opts.Mux
	if b.mux == nil {
		b.mux = http.NewServeMux()
	}
	b.mux.HandleFunc("GET /v1/connect", b.serveConnect)
	b.mux.HandleFunc("GET /healthz", b.serveHealth)
	b.mux.Handle("GET /metrics", b.RequireToken(b.MetricsHandler()))
	b.mux.Handle("GET /v1/devices", b.RequireToken(http.HandlerFunc(b.serveDevices)))
	b.mux.Handle("GET /v1/state", b.RequireToken(http.HandlerFunc(b.serveState)))
	return b, nil
}

// Store returns the broker's database.
func (b *Broker) Store() *store.Store { return b.store }

// Handler is the broker's HTTP handler (the mux with every route).
func (b *Broker) Handler() http.Handler { return b.mux }

// MetricsHandler serves the broker's Prometheus metrics without auth.
func (b *Broker) MetricsHandler() http.Handler {
	return promhttpHandler(b.registry)
}

// Registry lets embedding code register further collectors.
func (b *Broker) Registry() *prometheus.Registry { return b.registry }

// Addr waits until the broker listens and returns its address.
func (b *Broker) Addr(ctx context.Context) (net.Addr, error) {
	if a, ok := b.addr.Load().(net.Addr); ok {
		return a, nil
	}
	select {
	case a := <-b.addrCh:
		return a, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Run serves until ctx is cancelled, then shuts down gracefully: every
// client gets GOODBYE and close code 1012 (reconnect later), pending state
// is flushed to disk. Cancelation is not an error.
func (b *Broker) Run(ctx context.Context) error {
	ln := b.opts.Listener
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", b.opts.Addr)
		if err != nil {
			return fmt.Errorf("broker: %w", err)
		}
	}
	b.addr.Store(ln.Addr())
	b.addrCh <- ln.Addr()
	srv := &http.Server{Handler: b.mux, ReadHeaderTimeout: 10 * time.Second}

	errc := make(chan error, 2)
	persistCtx, stopPersist := context.WithCancel(context.Background())
	persistDone := make(chan struct{})
	go func() { b.persist.run(persistCtx); close(persistDone) }()
	go func() { errc <- srv.Serve(ln) }()
	revokeCtx, cancelRevoke := context.WithCancel(context.Background())
	revokeDone := make(chan struct{})
	go func() { b.watchRevocations(revokeCtx); close(revokeDone) }()
	var revokeOnce sync.Once
	stopRevocations := func() { revokeOnce.Do(func() { cancelRevoke(); <-revokeDone }) }
	defer stopRevocations()

	var msrv *http.Server
	if b.opts.MetricsAddr != "" {
		mln, err := net.Listen("tcp", b.opts.MetricsAddr)
		if err != nil {
			srv.Close()
			stopPersist()
			<-persistDone
			return fmt.Errorf("broker: metrics listener: %w", err)
		}
		mm := http.NewServeMux()
		mm.Handle("GET /metrics", b.MetricsHandler())
		msrv = &http.Server{Handler: mm, ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- msrv.Serve(mln) }()
	}
	b.log.Info("broker listening", "addr", ln.Addr().String())

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-errc:
		runErr = fmt.Errorf("broker: serve: %w", err)
	}

	// Shutdown: refuse new connections, say goodbye, drain, flush.
	b.closing.Store(true)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	if msrv != nil {
		_ = msrv.Shutdown(shutdownCtx)
	}
	close(b.quit)
	b.hubsWG.Wait()
	b.wg.Wait()
	stopPersist()
	<-persistDone
	stopRevocations() // before the store closes under it
	if b.ownsStore {
		b.store.Close()
	}
	return runErr
}

// hubFor returns the hub of user, starting it on first use.
func (b *Broker) hubFor(user string) (*hub, bool) {
	b.hubsMu.Lock()
	defer b.hubsMu.Unlock()
	if b.closing.Load() {
		return nil, false
	}
	h := b.hubs[user]
	if h == nil {
		h = newHub(b, user)
		b.hubs[user] = h
		b.hubsWG.Add(1)
		go h.run()
	}
	return h, true
}

// Authenticate maps a token to its user, caching positive answers.
func (b *Broker) Authenticate(ctx context.Context, token string) (string, error) {
	key := store.HashToken(token)
	b.tokensMu.Lock()
	user, ok := b.tokens[key]
	b.tokensMu.Unlock()
	if ok {
		return user, nil
	}
	user, err := b.store.Authenticate(ctx, token)
	if err != nil {
		return "", err
	}
	b.tokensMu.Lock()
	b.tokens[key] = user
	b.tokensMu.Unlock()
	return user, nil
}

// watchRevocations reads the revocations recorded since it started, every
// RevocationPoll, until ctx ends: each revoked token leaves the
// authentication cache and every connection that logged in with it is
// closed with CloseTokenRevoked.
func (b *Broker) watchRevocations(ctx context.Context) {
	since := time.Now().UnixMilli()
	t := time.NewTicker(b.opts.RevocationPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// The newest revocation is read again next time (>=): a connection
		// that authenticated just before it and registered just after is
		// closed then.
		hashes, newest, err := b.store.RevokedSince(ctx, since)
		if err != nil {
			if ctx.Err() == nil {
				b.log.Warn("token revocations", "err", err)
			}
			continue
		}
		since = newest
		if len(hashes) == 0 {
			continue
		}
		b.tokensMu.Lock()
		for _, h := range hashes {
			delete(b.tokens, h)
		}
		b.tokensMu.Unlock()
		b.hubsMu.Lock()
		hubs := make([]*hub, 0, len(b.hubs))
		for _, h := range b.hubs {
			hubs = append(hubs, h)
		}
		b.hubsMu.Unlock()
		for _, h := range hubs {
			h.post(evRevoke{hashes: hashes})
		}
	}
}

// TokenFromRequest finds the token in the Authorization header (Bearer),
// or, for browsers' websockets which cannot set headers, the token query
// parameter.
func TokenFromRequest(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if tok, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(tok)
		}
	}
	return r.URL.Query().Get("token")
}

type userKey struct{}

// UserFrom returns the user RequireToken put in the request context.
func UserFrom(ctx context.Context) string {
	u, _ := ctx.Value(userKey{}).(string)
	return u
}

// RequireToken wraps h so that only requests with a valid token reach it.
func (b *Broker) RequireToken(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, err := b.Authenticate(r.Context(), TokenFromRequest(r))
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="roomcast"`)
			http.Error(w, "unauthorized: a valid token is required", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, user)))
	})
}

func (b *Broker) serveConnect(w http.ResponseWriter, r *http.Request) {
	if b.closing.Load() {
		http.Error(w, "broker is shutting down", http.StatusServiceUnavailable)
		return
	}
	user, err := b.Authenticate(r.Context(), TokenFromRequest(r))
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="roomcast"`)
		http.Error(w, "unauthorized: a valid token is required", http.StatusUnauthorized)
		return
	}
	ws, err := b.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	// The connection lives on in its own goroutine and the handler
	// returns: net/http keeps the request, the response and their buffers
	// alive for as long as a handler runs, which would cost an idle
	// connection several KB.
	b.wg.Add(1)
	go b.runConn(ws, user, store.HashToken(TokenFromRequest(r)))
}

// runConn is the read side of one connection, from HELLO to the end.
func (b *Broker) runConn(ws *websocket.Conn, user, tokenHash string) {
	defer b.wg.Done()
	ws.SetReadLimit(int64(b.opts.MaxFrameBytes))
	c := newConn(b, ws, user)
	c.tokenHash = tokenHash

	hello, lastSeq, err := c.readHello()
	if err != nil {
		msg := websocket.FormatCloseMessage(CloseProtocolErrors, truncate(err.Error(), 120))
		if errors.Is(err, websocket.ErrReadLimit) {
			msg = websocket.FormatCloseMessage(websocket.CloseMessageTooBig, "frame too large")
		}
		_ = ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		ws.Close()
		return
	}
	h, ok := b.hubFor(user)
	if !ok {
		ws.Close()
		return
	}
	c.device = hello.Device
	c.session = randomID()
	b.wg.Add(1)
	go c.writeLoop()
	b.metrics.connections.Inc()
	if !h.post(evRegister{c: c, hello: hello}) {
		b.metrics.connections.Dec()
		close(c.readerDone)
		c.closeWith(websocket.CloseServiceRestart, "broker shutting down")
		return
	}
	reason := c.readLoop(h, lastSeq)
	close(c.readerDone)
	// Counted out before the hub announces the departure: whoever sees
	// the device leave finds the connection gone from /metrics.
	b.metrics.connections.Dec()
	h.post(evUnregister{c: c, reason: reason})
}

// readHello reads the first frame, which must be a valid HELLO.
func (c *conn) readHello() (*protocol.Hello, uint64, error) {
	_ = c.ws.SetReadDeadline(time.Now().Add(c.b.opts.HelloTimeout))
	_, data, err := c.ws.ReadMessage()
	if err != nil {
		return nil, 0, err
	}
	f, err := protocol.DecodeLimit(data, c.b.opts.MaxFrameBytes)
	if err != nil {
		c.b.metrics.protocolErrors.Inc()
		return nil, 0, err
	}
	hello, ok := f.Msg.(*protocol.Hello)
	if !ok {
		c.b.metrics.protocolErrors.Inc()
		return nil, 0, fmt.Errorf("the first frame must be HELLO, got %s", f.Msg.Type())
	}
	c.b.metrics.receivedByType(protocol.TypeHello).Inc()
	return hello, f.Seq, nil
}

func (b *Broker) serveHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if b.closing.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, `{"status":"shutting_down"}`)
		return
	}
	fmt.Fprintf(w, `{"status":"ok","uptime_s":%d}`+"\n", int(time.Since(b.started).Seconds()))
}

// Snapshot is a user's devices, active device and state, as the HTTP API
// and the welcome message present them.
type Snapshot struct {
	Devices        []protocol.DeviceInfo `json:"devices"`
	ActiveDeviceID string                `json:"active_device_id,omitempty"`
	State          *protocol.PlayerState `json:"state,omitempty"`
	ServerTimeMS   int64                 `json:"server_time_ms"`
}

// Snapshot asks user's hub for its current view.
func (b *Broker) Snapshot(ctx context.Context, user string) (Snapshot, error) {
	h, ok := b.hubFor(user)
	if !ok {
		return Snapshot{}, errors.New("broker: shutting down")
	}
	reply := make(chan Snapshot, 1)
	if !h.post(evSnapshot{reply: reply}) {
		return Snapshot{}, errors.New("broker: shutting down")
	}
	select {
	case s := <-reply:
		return s, nil
	case <-ctx.Done():
		return Snapshot{}, ctx.Err()
	}
}

func (b *Broker) serveDevices(w http.ResponseWriter, r *http.Request) {
	s, err := b.Snapshot(r.Context(), UserFrom(r.Context()))
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, struct {
		Devices        []protocol.DeviceInfo `json:"devices"`
		ActiveDeviceID string                `json:"active_device_id,omitempty"`
	}{s.Devices, s.ActiveDeviceID})
}

func (b *Broker) serveState(w http.ResponseWriter, r *http.Request) {
	s, err := b.Snapshot(r.Context(), UserFrom(r.Context()))
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, s)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// PublicAddr is host:port as others on the LAN reach a listener: the host
// name when it listens on every interface.
func PublicAddr(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok && ta.IP.IsUnspecified() {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "localhost"
		}
		return net.JoinHostPort(h, strconv.Itoa(ta.Port))
	}
	return a.String()
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
