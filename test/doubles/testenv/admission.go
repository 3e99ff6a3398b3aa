package testenv

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	extv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"
)

const (
	// KubeVirtNamespace is where the test environment "installs" KubeVirt, as its release manifests do: its
	// service accounts, its KubeVirt CR and (for admission) the namespace virt-api's webhooks trust requests from.
	KubeVirtNamespace = "kubevirt"
	// ControllerServiceAccount and HandlerServiceAccount are virt-controller's and virt-handler's service accounts
	// (kubevirt.io/kubevirt v1.8.0, pkg/virt-operator/resource/generate/components/serviceaccountnames.go).
	ControllerServiceAccount = "kubevirt-controller"
	HandlerServiceAccount    = "kubevirt-handler"
	// ControllerUser is the user name virt-controller's requests carry. KubeVirt's webhooks let only KubeVirt's
	// service accounts (pkg/virt-api/webhooks/serviceaccounts.go) create VMIs with reserved labels, change a VMI's
	// spec or write its status: test/doubles/kubevirtsim acts as this user.
	ControllerUser = "system:serviceaccount:" + KubeVirtNamespace + ":" + ControllerServiceAccount

	// webhooksCommand is the test/upstream command that serves KubeVirt's webhooks.
	webhooksCommand = "kubevirt-webhooks"
)

// DefaultFeatureGates are the KubeVirt feature gates in the test environment's KubeVirt CR unless
// Options.FeatureGates says otherwise. KubeVirt's release CR enables none; the product's snapshot actions need
// Snapshot (Beta in v1.8.0, so off unless listed: virt-api refuses VirtualMachineSnapshots and
// VirtualMachineRestores without it, pkg/storage/admitters/vmsnapshot.go and vmrestore.go).
var DefaultFeatureGates = []string{"Snapshot"}

// kubeVirtManifests are the objects `kubevirt-webhooks manifests` prints.
type kubeVirtManifests struct {
	crds       []*extv1.CustomResourceDefinition
	namespace  *corev1.Namespace
	kubeVirt   *kubevirtv1.KubeVirt
	mutating   []*admissionregistrationv1.MutatingWebhookConfiguration
	validating []*admissionregistrationv1.ValidatingWebhookConfiguration
}

// loadManifests returns what `bin manifests` prints for featureGates, decoded. The output is cached beside the
// upstream binaries, keyed by the binary and the gates: printing it takes 3 s (KubeVirt's package initialisation
// builds virt-api's OpenAPI definitions), as long as starting an API server.
func loadManifests(ctx context.Context, bin string, featureGates []string) (*kubeVirtManifests, error) {
	gates := strings.Join(featureGates, ",")
	cached, err := manifestsCachePath(bin, gates)
	if err != nil {
		return nil, err
	}
	out, err := os.ReadFile(cached)
	if err != nil {
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, bin, "manifests", "-namespace", KubeVirtNamespace, "-feature-gates", gates)
		cmd.Stderr = &stderr
		if out, err = cmd.Output(); err != nil {
			return nil, fmt.Errorf("testenv: %s manifests: %w: %s", webhooksCommand, err, tail(stderr.String(), 2000))
		}
		// Written whole or not at all: parallel test packages read it.
		tmp := fmt.Sprintf("%s.%d.tmp", cached, os.Getpid())
		if err := os.WriteFile(tmp, out, 0o644); err == nil {
			_ = os.Rename(tmp, cached)
		}
	}
	m, err := decodeManifests(out)
	if err != nil {
		_ = os.Remove(cached)
		return nil, fmt.Errorf("testenv: decoding %s manifests: %w", webhooksCommand, err)
	}
	return m, nil
}

// manifestsCachePath names the cached output of bin's manifests for gates: bin's path, size and time (a prebuilt
// binary from $UPSTREAM_KUBEVIRT_WEBHOOKS may be replaced in place) and the gates.
func manifestsCachePath(bin, gates string) (string, error) {
	fi, err := os.Stat(bin)
	if err != nil {
		return "", fmt.Errorf("testenv: %w", err)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("testenv: no cache directory for the upstream manifests: %w", err)
	}
	dir := filepath.Join(cache, "cloudstack-kubevirt", "upstream")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("testenv: %w", err)
	}
	h := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d\x00%d\x00%s", bin, fi.Size(), fi.ModTime().UnixNano(), gates))
	return filepath.Join(dir, webhooksCommand+"-manifests-"+hex.EncodeToString(h[:8])+".yaml"), nil
}

func decodeManifests(out []byte) (*kubeVirtManifests, error) {
	m := &kubeVirtManifests{}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(out)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		if err := m.add(doc); err != nil {
			return nil, err
		}
	}
	if m.namespace == nil || m.kubeVirt == nil || len(m.mutating) == 0 || len(m.validating) == 0 {
		return nil, errors.New("no namespace, KubeVirt CR or webhook configurations")
	}
	return m, nil
}

func (m *kubeVirtManifests) add(doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	var obj any
	switch tm.Kind {
	case "CustomResourceDefinition":
		crd := &extv1.CustomResourceDefinition{}
		m.crds, obj = append(m.crds, crd), crd
	case "Namespace":
		m.namespace = &corev1.Namespace{}
		obj = m.namespace
	case "KubeVirt":
		m.kubeVirt = &kubevirtv1.KubeVirt{}
		obj = m.kubeVirt
	case "MutatingWebhookConfiguration":
		c := &admissionregistrationv1.MutatingWebhookConfiguration{}
		m.mutating, obj = append(m.mutating, c), c
	case "ValidatingWebhookConfiguration":
		c := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		m.validating, obj = append(m.validating, c), c
	default:
		return fmt.Errorf("unexpected kind %q", tm.Kind)
	}
	return yaml.UnmarshalStrict(doc, obj)
}

// installKubeVirtAccounts creates KubeVirt's namespace and the service accounts of virt-controller and virt-handler,
// bound to cluster-admin: envtest authorizes with RBAC only, and test/doubles/kubevirtsim acts as virt-controller.
// (KubeVirt's own ClusterRoles are narrower; the simulator also does what CDI and the garbage collector do.)
func (e *Env) installKubeVirtAccounts(ctx context.Context) error {
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: KubeVirtNamespace}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: KubeVirtNamespace, Name: ControllerServiceAccount}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: KubeVirtNamespace, Name: HandlerServiceAccount}},
		&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "testenv-kubevirt-cluster-admin"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
			Subjects: []rbacv1.Subject{
				{Kind: rbacv1.ServiceAccountKind, Namespace: KubeVirtNamespace, Name: ControllerServiceAccount},
				{Kind: rbacv1.ServiceAccountKind, Namespace: KubeVirtNamespace, Name: HandlerServiceAccount},
			},
		},
	}
	for _, o := range objs {
		if err := e.Client.Create(ctx, o); err != nil {
			return fmt.Errorf("testenv: creating %T %s: %w", o, o.GetName(), err)
		}
	}
	return nil
}

// installKubeVirtCR creates the KubeVirt CR and then writes the status virt-operator gives it (kubevirt-webhooks
// prints both), which the create drops: virt-api's cluster config ignores a CR without status.phase and takes the
// default architecture from its status (pkg/virt-config/configuration.go, v1.8.0).
func (e *Env) installKubeVirtCR(ctx context.Context, kv *kubevirtv1.KubeVirt) error {
	if kv.Status.Phase == "" {
		return fmt.Errorf("testenv: %s printed a KubeVirt CR without status.phase", webhooksCommand)
	}
	kv = kv.DeepCopy()
	status := kv.Status
	if err := e.Client.Create(ctx, kv); err != nil {
		return fmt.Errorf("testenv: creating the KubeVirt CR: %w", err)
	}
	kv.Status = status
	if err := e.Client.Status().Update(ctx, kv); err != nil {
		return fmt.Errorf("testenv: writing the KubeVirt CR's status: %w", err)
	}
	return nil
}

// admission is KubeVirt's admission for one Env: what `kubevirt-webhooks manifests` printed, envtest's options for
// installing the webhook configurations, and the server.
type admission struct {
	manifests *kubeVirtManifests
	options   envtest.WebhookInstallOptions
	server    *webhookServer
}

// startAdmission builds (or reuses) kubevirt-webhooks, starts its server and loads the manifests, before the API
// server starts: the server spends its first 3 s in KubeVirt's package initialisation, which so overlaps envtest's
// start, and then waits for the kubeconfig that startWebhooks writes into dir once the API server is up.
func startAdmission(ctx context.Context, opts Options, dir string) (a *admission, err error) {
	bin, err := UpstreamBinary(ctx, webhooksCommand)
	if err != nil {
		return nil, err
	}
	a = &admission{}
	// The serving address and certificates, made before the API server starts so that the server can start first.
	if err := a.options.PrepWithoutInstalling(); err != nil {
		return nil, fmt.Errorf("testenv: preparing the webhooks' address and certificates: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, a.stop())
		}
	}()
	if a.server, err = startWebhookServer(bin, &a.options, dir, opts.AttachOutput); err != nil {
		return nil, err
	}
	gates := opts.FeatureGates
	if gates == nil {
		gates = DefaultFeatureGates
	}
	if a.manifests, err = loadManifests(ctx, bin, gates); err != nil {
		return nil, err
	}
	// envtest points each webhook's Service at https://host:port/ + path (envtest/webhook.go, updateClientConfig).
	a.options.MutatingWebhooks = a.manifests.mutating
	a.options.ValidatingWebhooks = a.manifests.validating
	if err := a.options.ModifyWebhookDefinitions(); err != nil {
		return nil, fmt.Errorf("testenv: pointing the webhooks at their server: %w", err)
	}
	return a, nil
}

// stop stops the server, if started, and removes the webhooks' certificates.
func (a *admission) stop() error {
	var errs []error
	if a.server != nil {
		errs = append(errs, a.server.stop())
	}
	return errors.Join(append(errs, a.options.Cleanup())...)
}

// webhookServer is a running `kubevirt-webhooks serve`.
type webhookServer struct {
	cmd        *exec.Cmd
	stdin      io.Closer
	addr       string
	kubeconfig string // where it waits for its kubeconfig
	log        string // its stdout and stderr
	done       chan struct{}
	err        error // set when done is closed

	stopOnce sync.Once
	stopErr  error
}

// startWebhookServer starts bin serving KubeVirt's webhooks at the address and with the certificates of wo. It
// waits for its kubeconfig in dir.
func startWebhookServer(bin string, wo *envtest.WebhookInstallOptions, dir string, attach bool) (*webhookServer, error) {
	s := &webhookServer{
		addr:       net.JoinHostPort(wo.LocalServingHost, strconv.Itoa(wo.LocalServingPort)),
		kubeconfig: filepath.Join(dir, "kubevirt-webhooks.kubeconfig"),
		log:        filepath.Join(dir, "kubevirt-webhooks.log"),
		done:       make(chan struct{}),
	}
	logFile, err := os.Create(s.log)
	if err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	defer logFile.Close() // the child has its own descriptor
	s.cmd = exec.Command(bin, "serve", "-kubeconfig", s.kubeconfig, "-wait-kubeconfig", "-cert-dir", wo.LocalServingCertDir,
		"-listen", s.addr, "-namespace", KubeVirtNamespace, "-stdin-eof")
	var out io.Writer = logFile
	if attach {
		out = io.MultiWriter(logFile, os.Stderr)
	}
	s.cmd.Stdout, s.cmd.Stderr = out, out
	// The server stops when this pipe closes, which also happens when the test process dies without calling Stop.
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("testenv: starting %s: %w", bin, err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	return s, nil
}

// startWebhooks registers the webhook configurations, installs what the webhook server reads (the KubeVirt CR),
// hands the server its kubeconfig and waits until it answers. The webhooks fail closed, but none of them matches
// the namespace or the KubeVirt CR.
func (e *Env) startWebhooks(ctx context.Context) error {
	// Prepared already (startAdmission): Install only creates the configurations and waits until they are served.
	if err := e.admission.options.Install(e.Config); err != nil {
		return fmt.Errorf("testenv: installing KubeVirt's webhook configurations: %w", err)
	}
	if err := e.installKubeVirtCR(ctx, e.admission.manifests.kubeVirt); err != nil {
		return err
	}
	s := e.admission.server
	tmp := s.kubeconfig + ".tmp"
	if err := e.WriteKubeconfig(tmp); err != nil {
		return err
	}
	start := time.Now()
	if err := os.Rename(tmp, s.kubeconfig); err != nil { // the server must not read half a file
		return fmt.Errorf("testenv: %w", err)
	}
	if err := s.waitReady(ctx, e.admission.options.LocalServingCAData); err != nil {
		return fmt.Errorf("testenv: KubeVirt's webhook server: %w\n%s", err, s.logTail(40))
	}
	e.WebhooksReadyIn = time.Since(start)
	return nil
}

// waitReady polls the server's readiness path until it answers 200, the server exits, or a minute (the server's own
// informer sync timeout) passes.
func (s *webhookServer) waitReady(ctx context.Context, caPEM []byte) error {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return errors.New("envtest's webhook CA is not PEM")
	}
	hc := &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
		Timeout:   time.Second,
	}
	defer hc.CloseIdleConnections()
	url := "https://" + s.addr + "/readyz"
	ctx, cancel := context.WithTimeout(ctx, 70*time.Second)
	defer cancel()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s answered %s", url, resp.Status)
		}
		last = err
		select {
		case <-s.done:
			return fmt.Errorf("exited before answering: %v", s.err)
		case <-ctx.Done():
			return fmt.Errorf("no answer from %s: %w (last: %v)", url, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// stop asks the server to stop (SIGTERM, and its standard input closed) and kills it if it has not stopped in 10s.
// A server that exited by itself before stop is an error: requests to the webhooks failed from then on.
func (s *webhookServer) stop() error {
	s.stopOnce.Do(func() {
		select {
		case <-s.done:
			s.stopErr = fmt.Errorf("testenv: KubeVirt's webhook server exited while the tests ran: %v\n%s", s.err, s.logTail(40))
			return
		default:
		}
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		_ = s.stdin.Close()
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
			s.stopErr = fmt.Errorf("testenv: KubeVirt's webhook server did not stop in 10s; killed")
			return
		}
		if s.err != nil {
			s.stopErr = fmt.Errorf("testenv: KubeVirt's webhook server: %w\n%s", s.err, s.logTail(40))
		}
	})
	return s.stopErr
}

// logTail returns the last n lines of the server's log.
func (s *webhookServer) logTail(n int) string {
	b, err := os.ReadFile(s.log)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("… (last %d of %d lines of %s)", n, len(lines), s.log)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// WebhookLog returns the last n lines of the output of KubeVirt's webhook server, for a failing test to show; ""
// without admission. The log is removed by Stop.
func (e *Env) WebhookLog(n int) string {
	if e.admission == nil {
		return ""
	}
	return e.admission.server.logTail(n)
}

// ControllerConfig returns a REST config that acts as virt-controller's service account (ControllerUser), by
// impersonation from the admin user: what KubeVirt's webhooks accept only from KubeVirt itself.
func (e *Env) ControllerConfig() *rest.Config {
	cfg := rest.CopyConfig(e.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: ControllerUser}
	return cfg
}
