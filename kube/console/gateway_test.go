package console

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube/consoletoken"
)

// fakeTokens holds passwords and direct tokens in memory; each works once.
type fakeTokens struct {
	mu        sync.Mutex
	passwords map[string]consoletoken.Target
	direct    map[string]consoletoken.Target
	calls     int
}

func (f *fakeTokens) ConsumePassword(_ context.Context, challenge, response []byte) (consoletoken.Target, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	for pw, target := range f.passwords {
		if want, _ := vncAuthResponse(pw, challenge); string(want) == string(response) {
			delete(f.passwords, pw)
			return target, nil
		}
	}
	return consoletoken.Target{}, ErrNoToken
}

func (f *fakeTokens) ConsumeDirect(_ context.Context, token string) (consoletoken.Target, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	target, ok := f.direct[token]
	if !ok {
		return consoletoken.Target{}, ErrNoToken
	}
	delete(f.direct, token)
	return target, nil
}

// echoUpstream is a VM whose VNC server, handshake done, echoes what it gets.
type echoUpstream struct{ err error }

func (e echoUpstream) Open(ctx context.Context, target consoletoken.Target) (net.Conn, error) {
	if e.err != nil {
		return nil, e.err
	}
	a, b := net.Pipe()
	go func() {
		defer b.Close()
		_, _ = io.Copy(b, b)
	}()
	return a, nil
}

var vmA = consoletoken.Target{Namespace: "ns", Name: "vm-a"}

// vncLogin is a VNC client up to the security result: version, VNC authentication with password.
func vncLogin(conn net.Conn, version, password string) (result uint32, reason string, err error) {
	server := make([]byte, 12)
	if _, err := io.ReadFull(conn, server); err != nil {
		return 0, "", err
	}
	if _, err := conn.Write([]byte(version)); err != nil {
		return 0, "", err
	}
	if version == "RFB 003.003\n" {
		var security uint32
		if err := binary.Read(conn, binary.BigEndian, &security); err != nil || security != securityVNCAuth {
			return 0, "", errors.Join(err, errors.New("not VNC authentication"))
		}
	} else {
		types := make([]byte, 2)
		if _, err := io.ReadFull(conn, types); err != nil || types[1] != securityVNCAuth {
			return 0, "", errors.Join(err, errors.New("not VNC authentication"))
		}
		if _, err := conn.Write([]byte{securityVNCAuth}); err != nil {
			return 0, "", err
		}
	}
	challenge := make([]byte, 16)
	if _, err := io.ReadFull(conn, challenge); err != nil {
		return 0, "", err
	}
	response, _ := vncAuthResponse(password, challenge)
	if _, err := conn.Write(response); err != nil {
		return 0, "", err
	}
	if err := binary.Read(conn, binary.BigEndian, &result); err != nil {
		return 0, "", err
	}
	if result != resultOK && version == "RFB 003.008\n" {
		reason = readReason(conn)
	}
	return result, reason, nil
}

func startVNC(t *testing.T, cfg Config) (*Gateway, net.Conn) {
	t.Helper()
	g := New(cfg)
	client, server := net.Pipe()
	source := sourceOf(server.RemoteAddr())
	release, _, err := g.vnc.admit(source) // what admitVNC does before serveVNC
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.serveVNC(t.Context(), server, source, release)
	}()
	t.Cleanup(func() {
		client.Close()
		<-done
	})
	_ = client.SetDeadline(time.Now().Add(5 * time.Second))
	return g, client
}

func TestVNCHandshake(t *testing.T) {
	tests := []struct {
		name       string
		version    string
		password   string
		upstream   error
		wantResult uint32
		wantReason string
	}{
		{name: "3.3 client (vncsnapshot)", version: "RFB 003.003\n", password: "goodpass"},
		{name: "3.7 client", version: "RFB 003.007\n", password: "goodpass"},
		{name: "3.8 client", version: "RFB 003.008\n", password: "goodpass"},
		{name: "wrong password", version: "RFB 003.008\n", password: "badpass", wantResult: resultFailed, wantReason: `"authentication failed"`},
		{name: "wrong password, 3.3", version: "RFB 003.003\n", password: "badpass", wantResult: resultFailed},
		{name: "VM unavailable", version: "RFB 003.008\n", password: "goodpass", upstream: errors.New("no VMI"), wantResult: resultFailed, wantReason: `"the console of ns/vm-a is unavailable"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tokens := &fakeTokens{passwords: map[string]consoletoken.Target{"goodpass": vmA}}
			_, conn := startVNC(t, Config{Tokens: tokens, Upstream: echoUpstream{err: tt.upstream}})
			result, reason, err := vncLogin(conn, tt.version, tt.password)
			require.NoError(t, err)
			assert.Equal(t, tt.wantResult, result)
			assert.Equal(t, tt.wantReason, reason)
			if result != resultOK {
				_, err := conn.Read(make([]byte, 1))
				assert.ErrorIs(t, err, io.EOF, "closed after a failed result")
				return
			}
			// Relayed: ClientInit and anything after it reach the VM, and its answers come back.
			_, err = conn.Write([]byte{1, 'h', 'i'})
			require.NoError(t, err)
			echo := make([]byte, 3)
			_, err = io.ReadFull(conn, echo)
			require.NoError(t, err)
			assert.Equal(t, []byte{1, 'h', 'i'}, echo)
		})
	}
}

func TestVNCHandshakeRefusals(t *testing.T) {
	tests := []struct {
		name  string
		write []byte // what the client sends after reading the server's version
	}{
		{name: "bad version", write: []byte("RFB 004.000\n")},
		{name: "HTTP", write: []byte("GET / HTTP/1.1\r\n")},
		{name: "3.8 client choosing None", write: []byte("RFB 003.008\n\x01")},
		{name: "short response", write: []byte("RFB 003.003\n0123456789")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tokens := &fakeTokens{}
			_, conn := startVNC(t, Config{Tokens: tokens, Upstream: echoUpstream{}, HandshakeTimeout: 500 * time.Millisecond})
			_, err := io.ReadFull(conn, make([]byte, 12))
			require.NoError(t, err)
			go func() { _, _ = conn.Write(tt.write) }()
			_, err = io.Copy(io.Discard, conn) // until the gateway closes
			require.NoError(t, err)
			assert.Zero(t, tokens.calls, "no token is tried")
		})
	}
}

// A client that sends its version a byte at a time is still served; one that stops is cut off at the deadline.
func TestVNCSlowClients(t *testing.T) {
	t.Run("short writes", func(t *testing.T) {
		tokens := &fakeTokens{passwords: map[string]consoletoken.Target{"goodpass": vmA}}
		_, conn := startVNC(t, Config{Tokens: tokens, Upstream: echoUpstream{}})
		result, _, err := vncLogin(&trickle{Conn: conn}, "RFB 003.008\n", "goodpass")
		require.NoError(t, err)
		assert.Equal(t, uint32(resultOK), result)
	})
	t.Run("slowloris", func(t *testing.T) {
		_, conn := startVNC(t, Config{Tokens: &fakeTokens{}, Upstream: echoUpstream{}, HandshakeTimeout: 300 * time.Millisecond})
		start := time.Now()
		_, err := io.ReadFull(conn, make([]byte, 12))
		require.NoError(t, err)
		_, _ = conn.Write([]byte("RFB 0")) // and nothing more
		_, err = io.Copy(io.Discard, conn)
		require.NoError(t, err)
		elapsed := time.Since(start)
		assert.Less(t, elapsed, 2*time.Second, "cut off at the handshake deadline")
		assert.GreaterOrEqual(t, elapsed, 250*time.Millisecond)
	})
}

// trickle writes one byte at a time.
type trickle struct{ net.Conn }

func (t *trickle) Write(p []byte) (int, error) {
	for i := range p {
		if _, err := t.Conn.Write(p[i : i+1]); err != nil {
			return i, err
		}
	}
	return len(p), nil
}

// Connections beyond MaxHandshakes are closed at once, and the slot comes back when the handshake ends.
func TestVNCHandshakeLimit(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	tokens := &fakeTokens{passwords: map[string]consoletoken.Target{"goodpass": vmA}}
	g := New(Config{Tokens: tokens, Upstream: echoUpstream{}, MaxHandshakes: 1, MaxSessions: 1, HandshakeTimeout: 5 * time.Second})
	served := make(chan error, 1)
	go func() { served <- g.ServeVNC(ctx, ln) }()
	defer func() {
		cancel()
		require.NoError(t, <-served)
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		t.Cleanup(func() { c.Close() })
		return c
	}
	first := dial()
	_, err = io.ReadFull(first, make([]byte, 12)) // holds the only handshake slot
	require.NoError(t, err)
	second := dial()
	_, err = io.ReadFull(second, make([]byte, 12))
	require.ErrorIs(t, err, io.EOF, "refused while the first handshakes")
	// The first logs in and becomes the only session: its handshake slot is freed, so a third connection may
	// handshake, but finds no session slot, and is refused before its password is tried (so it stays usable).
	result, _, err := vncLoginAfterVersion(first, "RFB 003.008\n", "goodpass")
	require.NoError(t, err)
	require.Equal(t, uint32(resultOK), result)
	tokens.mu.Lock()
	tokens.passwords["another"] = vmA
	tokens.mu.Unlock()
	third := dial()
	result, reason, err := vncLogin(third, "RFB 003.008\n", "another")
	require.NoError(t, err)
	assert.Equal(t, uint32(resultFailed), result)
	assert.Contains(t, reason, "busy")
	tokens.mu.Lock()
	assert.Contains(t, tokens.passwords, "another", "the password was not used up")
	tokens.mu.Unlock()
}

// vncLoginAfterVersion is vncLogin for a client that has already read the server's version.
func vncLoginAfterVersion(conn net.Conn, version, password string) (uint32, string, error) {
	return vncLogin(&prefixed{Conn: conn, prefix: []byte(rfbVersion)}, version, password)
}

type prefixed struct {
	net.Conn
	prefix []byte
}

func (p *prefixed) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}
