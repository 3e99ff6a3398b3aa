package console

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"
)

// Accept's temporary failures are retried after a pause that doubles from minAcceptDelay to maxAcceptDelay, as
// net/http.Server does: running out of file descriptors for a moment must not stop the gateway.
const (
	minAcceptDelay = 5 * time.Millisecond
	maxAcceptDelay = time.Second
)

// temporary is net.Error's deprecated Temporary: syscall.Errno and *net.OpError still answer it, and it is
// what net/http.Server retries on.
type temporary interface{ Temporary() bool }

// temporaryAcceptError says whether Accept may work again later: out of descriptors or buffers, a connection
// aborted before it was accepted, or a timeout.
func temporaryAcceptError(err error) bool {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ECONNABORTED, syscall.ECONNRESET,
		syscall.ENOBUFS, syscall.ENOMEM, syscall.EAGAIN, syscall.EINTR} {
		if errors.Is(err, errno) {
			return true
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var te temporary
	return errors.As(err, &te) && te.Temporary()
}

// acceptBackoff is the pause before the next Accept after consecutive temporary failures.
type acceptBackoff struct{ delay time.Duration }

// next is the pause after one more temporary failure.
func (b *acceptBackoff) next() time.Duration {
	if b.delay == 0 {
		b.delay = minAcceptDelay
	} else {
		b.delay = min(2*b.delay, maxAcceptDelay)
	}
	return b.delay
}

// sleep waits d, or returns false as soon as ctx ends.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// reset follows an Accept that worked.
func (b *acceptBackoff) reset() { b.delay = 0 }

// LimitListener returns a listener that holds at most n of ln's connections open at once and closes any
// further one as soon as it is accepted. Unlike x/net's netutil.LimitListener, which stops accepting, it
// refuses: the kernel's backlog does not fill with clients that wait for nothing, and the ones beyond the cap
// learn at once.
func LimitListener(ln net.Listener, n int) net.Listener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, n)}
}

type limitListener struct {
	net.Listener
	slots chan struct{}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &limitConn{Conn: conn, release: func() { <-l.slots }}, nil
		default:
			conn.Close()
		}
	}
}

// limitConn gives its slot back when it is closed, once.
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
