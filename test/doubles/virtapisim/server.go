package virtapisim

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/kubevirtsim"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/testenv"
)

// Options configures the stand-in.
type Options struct {
	// Admin is the real API server's admin config (envtest's). Every request that is not a KubeVirt subresource is
	// forwarded with it, impersonating the caller; it must be allowed to impersonate (system:masters is).
	Admin *rest.Config
	// Sim carries out pause and unpause; nil answers 404 for them, as a cluster without virt-api does.
	Sim *kubevirtsim.Sim
	// VNC opens the guest's VNC stream for a VMI, as virt-handler opens QEMU's VNC socket; nil answers 404.
	VNC func(ctx context.Context, namespace, name string) (net.Conn, error)
}

// Server is a running stand-in. Close it when done.
type Server struct {
	opts   Options
	admin  client.Client
	srv    *httptest.Server
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey

	mu     sync.Mutex
	served map[string]int // by subresource, requests answered 2xx
}

// Served is how many requests for the subresource (pause, unpause, restart, vnc) succeeded, so that tests can
// tell the subresource path from a fallback.
func (s *Server) Served(sub string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.served[sub]
}

func (s *Server) count(sub string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.served[sub]++
}

// Start starts the stand-in on a loopback port.
func Start(opts Options) (*Server, error) {
	if opts.Admin == nil {
		return nil, errors.New("virtapisim: Options.Admin is required")
	}
	scheme, err := testenv.Scheme()
	if err != nil {
		return nil, err
	}
	admin, err := client.New(opts.Admin, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("virtapisim: admin client: %w", err)
	}
	proxy, err := forwarder(opts.Admin)
	if err != nil {
		return nil, err
	}
	caCert, caKey, err := newCA()
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, admin: admin, caCert: caCert, caKey: caKey, served: map[string]int{}}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	s.srv = httptest.NewUnstartedServer(s.routes(proxy))
	// A caller without a certificate gets 401 from authenticate, like an anonymous request to a real cluster.
	s.srv.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool, MinVersion: tls.VersionTLS12}
	s.srv.StartTLS()
	return s, nil
}

// URL is the stand-in's address, to be used as a kubeconfig's server.
func (s *Server) URL() string { return s.srv.URL }

// Close stops the server and every connection through it, websockets included.
func (s *Server) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// Config returns a REST config that reaches the stand-in as user in groups (a client certificate from its CA).
// Without RoleBindings for that user the real API server refuses everything, as on a cluster.
func (s *Server) Config(user string, groups []string) (*rest.Config, error) {
	certPEM, keyPEM, err := s.issue(user, groups)
	if err != nil {
		return nil, err
	}
	return &rest.Config{
		Host: s.srv.URL,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   pemCert(s.srv.Certificate().Raw),
			CertData: certPEM,
			KeyData:  keyPEM,
		},
		QPS:   s.opts.Admin.QPS,
		Burst: s.opts.Admin.Burst,
	}, nil
}

// KubeconfigFor writes a kubeconfig for user in groups into dir (mode 0600) and returns its path.
func (s *Server) KubeconfigFor(dir, user string, groups []string) (string, error) {
	cfg, err := s.Config(user, groups)
	if err != nil {
		return "", err
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["virtapisim"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData}
	kc.Contexts["virtapisim"] = &clientcmdapi.Context{Cluster: "virtapisim", AuthInfo: user}
	kc.CurrentContext = "virtapisim"
	f, err := os.CreateTemp(dir, "virtapisim-*.kubeconfig")
	if err != nil {
		return "", fmt.Errorf("virtapisim: kubeconfig: %w", err)
	}
	path := f.Name()
	f.Close()
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return "", fmt.Errorf("virtapisim: kubeconfig: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return "", err
	}
	return filepath.Clean(path), nil
}

func (s *Server) routes(proxy http.Handler) http.Handler {
	const prefix = "/apis/subresources.kubevirt.io/v1"
	const vmis = prefix + "/namespaces/{ns}/virtualmachineinstances/{name}"
	mux := http.NewServeMux()
	mux.HandleFunc("PUT "+vmis+"/pause", s.pause)
	mux.HandleFunc("PUT "+vmis+"/unpause", s.unpause)
	mux.HandleFunc("GET "+vmis+"/vnc", s.vnc)
	mux.HandleFunc("PUT "+prefix+"/namespaces/{ns}/virtualmachines/{name}/restart", s.restart)
	mux.HandleFunc("GET "+prefix+"/version", s.version)
	mux.HandleFunc("/apis/subresources.kubevirt.io/", func(w http.ResponseWriter, r *http.Request) {
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, "the server could not find the requested resource (virtapisim serves pause, unpause, restart, vnc and version)")
	})
	mux.Handle("/", proxy)
	return authenticate(mux)
}

// caller is who a request comes from, read from its verified client certificate.
type caller struct {
	user   string
	groups []string
}

type callerKey struct{}

func authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
			writeStatus(w, http.StatusUnauthorized, metav1.StatusReasonUnauthorized, "Unauthorized")
			return
		}
		cert := r.TLS.VerifiedChains[0][0]
		c := caller{user: cert.Subject.CommonName, groups: cert.Subject.Organization}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
	})
}

func callerOf(r *http.Request) caller {
	c, _ := r.Context().Value(callerKey{}).(caller)
	return c
}

// forwarder proxies to the real API server as the caller. Impersonation headers from the caller are dropped first:
// only the certificate says who the caller is.
func forwarder(admin *rest.Config) (http.Handler, error) {
	target, err := url.Parse(admin.Host)
	if err != nil || target.Host == "" {
		return nil, fmt.Errorf("virtapisim: admin config host %q is not a URL", admin.Host)
	}
	rt, err := rest.TransportFor(admin)
	if err != nil {
		return nil, fmt.Errorf("virtapisim: admin transport: %w", err)
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = target.Host
			for h := range pr.Out.Header {
				if strings.HasPrefix(strings.ToLower(h), "impersonate-") {
					pr.Out.Header.Del(h)
				}
			}
			c := callerOf(pr.In)
			pr.Out.Header.Set("Impersonate-User", c.user)
			for _, g := range c.groups {
				pr.Out.Header.Add("Impersonate-Group", g)
			}
		},
		Transport:     rt,
		FlushInterval: -1, // watches stream
	}, nil
}

func newCA() (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "virtapisim client CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("virtapisim: CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

func (s *Server) issue(user string, groups []string) (certPEM, keyPEM []byte, err error) {
	if user == "" {
		return nil, nil, errors.New("virtapisim: empty user name")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: user, Organization: groups},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.caCert, &key.PublicKey, s.caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("virtapisim: client certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pemCert(der), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// writeStatus answers as the API server does: a metav1.Status.
func writeStatus(w http.ResponseWriter, code int, reason metav1.StatusReason, msg string) {
	st := metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure,
		Message:  msg,
		Reason:   reason,
		Code:     int32(code),
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(st)
}

func deadline() time.Time { return time.Now().Add(time.Second) }
