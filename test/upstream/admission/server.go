package admission

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	backupv1 "kubevirt.io/api/backup/v1alpha1"
	v1 "kubevirt.io/api/core/v1"
	"kubevirt.io/client-go/kubecli"
	"kubevirt.io/client-go/log"

	"kubevirt.io/kubevirt/pkg/controller"
	netadmitter "kubevirt.io/kubevirt/pkg/network/admitter"
	"kubevirt.io/kubevirt/pkg/testutils"
	"kubevirt.io/kubevirt/pkg/virt-api/webhooks"
	mutating_webhook "kubevirt.io/kubevirt/pkg/virt-api/webhooks/mutating-webhook"
	validating_webhook "kubevirt.io/kubevirt/pkg/virt-api/webhooks/validating-webhook"
	virtconfig "kubevirt.io/kubevirt/pkg/virt-config"
	"kubevirt.io/kubevirt/pkg/virt-operator/resource/generate/components"
)

// ReadyPath answers 200 once the server is listening, which it does only after its informers have synced. It is not
// virt-api's (virt-api's readiness probe is /apis/subresources.kubevirt.io/v1/healthz, served by its aggregated API).
const ReadyPath = "/readyz"

// Server is virt-api's admission half: the handlers pkg/virt-api/api.go (v1.8.0) registers in
// registerMutatingWebhook and registerValidatingWebhooks, with the informers and cluster config virtAPIApp.Run
// builds for them.
type Server struct {
	client          kubecli.KubevirtClient
	clusterConfig   *virtconfig.ClusterConfig
	informers       *webhooks.Informers
	serviceAccounts map[string]struct{}
}

// New connects to the API server at cfg as virt-api does, starts the informers the webhooks read, which run until
// ctx ends, and waits until they have synced, at most syncTimeout. The KubeVirt CRD must be installed (the cluster
// config reads the KubeVirt CR in namespace); kinds whose CRDs a test environment lacks get empty stand-in
// informers.
func New(ctx context.Context, cfg *rest.Config, namespace string, syncTimeout time.Duration) (*Server, error) {
	cfg = rest.CopyConfig(cfg)
	// virt-api's own client limits (pkg/virt-api/api.go, Execute): the webhooks read through this client.
	cfg.QPS, cfg.Burst = virtconfig.DefaultVirtAPIQPS, virtconfig.DefaultVirtAPIBurst
	client, err := kubecli.GetKubevirtClientFromRESTConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating the KubeVirt client: %w", err)
	}
	stop := ctx.Done()
	syncCtx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()

	// As virtAPIApp.Run: KubeVirt's informer factory, first the informers the cluster config needs, then the
	// DataSource informer, which depends on whether CDI's DataSource CRD is installed.
	factory := controller.NewKubeInformerFactory(client.RestClient(), client, nil, namespace)
	kubeVirtInformer := factory.KubeVirt()
	crdInformer := factory.CRD()
	vmRestoreInformer := factory.VirtualMachineRestore()
	namespaceInformer := factory.Namespace()
	// virt-api also starts informers for VirtualMachineInstancePresets and VirtualMachineBackups. Their CRDs are not
	// among the tests' (test/crds), and an informer whose CRD is missing never syncs, so both get an empty informer,
	// as virt-api's own DummyDataSource does for a missing CDI (pkg/controller/virtinformers.go). The preset mutator
	// then applies no presets, as on a cluster without any; the backup webhooks are not served.
	vmiPresetInformer, _ := testutils.NewFakeInformerFor(&v1.VirtualMachineInstancePreset{})
	vmBackupInformer, _ := testutils.NewFakeInformerFor(&backupv1.VirtualMachineBackup{})
	go vmiPresetInformer.Run(stop)
	go vmBackupInformer.Run(stop)

	factory.Start(stop)
	if err := waitForSync(syncCtx, map[string]cache.SharedIndexInformer{
		"kubevirts":                     kubeVirtInformer,
		"customresourcedefinitions":     crdInformer,
		"virtualmachinerestores":        vmRestoreInformer,
		"namespaces":                    namespaceInformer,
		"virtualmachineinstancepresets": vmiPresetInformer,
		"virtualmachinebackups":         vmBackupInformer,
	}); err != nil {
		return nil, err
	}
	clusterConfig, err := virtconfig.NewClusterConfig(crdInformer, kubeVirtInformer, namespace)
	if err != nil {
		return nil, fmt.Errorf("creating the cluster config: %w", err)
	}
	// virt-api restarts when CDI appears or goes (configModificationCallback); the tests' CRDs do not change.
	var dataSourceInformer cache.SharedIndexInformer
	if clusterConfig.HasDataSourceAPI() {
		dataSourceInformer = factory.DataSource()
	} else {
		dataSourceInformer = factory.DummyDataSource()
	}
	factory.Start(stop)
	if err := waitForSync(syncCtx, map[string]cache.SharedIndexInformer{"datasources": dataSourceInformer}); err != nil {
		return nil, err
	}
	if clusterConfig.GetConfigFromKubeVirtCR() == nil {
		// Not fatal for virt-api, which then uses the defaults; here it means the test environment forgot the CR or
		// its status.phase, and the feature gates it asked for would silently be off.
		return nil, fmt.Errorf("no KubeVirt CR with a status.phase in namespace %s", namespace)
	}
	return &Server{
		client:        client,
		clusterConfig: clusterConfig,
		informers: &webhooks.Informers{
			VMIPresetInformer:  vmiPresetInformer,
			VMRestoreInformer:  vmRestoreInformer,
			VMBackupInformer:   vmBackupInformer,
			DataSourceInformer: dataSourceInformer,
			NamespaceInformer:  namespaceInformer,
		},
		serviceAccounts: webhooks.KubeVirtServiceAccounts(namespace),
	}, nil
}

func waitForSync(ctx context.Context, informers map[string]cache.SharedIndexInformer) error {
	var missing []string
	for name, inf := range informers {
		if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("informers for %v did not sync (is the CRD installed?): %w", missing, context.Cause(ctx))
	}
	return nil
}

// handlers maps each webhook path this server serves to its handler, as registerMutatingWebhook and
// registerValidatingWebhooks in pkg/virt-api/api.go (v1.8.0) do, with the same components.*Path paths and Serve*
// functions. Left out are the webhooks for kinds the tests do not install: VirtualMachineInstanceReplicaSets,
// VirtualMachinePools, VirtualMachineInstancePresets, VirtualMachineBackups and their trackers,
// VirtualMachineExports, MigrationPolicies, VirtualMachineClones, and virt-launcher pods (their eviction
// interceptor and mutator: envtest runs no pods).
//
// s may be a zero Server when only the paths are needed: the handlers read it when called.
func (s *Server) handlers() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		// registerMutatingWebhook
		components.VMMutatePath: func(w http.ResponseWriter, r *http.Request) {
			mutating_webhook.ServeVMs(w, r, s.clusterConfig, s.client)
		},
		components.VMIMutatePath: func(w http.ResponseWriter, r *http.Request) {
			mutating_webhook.ServeVMIs(w, r, s.clusterConfig, s.informers, s.serviceAccounts)
		},
		components.MigrationMutatePath: func(w http.ResponseWriter, r *http.Request) {
			mutating_webhook.ServeMigrationCreate(w, r)
		},

		// registerValidatingWebhooks
		components.VMICreateValidatePath: func(w http.ResponseWriter, r *http.Request) {
			validating_webhook.ServeVMICreate(w, r, s.clusterConfig, s.serviceAccounts,
				func(field *field.Path, vmiSpec *v1.VirtualMachineInstanceSpec, clusterCfg *virtconfig.ClusterConfig) []metav1.StatusCause {
					return netadmitter.Validate(field, vmiSpec, clusterCfg)
				},
			)
		},
		components.VMIUpdateValidatePath: func(w http.ResponseWriter, r *http.Request) {
			validating_webhook.ServeVMIUpdate(w, r, s.clusterConfig, s.serviceAccounts)
		},
		components.VMValidatePath: func(w http.ResponseWriter, r *http.Request) {
			validating_webhook.ServeVMs(w, r, s.clusterConfig, s.client, s.informers, s.serviceAccounts)
		},
		components.MigrationCreateValidatePath: func(w http.ResponseWriter, r *http.Request) {
			validating_webhook.ServeMigrationCreate(w, r, s.clusterConfig, s.client, s.serviceAccounts)
		},
		components.MigrationUpdateValidatePath: func(w http.ResponseWriter, r *http.Request) {
			validating_webhook.ServeMigrationUpdate(w, r)
		},
		components.VMSnapshotValidatePath: func(w http.ResponseWriter, r *http.Request) {
			validating_webhook.ServeVMSnapshots(w, r, s.clusterConfig, s.client)
		},
		components.VMRestoreValidatePath: func(w http.ResponseWriter, r *http.Request) {
			validating_webhook.ServeVMRestores(w, r, s.clusterConfig, s.client, s.informers)
		},
		components.VMInstancetypeValidatePath: func(w http.ResponseWriter, r *http.Request) {
			validating_webhook.ServeVmInstancetypes(w, r)
		},
		components.VMClusterInstancetypeValidatePath: func(w http.ResponseWriter, r *http.Request) {
			validating_webhook.ServeVmClusterInstancetypes(w, r)
		},
		components.VMPreferenceValidatePath: func(w http.ResponseWriter, r *http.Request) {
			validating_webhook.ServeVmPreferences(w, r)
		},
		components.VMClusterPreferenceValidatePath: func(w http.ResponseWriter, r *http.Request) {
			validating_webhook.ServeVmClusterPreferences(w, r)
		},
		components.StatusValidatePath: func(w http.ResponseWriter, r *http.Request) {
			validating_webhook.ServeStatusValidation(w, r, s.clusterConfig, s.client, s.informers, s.serviceAccounts)
		},
	}
}

// servedPaths is the set of webhook paths Handler serves.
func servedPaths() map[string]bool {
	paths := map[string]bool{}
	for p := range (&Server{}).handlers() {
		paths[p] = true
	}
	return paths
}

// Handler serves the webhooks and ReadyPath.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for p, h := range s.handlers() {
		mux.HandleFunc(p, h)
	}
	mux.HandleFunc(ReadyPath, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// envtest turns a Service path into https://host:port/ + path (envtest/webhook.go, updateClientConfig), so
		// KubeVirt's paths arrive with two leading slashes; ServeMux would answer those with a redirect, which the
		// API server does not follow.
		if c := path.Clean(r.URL.Path); c != r.URL.Path {
			r.URL.Path = c
		}
		mux.ServeHTTP(w, r)
	})
}

// Serve serves Handler over HTTPS on addr, with the certificate and key in certFile and keyFile, until ctx ends.
// The API server calls webhooks over HTTPS only.
func (s *Server) Serve(ctx context.Context, addr, certFile, keyFile string) error {
	srv := &http.Server{Addr: addr, Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServeTLS(certFile, keyFile) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving the webhooks on %s: %w", addr, err)
	case <-ctx.Done():
	}
	log.Log.Infof("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
