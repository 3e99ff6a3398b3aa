package console

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport/websocket"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube/consoletoken"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// Upstream opens the VNC stream of a token's VM, handshake done: the server waits for ClientInit.
type Upstream interface {
	Open(ctx context.Context, target consoletoken.Target) (net.Conn, error)
}

// vncSubprotocol is the websocket subprotocol of KubeVirt's vnc subresource: raw RFB in binary messages.
const vncSubprotocol = "plain.kubevirt.io"

// KubeVirt reaches a VMI's VNC through the API server, which hands the request to virt-api, which relays it to
// virt-handler on the VM's node and on to QEMU's VNC socket in virt-launcher.
type KubeVirt struct {
	cfg    *rest.Config
	client *kube.Client
}

// NewKubeVirt opens consoles with cfg's identity, which needs get on virtualmachines and on
// virtualmachineinstances/vnc (subresources.kubevirt.io).
func NewKubeVirt(cfg *rest.Config) (*KubeVirt, error) {
	cfg = rest.CopyConfig(cfg)
	// gorilla's dialer speaks HTTP/1.1 only; the upgrade must not be offered HTTP/2.
	cfg.NextProtos = []string{"http/1.1"}
	c, err := kube.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	return &KubeVirt{cfg: cfg, client: c}, nil
}

// Open checks that CloudStack manages the VM (the token names it, but the gateway's own rule is that it opens
// nothing else), then connects and does the handshake.
func (k *KubeVirt) Open(ctx context.Context, target consoletoken.Target) (net.Conn, error) {
	if err := k.check(ctx, target); err != nil {
		return nil, err
	}
	conn, err := k.dial(ctx, target)
	if err != nil {
		return nil, err
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	if err := clientHandshake(conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("VNC handshake with VirtualMachineInstance %s: %w", target, err)
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, nil
}

func (k *KubeVirt) check(ctx context.Context, target consoletoken.Target) error {
	vm := &kubevirtv1.VirtualMachine{}
	err := k.client.Get(ctx, types.NamespacedName{Namespace: target.Namespace, Name: target.Name}, vm)
	if kerrors.IsNotFound(err) {
		return fmt.Errorf("VirtualMachine %s does not exist", target)
	}
	// The gateway's rules are bound per managed namespace: say which binding is missing.
	if kerrors.IsForbidden(err) {
		return fmt.Errorf("reading VirtualMachine %s: forbidden: the gateway's ServiceAccount is not bound in namespace %s "+
			"(a RoleBinding of ClusterRole cloudstack-kubevirt-console there, as manifests/examples/namespace has): %w", target, target.Namespace, err)
	}
	if err != nil {
		return fmt.Errorf("reading VirtualMachine %s: %w", target, err)
	}
	if vm.Labels[translate.LabelManagedBy] != translate.ManagedBy {
		return fmt.Errorf("VirtualMachine %s is not managed by CloudStack (no %s=%s label): the gateway opens no other console", target, translate.LabelManagedBy, translate.ManagedBy)
	}
	if uuid := vm.Labels[translate.LabelInstanceUUID]; target.InstanceUUID != "" && uuid != target.InstanceUUID {
		return fmt.Errorf("VirtualMachine %s belongs to Instance %s, not to the token's %s", target, uuid, target.InstanceUUID)
	}
	return nil
}

// dial opens the vnc subresource's websocket.
func (k *KubeVirt) dial(ctx context.Context, target consoletoken.Target) (net.Conn, error) {
	rt, holder, err := websocket.RoundTripperFor(k.cfg)
	if err != nil {
		return nil, fmt.Errorf("websocket transport for the API server: %w", err)
	}
	host := k.cfg.Host
	if !strings.Contains(host, "://") {
		host = "https://" + host
	}
	u := strings.TrimRight(host, "/") + "/apis/subresources.kubevirt.io/v1/namespaces/" + url.PathEscape(target.Namespace) +
		"/virtualmachineinstances/" + url.PathEscape(target.Name) + "/vnc"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	ws, err := websocket.Negotiate(rt, holder, req, vncSubprotocol)
	if err != nil {
		return nil, fmt.Errorf("opening the VNC of VirtualMachineInstance %s through the API server (is virt-api up, and does the gateway's ServiceAccount may get virtualmachineinstances/vnc?): %w", target, err)
	}
	return newWSConn(ws), nil
}
