package powerstate_test

import (
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/rest"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// outageProxy is a test double for the API server's network presence: a TCP proxy to the real one that can
// go away (every connection cut, new ones refused) and come back, as the reconciler sees an API server restart.
type outageProxy struct {
	target string
	mu     sync.Mutex
	l      net.Listener
	addr   string
	conns  map[net.Conn]struct{}
}

func newOutageProxy(t *testing.T, target string) *outageProxy {
	t.Helper()
	p := &outageProxy{target: target, conns: map[net.Conn]struct{}{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p.addr = l.Addr().String()
	p.serve(l)
	t.Cleanup(func() { p.down() })
	return p
}

func (p *outageProxy) serve(l net.Listener) {
	p.mu.Lock()
	p.l = l
	p.mu.Unlock()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.track(c, up)
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

func (p *outageProxy) track(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
}

// down cuts every connection and stops listening: connections are refused until up.
func (p *outageProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != nil {
		p.l.Close()
		p.l = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]struct{}{}
}

// up listens again on the same address.
func (p *outageProxy) up(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp", p.addr)
	require.NoError(t, err)
	p.serve(l)
}

// An API server that goes away and comes back loses no transition: what changed meanwhile is labelled once it
// is back, and the heartbeat lapses while the reconciler cannot see, so the extension reads the objects then.
func TestAPIServerOutageLosesNoTransition(t *testing.T) {
	ns := newNamespace(t)
	cfg := rest.CopyConfig(env.Config)
	u, err := url.Parse(cfg.Host)
	require.NoError(t, err)
	proxy := newOutageProxy(t, u.Host)
	cfg.Host = "https://" + proxy.addr
	r := startReconcilerAt(t, cfg, "outage", ns)

	stopped := createVM(t, ns, kubevirtv1.RunStrategyAlways)
	shutdown := createVM(t, ns, kubevirtv1.RunStrategyRerunOnFailure)
	waitPowerState(t, stopped, translate.PowerOn)
	waitPowerState(t, shutdown, translate.PowerOn)
	waitHeartbeat(t, "outage", r.config.Identity)
	waitVMIPhase(t, shutdown, kubevirtv1.Running)

	proxy.down()
	setRunStrategy(t, stopped, kubevirtv1.RunStrategyHalted) // the test's own client reaches the API server directly
	require.NoError(t, sim.GuestShutdown(t.Context(), shutdown.Namespace, shutdown.Name))
	created := createVM(t, ns, kubevirtv1.RunStrategyAlways)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		_, fresh := heartbeat(t, "outage")
		assert.False(c, fresh, "the heartbeat lapses while the reconciler is cut off")
	}, 10*time.Second, 50*time.Millisecond)
	time.Sleep(time.Second)
	proxy.up(t)

	waitPowerState(t, stopped, translate.PowerOff)
	waitPowerState(t, shutdown, translate.PowerOff)
	waitPowerState(t, created, translate.PowerOn)
	waitTransitions(t, stopped, "PowerOff")
	waitTransitions(t, shutdown, "PowerOff")
	waitHeartbeat(t, "outage", r.config.Identity)
}
