package console

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseVersion(t *testing.T) {
	tests := []struct {
		msg     string
		minor   int
		wantErr string
	}{
		{"RFB 003.003\n", 3, ""},
		{"RFB 003.005\n", 3, ""}, // RFC 6143: 3.5 is 3.3
		{"RFB 003.007\n", 7, ""},
		{"RFB 003.008\n", 8, ""},
		{"RFB 003.889\n", 8, ""}, // Apple Remote Desktop: the highest the gateway speaks
		{"RFB 004.001\n", 0, "unsupported version"},
		{"RFB 003.002\n", 0, "unsupported version"},
		{"RFB 003.00a\n", 0, "unsupported version"},
		{"GET / HTTP/1", 0, "version message"},
		{"RFB 003.008", 0, "version message"},
	}
	for _, tt := range tests {
		t.Run(tt.msg, func(t *testing.T) {
			minor, err := parseVersion([]byte(tt.msg))
			if tt.wantErr != "" {
				require.ErrorIs(t, err, ErrProtocol)
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.minor, minor)
		})
	}
}

func TestVNCAuthResponse(t *testing.T) {
	challenge, _ := hex.DecodeString("000102030405060708090a0b0c0d0e0f")
	// vncpasswd's file is the password encrypted the same way under VNC's fixed key: "password" is the
	// classic example, dbd83cfd727a1458 (how a stored VNC password is recovered from a vncpasswd file).
	fixedKey := []byte{23, 82, 107, 6, 35, 78, 88, 7}
	tests := []struct {
		name      string
		password  string
		challenge []byte
		same      string // another password that must give the same response
		want      string // hex; "" skips
		wantErr   bool
	}{
		{name: "only 8 bytes count", password: "abcdefgh", challenge: challenge, same: "abcdefghIGNORED"},
		{name: "short passwords are zero-padded", password: "abc", challenge: challenge, same: "abc\x00\x00"},
		{name: "vncpasswd of password", password: "password", challenge: append([]byte("password"), "password"...), want: "dbd83cfd727a1458dbd83cfd727a1458", same: "password9"},
		{name: "short challenge", password: "x", challenge: challenge[:8], wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := vncAuthResponse(tt.password, tt.challenge)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			same, err := vncAuthResponse(tt.same, tt.challenge)
			require.NoError(t, err)
			assert.Equal(t, got, same)
			other, err := vncAuthResponse(tt.password+"x", tt.challenge)
			require.NoError(t, err)
			if len(tt.password) < 8 {
				assert.NotEqual(t, got, other, "a 9th byte does not count, but a missing one does")
			}
			if tt.want != "" {
				// The vncpasswd vector: the fixed key as the "password", "password" as the challenge.
				enc, err := vncAuthResponse(string(fixedKey), tt.challenge)
				require.NoError(t, err)
				assert.Equal(t, tt.want, hex.EncodeToString(enc))
			}
		})
	}
}

// fakeServer plays a VNC server of the given version and security types for clientHandshake.
func fakeServer(t *testing.T, conn net.Conn, script func(rw io.ReadWriter)) {
	t.Helper()
	go func() {
		defer conn.Close()
		script(conn)
	}()
}

func TestClientHandshake(t *testing.T) {
	reason := func(s string) []byte { return append(binary.BigEndian.AppendUint32(nil, uint32(len(s))), s...) }
	u32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	read := func(rw io.ReadWriter, n int) []byte {
		b := make([]byte, n)
		_, _ = io.ReadFull(rw, b)
		return b
	}
	tests := []struct {
		name    string
		server  func(t *testing.T, rw io.ReadWriter)
		wantErr string
	}{
		{name: "3.8 none (QEMU in virt-launcher)", server: func(t *testing.T, rw io.ReadWriter) {
			_, _ = rw.Write([]byte("RFB 003.008\n"))
			assert.Equal(t, "RFB 003.008\n", string(read(rw, 12)))
			_, _ = rw.Write([]byte{2, 1, 2})
			assert.Equal(t, []byte{1}, read(rw, 1))
			_, _ = rw.Write(u32(0))
		}},
		{name: "3.7 none: no security result", server: func(t *testing.T, rw io.ReadWriter) {
			_, _ = rw.Write([]byte("RFB 003.007\n"))
			assert.Equal(t, "RFB 003.007\n", string(read(rw, 12)))
			_, _ = rw.Write([]byte{1, 1})
			assert.Equal(t, []byte{1}, read(rw, 1))
		}},
		{name: "3.3 none", server: func(t *testing.T, rw io.ReadWriter) {
			_, _ = rw.Write([]byte("RFB 003.003\n"))
			assert.Equal(t, "RFB 003.003\n", string(read(rw, 12)))
			_, _ = rw.Write(u32(1))
		}},
		{name: "3.8 password only", wantErr: "asks for authentication", server: func(t *testing.T, rw io.ReadWriter) {
			_, _ = rw.Write([]byte("RFB 003.008\n"))
			read(rw, 12)
			_, _ = rw.Write([]byte{1, 2})
		}},
		{name: "3.3 password", wantErr: "security type 2", server: func(t *testing.T, rw io.ReadWriter) {
			_, _ = rw.Write([]byte("RFB 003.003\n"))
			read(rw, 12)
			_, _ = rw.Write(u32(2))
		}},
		{name: "3.8 refused with a reason", wantErr: `refused the connection: "too many clients"`, server: func(t *testing.T, rw io.ReadWriter) {
			_, _ = rw.Write([]byte("RFB 003.008\n"))
			read(rw, 12)
			_, _ = rw.Write(append([]byte{0}, reason("too many clients")...))
		}},
		{name: "3.3 refused", wantErr: `refused the connection: "busy"`, server: func(t *testing.T, rw io.ReadWriter) {
			_, _ = rw.Write([]byte("RFB 003.003\n"))
			read(rw, 12)
			_, _ = rw.Write(append(u32(0), reason("busy")...))
		}},
		{name: "security result failed", wantErr: `refused the connection: "no"`, server: func(t *testing.T, rw io.ReadWriter) {
			_, _ = rw.Write([]byte("RFB 003.008\n"))
			read(rw, 12)
			_, _ = rw.Write([]byte{1, 1})
			read(rw, 1)
			_, _ = rw.Write(append(u32(1), reason("no")...))
		}},
		{name: "huge reason", wantErr: "a reason of 4294967295 bytes", server: func(t *testing.T, rw io.ReadWriter) {
			_, _ = rw.Write([]byte("RFB 003.008\n"))
			read(rw, 12)
			_, _ = rw.Write(append([]byte{0}, u32(0xffffffff)...))
		}},
		{name: "not RFB", wantErr: "not an RFB peer", server: func(t *testing.T, rw io.ReadWriter) {
			_, _ = rw.Write([]byte("SSH-2.0-Open"))
		}},
		{name: "cut short", wantErr: "reading the VNC server's security types", server: func(t *testing.T, rw io.ReadWriter) {
			_, _ = rw.Write([]byte("RFB 003.008\n"))
			read(rw, 12)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server := net.Pipe()
			defer client.Close()
			_ = client.SetDeadline(time.Now().Add(5 * time.Second))
			fakeServer(t, server, func(rw io.ReadWriter) { tt.server(t, rw) })
			err := clientHandshake(client)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
		})
	}
}

func TestSecurityMessages(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, securityResult(&b, 8, false, "authentication failed"))
	assert.Equal(t, append([]byte{0, 0, 0, 1, 0, 0, 0, 21}, "authentication failed"...), b.Bytes())
	b.Reset()
	require.NoError(t, securityResult(&b, 3, false, "ignored"))
	assert.Equal(t, []byte{0, 0, 0, 1}, b.Bytes(), "RFB 3.3 has no reason")
	b.Reset()
	require.NoError(t, refuseSecurity(&b, 7, "no"))
	assert.Equal(t, []byte{0, 0, 0, 0, 2, 'n', 'o'}, b.Bytes())
	b.Reset()
	require.NoError(t, refuseSecurity(&b, 3, "no"))
	assert.Equal(t, []byte{0, 0, 0, 0, 0, 0, 0, 2, 'n', 'o'}, b.Bytes())
}
