package console

import (
	"crypto/des"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"slices"
	"strconv"
)

// The RFB (VNC) protocol, RFC 6143, as far as the gateway speaks it: the version and security handshake on both
// sides. After it, the gateway relays bytes and understands nothing.

// rfbVersion is the gateway's version; it also speaks 3.3 and 3.7 to older clients (vncsnapshot is 3.3).
const rfbVersion = "RFB 003.008\n"

// Security types.
const (
	securityInvalid = 0
	securityNone    = 1
	securityVNCAuth = 2
)

// SecurityResult values.
const (
	resultOK     = 0
	resultFailed = 1
)

// maxReason bounds a reason string read from the upstream server.
const maxReason = 4096

// ErrProtocol is a peer that does not speak RFB as expected.
var ErrProtocol = errors.New("not an RFB peer")

// parseVersion reads a ProtocolVersion message and returns the minor version the gateway will speak: 3, 7 or
// 8. RFC 6143: an unknown 3.x below 3.7 (3.5 was once announced) is 3.3, and above 3.8 is 3.8.
func parseVersion(msg []byte) (int, error) {
	if len(msg) != 12 || string(msg[:4]) != "RFB " || msg[7] != '.' || msg[11] != '\n' {
		return 0, fmt.Errorf("%w: version message %q", ErrProtocol, msg)
	}
	major, err1 := strconv.Atoi(string(msg[4:7]))
	minor, err2 := strconv.Atoi(string(msg[8:11]))
	if err1 != nil || err2 != nil || major != 3 || minor < 3 {
		return 0, fmt.Errorf("%w: unsupported version %q", ErrProtocol, msg[:11])
	}
	switch {
	case minor >= 8:
		return 8, nil
	case minor == 7:
		return 7, nil
	default:
		return 3, nil
	}
}

func versionMessage(minor int) []byte {
	return fmt.Appendf(nil, "RFB 003.%03d\n", minor)
}

// serverVersion sends the gateway's version and reads the client's.
func serverVersion(rw io.ReadWriter) (int, error) {
	if _, err := io.WriteString(rw, rfbVersion); err != nil {
		return 0, err
	}
	msg := make([]byte, 12)
	if _, err := io.ReadFull(rw, msg); err != nil {
		return 0, fmt.Errorf("reading the client's version: %w", err)
	}
	return parseVersion(msg)
}

// offerSecurity offers one security type and checks that the client takes it. RFB 3.3 has no choice: the
// server names the type.
func offerSecurity(rw io.ReadWriter, minor int, security byte) error {
	if minor == 3 {
		return binary.Write(rw, binary.BigEndian, uint32(security))
	}
	if _, err := rw.Write([]byte{1, security}); err != nil {
		return err
	}
	var chosen [1]byte
	if _, err := io.ReadFull(rw, chosen[:]); err != nil {
		return fmt.Errorf("reading the client's security type: %w", err)
	}
	if chosen[0] != security {
		return fmt.Errorf("%w: the client chose security type %d, not the offered %d", ErrProtocol, chosen[0], security)
	}
	return nil
}

// refuseSecurity ends the handshake before authentication, with a reason where the version allows one.
func refuseSecurity(w io.Writer, minor int, reason string) error {
	var msg []byte
	if minor == 3 {
		msg = binary.BigEndian.AppendUint32(nil, securityInvalid)
	} else {
		msg = []byte{0}
	}
	_, err := w.Write(appendReason(msg, reason))
	return err
}

// securityResult ends the security handshake; RFB 3.8 explains a failure with a reason, older versions cannot.
func securityResult(w io.Writer, minor int, ok bool, reason string) error {
	if ok {
		_, err := w.Write(binary.BigEndian.AppendUint32(nil, resultOK))
		return err
	}
	msg := binary.BigEndian.AppendUint32(nil, resultFailed)
	if minor >= 8 {
		msg = appendReason(msg, reason)
	}
	_, err := w.Write(msg)
	return err
}

func appendReason(msg []byte, reason string) []byte {
	msg = binary.BigEndian.AppendUint32(msg, uint32(len(reason)))
	return append(msg, reason...)
}

// vncAuthResponse is what a client that knows password answers to challenge: the challenge encrypted with DES,
// keyed by the password's first 8 bytes (zero-padded) with each byte's bits mirrored, as VNC's d3des does.
func vncAuthResponse(password string, challenge []byte) ([]byte, error) {
	if len(challenge) != 16 {
		return nil, fmt.Errorf("a VNC challenge is 16 bytes, not %d", len(challenge))
	}
	key := vncKey([]byte(password))
	block, err := des.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	out := make([]byte, 16)
	block.Encrypt(out[:8], challenge[:8])
	block.Encrypt(out[8:], challenge[8:])
	return out, nil
}

func vncKey(password []byte) [8]byte {
	var key [8]byte
	copy(key[:], password)
	for i := range key {
		key[i] = bits.Reverse8(key[i])
	}
	return key
}

// clientHandshake is the gateway's side, as a client, of the handshake with the VM's VNC server, which in
// virt-launcher asks for no password (security None). It returns once the server waits for ClientInit.
func clientHandshake(rw io.ReadWriter) error {
	msg := make([]byte, 12)
	if _, err := io.ReadFull(rw, msg); err != nil {
		return fmt.Errorf("reading the VNC server's version: %w", err)
	}
	minor, err := parseVersion(msg)
	if err != nil {
		return err
	}
	if _, err := rw.Write(versionMessage(minor)); err != nil {
		return err
	}
	if minor == 3 {
		return clientSecurity33(rw)
	}
	var n [1]byte
	if _, err := io.ReadFull(rw, n[:]); err != nil {
		return fmt.Errorf("reading the VNC server's security types: %w", err)
	}
	if n[0] == 0 {
		return fmt.Errorf("the VNC server refused the connection: %s", readReason(rw))
	}
	types := make([]byte, n[0])
	if _, err := io.ReadFull(rw, types); err != nil {
		return fmt.Errorf("reading the VNC server's security types: %w", err)
	}
	if !slices.Contains(types, securityNone) {
		return fmt.Errorf("the VNC server asks for authentication (security types %v), KubeVirt's does not: not KubeVirt's VNC", types)
	}
	if _, err := rw.Write([]byte{securityNone}); err != nil {
		return err
	}
	if minor == 7 {
		return nil // RFB 3.7 sends no SecurityResult after None
	}
	return readSecurityResult(rw)
}

func clientSecurity33(rw io.ReadWriter) error {
	var security uint32
	if err := binary.Read(rw, binary.BigEndian, &security); err != nil {
		return fmt.Errorf("reading the VNC server's security type: %w", err)
	}
	switch security {
	case securityNone:
		return nil
	case securityInvalid:
		return fmt.Errorf("the VNC server refused the connection: %s", readReason(rw))
	}
	return fmt.Errorf("the VNC server asks for security type %d, KubeVirt's asks for none: not KubeVirt's VNC", security)
}

func readSecurityResult(r io.Reader) error {
	var result uint32
	if err := binary.Read(r, binary.BigEndian, &result); err != nil {
		return fmt.Errorf("reading the VNC server's security result: %w", err)
	}
	if result != resultOK {
		return fmt.Errorf("the VNC server refused the connection: %s", readReason(r))
	}
	return nil
}

// readReason reads a reason string, or says why it could not.
func readReason(r io.Reader) string {
	var n uint32
	if err := binary.Read(r, binary.BigEndian, &n); err != nil {
		return "(no reason given)"
	}
	if n > maxReason {
		return fmt.Sprintf("(a reason of %d bytes)", n)
	}
	reason := make([]byte, n)
	if _, err := io.ReadFull(r, reason); err != nil {
		return "(reason cut short)"
	}
	return strconv.Quote(string(reason))
}
