// Command kubevirt-webhooks serves KubeVirt v1.8.0's admission webhooks (virt-api's mutators and validators) to a
// test API server, and prints the objects that API server needs for them.
//
//	kubevirt-webhooks manifests [-namespace kubevirt] [-feature-gates Snapshot,...]
//	kubevirt-webhooks serve -kubeconfig FILE -cert-dir DIR -listen HOST:PORT [-namespace kubevirt]
//		[-wait-kubeconfig] [-stdin-eof] [-sync-timeout 1m]
//
// manifests prints, as one YAML stream: the KubeVirt CRD, KubeVirt's namespace, the default KubeVirt CR with the
// status virt-operator gives it (to be written after the create, which drops it), and virt-api's
// MutatingWebhookConfiguration and ValidatingWebhookConfiguration as virt-operator generates them, limited to the
// webhooks serve answers. Their clientConfig names virt-api's Service; envtest's WebhookInstallOptions rewrites it
// to serve's address.
//
// serve reads the API server through -kubeconfig (with -wait-kubeconfig, once that file exists), waits for its
// informers (the KubeVirt CR must exist), then serves the webhooks over HTTPS with tls.crt and tls.key from
// -cert-dir, and answers GET /readyz. It stops on SIGINT or SIGTERM, and with -stdin-eof also when its standard
// input closes, so that it does not outlive the test process that started it.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	"kubevirt.io/client-go/log"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/upstream/admission"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "manifests":
		err = manifests(os.Args[2:])
	case "serve":
		err = serve(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubevirt-webhooks %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: kubevirt-webhooks manifests|serve [flags]")
	os.Exit(2)
}

func manifests(args []string) error {
	fs := flag.NewFlagSet("manifests", flag.ExitOnError)
	namespace := fs.String("namespace", admission.DefaultNamespace, "KubeVirt's install namespace")
	gates := fs.String("feature-gates", "", "comma-separated feature gates for the KubeVirt CR")
	_ = fs.Parse(args) // ExitOnError
	var featureGates []string
	if *gates != "" {
		featureGates = strings.Split(*gates, ",")
	}
	m, err := admission.NewManifests(*namespace, featureGates)
	if err != nil {
		return err
	}
	b, err := m.YAML()
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(b)
	return err
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig of the API server (required)")
	certDir := fs.String("cert-dir", "", "directory holding tls.crt and tls.key (required)")
	listen := fs.String("listen", "", "host:port to serve on (required)")
	namespace := fs.String("namespace", admission.DefaultNamespace, "KubeVirt's install namespace")
	syncTimeout := fs.Duration("sync-timeout", time.Minute, "how long to wait for the informers")
	stdinEOF := fs.Bool("stdin-eof", false, "stop when standard input closes")
	waitKubeconfig := fs.Bool("wait-kubeconfig", false, "wait for -kubeconfig to exist (at most -sync-timeout)")
	_ = fs.Parse(args) // ExitOnError
	if *kubeconfig == "" || *certDir == "" || *listen == "" {
		return fmt.Errorf("-kubeconfig, -cert-dir and -listen are required")
	}

	// As cmd/virt-api/virt-api.go: without it KubeVirt's logger drops its info lines.
	log.InitializeLogging("virt-api")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *stdinEOF {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			log.Log.Infof("standard input closed")
			cancel()
		}()
	}

	if *waitKubeconfig {
		if err := waitForFile(ctx, *kubeconfig, *syncTimeout); err != nil {
			return err
		}
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return fmt.Errorf("reading %s: %w", *kubeconfig, err)
	}
	srv, err := admission.New(ctx, cfg, *namespace, *syncTimeout)
	if err != nil {
		return err
	}
	log.Log.Infof("serving KubeVirt's webhooks on https://%s", *listen)
	return srv.Serve(ctx, *listen, filepath.Join(*certDir, "tls.crt"), filepath.Join(*certDir, "tls.key"))
}

// waitForFile waits until path exists. The test environment starts the server before its API server, so that
// KubeVirt's package initialisation (3 s) overlaps the API server's start, and renames the kubeconfig into place
// once the API server is up.
func waitForFile(ctx context.Context, path string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", path, ctx.Err())
		case <-tick.C:
		}
	}
}
