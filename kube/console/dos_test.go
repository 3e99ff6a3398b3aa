package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube/consoletoken"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/vncpeer"
)

// serveTCP runs ServeVNC on a loopback listener until the test ends.
func serveTCP(t *testing.T, cfg Config) (addr string, logs *vncpeer.SyncBuffer) {
	t.Helper()
	logs = &vncpeer.SyncBuffer{}
	cfg.Log = slog.New(slog.NewJSONHandler(logs, nil))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	g := New(cfg)
	go func() { served <- g.ServeVNC(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-served:
			assert.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("ServeVNC did not return after its context ended")
		}
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs)
		}
	})
	return ln.Addr().String(), logs
}

func dialTCP(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// closedWithin reads until conn ends and says how long that took.
func closedWithin(t *testing.T, conn net.Conn) time.Duration {
	t.Helper()
	start := time.Now()
	_, err := io.Copy(io.Discard, conn)
	require.NoError(t, err, "the gateway closes the connection (not the test's deadline)")
	return time.Since(start)
}

// A client that stops before answering the challenge loses its slot at AuthTimeout, not HandshakeTimeout.
func TestVNCAuthTimeout(t *testing.T) {
	for _, version := range []string{"", "RFB 003.008\n", "RFB 003.008\n\x02"} {
		t.Run(strings.TrimSpace(version)+"-stalled", func(t *testing.T) {
			_, conn := startVNC(t, Config{Tokens: &fakeTokens{}, Upstream: echoUpstream{}, HandshakeTimeout: 10 * time.Second, AuthTimeout: 300 * time.Millisecond})
			_, err := io.ReadFull(conn, make([]byte, 12))
			require.NoError(t, err)
			go func() { _, _ = conn.Write([]byte(version)) }()
			elapsed := closedWithin(t, conn)
			assert.Less(t, elapsed, 2*time.Second, "cut off at the authentication deadline")
		})
	}
	t.Run("the rest of the handshake keeps its own deadline", func(t *testing.T) {
		tokens := &fakeTokens{passwords: map[string]consoletoken.Target{"goodpass": vmA}}
		slow := slowUpstream{delay: 600 * time.Millisecond}
		_, conn := startVNC(t, Config{Tokens: tokens, Upstream: slow, HandshakeTimeout: 10 * time.Second, AuthTimeout: 300 * time.Millisecond})
		result, _, err := vncLogin(conn, "RFB 003.008\n", "goodpass")
		require.NoError(t, err)
		assert.Equal(t, uint32(resultOK), result, "a VM slower than AuthTimeout still opens")
	})
}

// slowUpstream is an echoUpstream that takes delay to open.
type slowUpstream struct{ delay time.Duration }

func (s slowUpstream) Open(ctx context.Context, target consoletoken.Target) (net.Conn, error) {
	time.Sleep(s.delay)
	return echoUpstream{}.Open(ctx, target)
}

// One address may hold only its share of the handshake slots; the rest stay for others.
func TestVNCHandshakesPerSource(t *testing.T) {
	tokens := &fakeTokens{passwords: map[string]consoletoken.Target{"goodpass": vmA}}
	addr, logs := serveTCP(t, Config{Tokens: tokens, Upstream: echoUpstream{}, MaxHandshakes: 64, MaxHandshakesPerSource: 2})
	for range 2 {
		_, err := io.ReadFull(dialTCP(t, addr), make([]byte, 12)) // holds a slot
		require.NoError(t, err)
	}
	third := dialTCP(t, addr)
	_, err := io.ReadFull(third, make([]byte, 12))
	require.ErrorIs(t, err, io.EOF, "closed at once")
	assert.Contains(t, logs.String(), "2 handshakes from 127.0.0.1 already in progress")
	assert.Zero(t, tokens.calls)
}

// Failed authentications from one address refuse its next connections before any token is tried, until the
// window has passed.
func TestVNCAuthFailuresPerSource(t *testing.T) {
	tokens := &fakeTokens{passwords: map[string]consoletoken.Target{"goodpass": vmA}}
	addr, logs := serveTCP(t, Config{Tokens: tokens, Upstream: echoUpstream{}, MaxAuthFailuresPerSource: 3, AuthFailureWindow: time.Second})

	// A connection that got its challenge before the failures: checked again before its answer is tried.
	early := dialTCP(t, addr)
	for range 3 {
		result, reason, err := vncLogin(dialTCP(t, addr), "RFB 003.008\n", "guess")
		require.NoError(t, err)
		require.Equal(t, uint32(resultFailed), result)
		require.Equal(t, `"authentication failed"`, reason)
	}
	result, reason, err := vncLogin(early, "RFB 003.008\n", "goodpass")
	require.NoError(t, err)
	assert.Equal(t, uint32(resultFailed), result)
	assert.Contains(t, reason, "too many failed authentications")

	_, err = io.ReadFull(dialTCP(t, addr), make([]byte, 12))
	require.ErrorIs(t, err, io.EOF, "refused at once")
	assert.Contains(t, logs.String(), "3 failed authentications from 127.0.0.1")
	tokens.mu.Lock()
	assert.Equal(t, 3, tokens.calls, "no token was tried for the refused connections")
	tokens.mu.Unlock()

	time.Sleep(1100 * time.Millisecond) // the window passes
	result, _, err = vncLogin(dialTCP(t, addr), "RFB 003.008\n", "goodpass")
	require.NoError(t, err)
	assert.Equal(t, uint32(resultOK), result, "the password still works once the failures are old")
}

func TestSourceLimitsForget(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newSourceLimits(1, 2, time.Minute)
	l.now = func() time.Time { return now }
	release, err := l.admit("a")
	require.NoError(t, err)
	_, err = l.admit("a")
	require.Error(t, err)
	releaseB, err := l.admit("b")
	require.NoError(t, err, "another address has its own share")
	releaseB()
	release()
	release() // twice is once
	release, err = l.admit("a")
	require.NoError(t, err)
	release()
	l.failed("a")
	l.failed("a")
	require.ErrorContains(t, l.blocked("a"), "2 failed authentications from a")
	now = now.Add(61 * time.Second)
	require.NoError(t, l.blocked("a"))
	assert.Empty(t, l.failures, "aged-out failures are forgotten")
	assert.Empty(t, l.active)
}

// Checks that arrive while a list runs share the next one: a flood of guesses costs a list at a time, not one
// each, and every check gets a list that started after it asked.
func TestSharedListCoalesces(t *testing.T) {
	var calls atomic.Int32
	gate := make(chan struct{})
	s := &sharedList{timeout: 10 * time.Second, list: func(ctx context.Context) ([]consoletoken.Token, error) {
		calls.Add(1)
		<-gate
		return []consoletoken.Token{{SecretName: "t"}}, nil
	}}
	ctx := t.Context()
	first := make(chan *listing, 1)
	go func() {
		l, _ := s.get(ctx, time.Now())
		first <- l
	}()
	require.Eventually(t, func() bool { return calls.Load() == 1 }, time.Second, time.Millisecond)
	const n = 50
	var wg sync.WaitGroup
	late := make(chan *listing, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			asked := time.Now()
			l, err := s.get(ctx, asked)
			assert.NoError(t, err)
			assert.False(t, l.started.Before(asked), "a list that started after the check asked")
			late <- l
		}()
	}
	time.Sleep(50 * time.Millisecond) // all 50 wait
	close(gate)
	wg.Wait()
	<-first
	assert.Equal(t, int32(2), calls.Load(), "the running list and one more for the 50 that came too late for it")

	// A list no older than the caller allows is reused without a call.
	l, err := s.get(ctx, time.Now().Add(-time.Minute))
	require.NoError(t, err)
	assert.Len(t, l.tokens, 1)
	assert.Equal(t, int32(2), calls.Load())
}

// A failed list fails its waiters and is not reused.
func TestSharedListErrors(t *testing.T) {
	fail := atomic.Bool{}
	fail.Store(true)
	s := &sharedList{timeout: time.Second, list: func(ctx context.Context) ([]consoletoken.Token, error) {
		if fail.Load() {
			return nil, errors.New("API server down")
		}
		return nil, nil
	}}
	_, err := s.get(t.Context(), time.Now().Add(-time.Hour))
	require.ErrorContains(t, err, "API server down")
	fail.Store(false)
	_, err = s.get(t.Context(), time.Now().Add(-time.Hour))
	require.NoError(t, err)
}

// floodUpstream is a VM whose screen never stops changing: it writes as fast as it can.
type floodUpstream struct{}

func (floodUpstream) Open(context.Context, consoletoken.Target) (net.Conn, error) {
	a, b := net.Pipe()
	go func() {
		defer b.Close()
		buf := make([]byte, 32<<10)
		for {
			if _, err := b.Write(buf); err != nil {
				return
			}
		}
	}()
	return a, nil
}

// A browser that stops reading ends its session at the write deadline, and frees its slot: nothing waits on
// it for good (not the relay, not Close, not shutdown).
func TestDirectPeerThatStopsReading(t *testing.T) {
	logs := &vncpeer.SyncBuffer{}
	tokens := &fakeTokens{direct: map[string]consoletoken.Target{"tok": vmA}}
	g := New(Config{Tokens: tokens, Upstream: floodUpstream{}, MaxSessions: 1, WriteTimeout: 300 * time.Millisecond,
		Log: slog.New(slog.NewJSONHandler(logs, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	web := httptest.NewUnstartedServer(g.DirectHandler())
	web.Config.BaseContext = func(net.Listener) context.Context { return ctx }
	web.Start()
	defer web.Close()

	ws, _, err := websocket.DefaultDialer.DialContext(t.Context(), "ws"+strings.TrimPrefix(web.URL, "http")+"/websockify?token=tok", http.Header{"Origin": {web.URL}})
	require.NoError(t, err)
	defer ws.Close()
	conn := newWSConn(ws)
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	require.NoError(t, vncSecurity(conn, ""))
	// ... and reads nothing more while the VM floods it.
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), `"msg":"console session ended"`) },
		10*time.Second, 20*time.Millisecond, "the session ends when a write to the browser times out")
	// The slot is released after the end is logged, by the handler's deferred release.
	assert.Eventually(t, func() bool { return len(g.sessions) == 0 }, 10*time.Second, 10*time.Millisecond, "its session slot is free")
}

// Close returns while a Write is blocked on a peer that reads nothing, and fails that Write.
func TestWSConnCloseDuringBlockedWrite(t *testing.T) {
	server := make(chan *wsConn, 1)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		server <- newWSConn(ws)
	}))
	defer web.Close()
	client, _, err := websocket.DefaultDialer.DialContext(t.Context(), "ws"+strings.TrimPrefix(web.URL, "http"), nil)
	require.NoError(t, err)
	defer client.Close() // and never reads
	conn := <-server
	wrote := make(chan error, 1)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			if _, err := conn.Write(buf); err != nil {
				wrote <- err
				return
			}
		}
	}()
	time.Sleep(300 * time.Millisecond) // the buffers fill; Write blocks holding the write lock
	closed := make(chan struct{})
	go func() {
		conn.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for the blocked Write")
	}
	select {
	case err := <-wrote:
		assert.Error(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("the blocked Write did not fail when the connection closed")
	}
}

// serveBoth runs ServeVNC and the direct-mode handler of one gateway on loopback until the test ends.
func serveBoth(t *testing.T, cfg Config) (vncAddr, webURL string) {
	t.Helper()
	logs := &vncpeer.SyncBuffer{}
	cfg.Log = slog.New(slog.NewJSONHandler(logs, nil))
	g := New(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- g.ServeVNC(ctx, ln) }()
	web := httptest.NewUnstartedServer(g.DirectHandler())
	web.Config.BaseContext = func(net.Listener) context.Context { return ctx }
	web.Start()
	t.Cleanup(func() { // after the clients'
		cancel()
		web.Close()
		assert.NoError(t, <-served)
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs)
		}
	})
	return ln.Addr().String(), web.URL
}

// dialDirect opens direct mode's websocket from the loopback address from.
func dialDirect(t *testing.T, webURL, from string, header http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second,
		NetDialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}).DialContext}
	if header == nil {
		header = http.Header{}
	}
	header.Set("Origin", webURL)
	ws, resp, err := d.DialContext(t.Context(), "ws"+strings.TrimPrefix(webURL, "http")+"/websockify?token=tok", header)
	if ws != nil {
		t.Cleanup(func() { ws.Close() })
	}
	return ws, resp, err
}

// holdDirect opens a websocket that never speaks: it holds a direct-mode handshake slot.
func holdDirect(t *testing.T, webURL, from string, header http.Header) {
	t.Helper()
	_, _, err := dialDirect(t, webURL, from, header)
	require.NoError(t, err)
}

// Direct mode has a handshake pool of its own: as many upgrades that never speak as it holds leave the console
// proxy's VNC handshakes alone. (One pool for both let 64 of them refuse every VNC console.)
func TestDirectFloodLeavesVNCAlone(t *testing.T) {
	tokens := &fakeTokens{passwords: map[string]consoletoken.Target{"goodpass": vmA}}
	vncAddr, webURL := serveBoth(t, Config{Tokens: tokens, Upstream: echoUpstream{}, MaxHandshakes: 64,
		HandshakeTimeout: time.Minute, AuthTimeout: time.Minute})
	// 64 from four addresses, 16 each: no address is over its share, and the pool is full.
	for i := range 64 {
		holdDirect(t, webURL, fmt.Sprintf("127.0.0.%d", 2+i/16), nil)
	}
	_, resp, err := dialDirect(t, webURL, "127.0.0.9", nil)
	require.Error(t, err)
	require.NotNil(t, resp)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "direct mode's pool is full")

	result, _, err := vncLogin(dialTCP(t, vncAddr), "RFB 003.008\n", "goodpass")
	require.NoError(t, err, "the VNC handshake is not refused")
	assert.Equal(t, uint32(resultOK), result)
}

// One browser address may hold only its share of direct mode's handshakes; another address still gets in.
func TestDirectHandshakesPerSource(t *testing.T) {
	_, webURL := serveBoth(t, Config{Tokens: &fakeTokens{}, Upstream: echoUpstream{},
		HandshakeTimeout: time.Minute, AuthTimeout: time.Minute})
	for range 16 {
		holdDirect(t, webURL, "127.0.0.1", nil)
	}
	_, resp, err := dialDirect(t, webURL, "127.0.0.1", nil)
	require.Error(t, err, "the 17th from one address is refused")
	require.NotNil(t, resp)
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	holdDirect(t, webURL, "127.0.0.2", nil)
}

// Behind a trusted proxy the limits count the address the proxy forwards for; from any other peer the header
// counts for nothing.
func TestDirectTrustedProxies(t *testing.T) {
	proxies, err := ParseTrustedProxies("127.0.0.2/32, ::1")
	require.NoError(t, err)
	_, webURL := serveBoth(t, Config{Tokens: &fakeTokens{}, Upstream: echoUpstream{}, MaxDirectHandshakesPerSource: 2,
		TrustedProxies: proxies, HandshakeTimeout: time.Minute, AuthTimeout: time.Minute})
	forwarded := func(addrs string) http.Header { return http.Header{"X-Forwarded-For": {addrs}} }

	// Through the proxy: each browser has its own share, whatever it wrote to the left of the proxy's entry.
	holdDirect(t, webURL, "127.0.0.2", forwarded("203.0.113.1"))
	holdDirect(t, webURL, "127.0.0.2", forwarded("198.51.100.7, 203.0.113.1"))
	_, resp, err := dialDirect(t, webURL, "127.0.0.2", forwarded("203.0.113.1"))
	require.Error(t, err)
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "203.0.113.1 has used its share")
	holdDirect(t, webURL, "127.0.0.2", forwarded("203.0.113.2"))

	// Not a proxy: a new header each time does not buy a new share.
	holdDirect(t, webURL, "127.0.0.3", forwarded("192.0.2.1"))
	holdDirect(t, webURL, "127.0.0.3", forwarded("192.0.2.2"))
	_, resp, err = dialDirect(t, webURL, "127.0.0.3", forwarded("192.0.2.3"))
	require.Error(t, err)
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "counted as 127.0.0.3")
}

func TestClientSource(t *testing.T) {
	trusted, err := ParseTrustedProxies("10.0.0.0/8,192.0.2.7")
	require.NoError(t, err)
	tests := []struct {
		name, peer string
		forwarded  []string
		want       string
	}{
		{name: "no proxy", peer: "203.0.113.1:4000", want: "203.0.113.1"},
		{name: "header from an untrusted peer", peer: "203.0.113.1:4000", forwarded: []string{"198.51.100.1"}, want: "203.0.113.1"},
		{name: "trusted proxy", peer: "192.0.2.7:4000", forwarded: []string{"198.51.100.1"}, want: "198.51.100.1"},
		{name: "client's own entries are left of the proxy's", peer: "10.1.2.3:4000", forwarded: []string{"1.1.1.1, 198.51.100.1"}, want: "198.51.100.1"},
		{name: "chain of trusted proxies", peer: "10.1.2.3:4000", forwarded: []string{"198.51.100.1, 10.9.9.9"}, want: "198.51.100.1"},
		{name: "repeated headers", peer: "10.1.2.3:4000", forwarded: []string{"198.51.100.1", "10.9.9.9"}, want: "198.51.100.1"},
		{name: "trusted proxy without the header", peer: "10.1.2.3:4000", want: "10.1.2.3"},
		{name: "garbage counts against the proxy", peer: "10.1.2.3:4000", forwarded: []string{"evil, not-an-ip"}, want: "10.1.2.3"},
		{name: "only proxies", peer: "10.1.2.3:4000", forwarded: []string{"10.4.4.4"}, want: "10.4.4.4"},
		{name: "IPv6", peer: "[2001:db8::1]:4000", want: "2001:db8::1"},
		{name: "IPv4-mapped", peer: "[::ffff:192.0.2.7]:4000", forwarded: []string{"198.51.100.1"}, want: "198.51.100.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/websockify", nil)
			r.RemoteAddr = tt.peer
			for _, f := range tt.forwarded {
				r.Header.Add("X-Forwarded-For", f)
			}
			assert.Equal(t, tt.want, clientSource(r, trusted))
		})
	}
	_, err = ParseTrustedProxies("10.0.0.0/8,proxy.example.com")
	assert.ErrorContains(t, err, `trusted proxy "proxy.example.com"`)
}

// flakyListener fails its first Accepts with errs, then accepts.
type flakyListener struct {
	net.Listener
	mu   sync.Mutex
	errs []error
}

func (l *flakyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		l.mu.Unlock()
		return nil, err
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

// acceptError is what accept(2) failing with errno looks like from a net.TCPListener.
func acceptError(errno syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
}

// timeoutError is a net.Error that timed out.
type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// Temporary accept errors (out of file descriptors, a connection aborted in the backlog) are retried and the
// gateway keeps serving; any other error ends ServeVNC.
func TestVNCAcceptErrors(t *testing.T) {
	tests := []struct {
		name      string
		errs      []error
		wantFatal string
	}{
		{name: "EMFILE twice", errs: []error{acceptError(syscall.EMFILE), acceptError(syscall.EMFILE)}},
		{name: "ENFILE", errs: []error{acceptError(syscall.ENFILE)}},
		{name: "ECONNABORTED", errs: []error{acceptError(syscall.ECONNABORTED)}},
		{name: "timeout", errs: []error{timeoutError{}}},
		{name: "not temporary", errs: []error{errors.New("listener broken")}, wantFatal: "accepting VNC connections: listener broken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tcp, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			defer tcp.Close()
			tokens := &fakeTokens{passwords: map[string]consoletoken.Target{"goodpass": vmA}}
			g := New(Config{Tokens: tokens, Upstream: echoUpstream{}})
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			served := make(chan error, 1)
			go func() { served <- g.ServeVNC(ctx, &flakyListener{Listener: tcp, errs: tt.errs}) }()
			if tt.wantFatal != "" {
				select {
				case err := <-served:
					require.EqualError(t, err, tt.wantFatal)
				case <-time.After(10 * time.Second):
					t.Fatal("ServeVNC kept going after an error that is not temporary")
				}
				return
			}
			result, _, err := vncLogin(dialTCP(t, tcp.Addr().String()), "RFB 003.008\n", "goodpass")
			require.NoError(t, err, "the gateway still serves")
			assert.Equal(t, uint32(resultOK), result)
			cancel()
			assert.NoError(t, <-served)
		})
	}
}

func TestAcceptBackoff(t *testing.T) {
	var b acceptBackoff
	var got []time.Duration
	for range 10 {
		got = append(got, b.next())
	}
	ms := time.Millisecond
	assert.Equal(t, []time.Duration{5 * ms, 10 * ms, 20 * ms, 40 * ms, 80 * ms, 160 * ms, 320 * ms, 640 * ms, time.Second, time.Second}, got)
	b.reset()
	assert.Equal(t, 5*ms, b.next(), "an Accept that worked starts again")
}

// The HTTP listener holds at most its cap of connections; one more is closed at once, and a slot comes back
// when a connection ends.
func TestLimitListener(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	web := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	web.Listener.Close()
	web.Listener = LimitListener(tcp, 2)
	web.Start()
	defer web.Close()

	first, second := dialTCP(t, tcp.Addr().String()), dialTCP(t, tcp.Addr().String()) // say nothing: held
	_, err = io.ReadFull(dialTCP(t, tcp.Addr().String()), make([]byte, 1))
	require.ErrorIs(t, err, io.EOF, "the third is closed at once")

	first.Close()
	assert.EventuallyWithT(t, func(c *assert.CollectT) {
		resp, err := web.Client().Get(web.URL)
		require.NoError(c, err)
		resp.Body.Close()
		assert.Equal(c, http.StatusOK, resp.StatusCode)
	}, 10*time.Second, 50*time.Millisecond, "the first's slot came back")
	_ = second
}

// What admitting a direct-mode handshake costs (its address from a proxy's header, then both pools), with many
// at once contending for the pools' locks.
func BenchmarkDirectAdmit(b *testing.B) {
	trusted, err := ParseTrustedProxies("10.0.0.0/8")
	require.NoError(b, err)
	g := New(Config{MaxDirectHandshakes: 1 << 20, MaxDirectHandshakesPerSource: 1 << 20, TrustedProxies: trusted})
	r := httptest.NewRequest(http.MethodGet, "/websockify", nil)
	r.RemoteAddr = "10.1.2.3:4000"
	r.Header.Set("X-Forwarded-For", "198.51.100.1, 10.9.9.9")
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			release, _, err := g.direct.admit(clientSource(r, g.cfg.TrustedProxies))
			if err != nil {
				b.Error(err)
				return
			}
			release()
		}
	})
}
