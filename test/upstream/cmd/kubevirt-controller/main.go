// Command kubevirt-controller runs KubeVirt v1.8.0's own VirtualMachine controller
// (kubevirt.io/kubevirt/pkg/virt-controller/watch/vm), unchanged, against the API server of a kubeconfig. It is
// the VM half of virt-controller, wired as virt-controller wires it in
// kubevirt.io/kubevirt@v1.8.0/pkg/virt-controller/watch/application.go (Execute, initVirtualMachines and
// onStartedLeading), for tests that run against envtest.
//
// Only the VM controller runs, with what it strictly needs: its informers, the cluster config read from the
// KubeVirt CR, and the network, firmware and instancetype synchronizers it is built with. Not the VMI controller
// (it creates virt-launcher pods, which envtest never runs), nor the migration, snapshot, restore, export, clone,
// pool, replica set, node, evacuation or disruption budget controllers; there is no leader election (one
// instance per API server), no metrics or health endpoint.
//
// The API server needs the KubeVirt CRDs, including kubevirts.kubevirt.io: an informer whose resource is not
// served never syncs, and the controller would wait for it forever. The KubeVirt CR is read from the namespace
// --kubevirt-namespace (without one, KubeVirt's default configuration applies). Without CDI's DataVolume CRD the
// controller uses KubeVirt's own dummy DataVolume and DataSource informers, as virt-controller does.
//
// With --install-kubevirt-crd it first installs kubevirts.kubevirt.io as virt-operator defines it
// (pkg/virt-operator/resource/generate/components.NewKubeVirtCrd), unless the CRD exists already.
//
// Once its caches are in sync it prints "ready" on stdout; it logs, as virt-controller does, to stderr. SIGTERM
// or SIGINT stops it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	k8sv1 "k8s.io/api/core/v1"
	extv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/scheme"
	k8scorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/flowcontrol"
	"kubevirt.io/client-go/kubecli"
	"kubevirt.io/client-go/log"

	"kubevirt.io/kubevirt/pkg/controller"
	instancetypecontroller "kubevirt.io/kubevirt/pkg/instancetype/controller/vm"
	netcontrollers "kubevirt.io/kubevirt/pkg/network/controllers"
	"kubevirt.io/kubevirt/pkg/util/ratelimiter"
	virtconfig "kubevirt.io/kubevirt/pkg/virt-config"
	"kubevirt.io/kubevirt/pkg/virt-controller/watch/vm"
	"kubevirt.io/kubevirt/pkg/virt-operator/resource/generate/components"
)

// component is the name virt-controller logs under, and the source of the VM controller's events
// (application.go: log.InitializeLogging("virt-controller"), newRecorder(..., "virtualmachine-controller")).
const (
	component         = "virt-controller"
	recorderComponent = "virtualmachine-controller"
)

type options struct {
	kubeconfig        string
	kubevirtNamespace string
	threads           int
	syncTimeout       time.Duration
	installCRD        bool
}

func main() {
	var opts options
	flag.StringVar(&opts.kubeconfig, "kubeconfig", "", "path to the kubeconfig of the API server to run against (required)")
	flag.StringVar(&opts.kubevirtNamespace, "kubevirt-namespace", "kubevirt",
		"namespace of the KubeVirt CR that configures the controller (virt-controller's own namespace)")
	// The flag and default of application.go's AddFlags (defaultControllerThreads).
	flag.IntVar(&opts.threads, "vm-controller-threads", 3, "number of goroutines to run for the vm controller")
	flag.DurationVar(&opts.syncTimeout, "sync-timeout", 2*time.Minute,
		"give up when the informers have not synced by then (a CRD the controller watches is missing)")
	flag.BoolVar(&opts.installCRD, "install-kubevirt-crd", false,
		"install the kubevirts.kubevirt.io CRD as virt-operator defines it, unless it exists")
	// -v is KubeVirt's own flag (kubevirt.io/client-go/log registers it, default 2).
	flag.Parse()

	log.InitializeLogging(component)
	if v, err := strconv.Atoi(flag.Lookup("v").Value.String()); err == nil {
		if err := log.Log.SetVerbosityLevel(v); err != nil {
			fmt.Fprintln(os.Stderr, "kubevirt-controller:", err)
			os.Exit(2)
		}
	}
	if opts.kubeconfig == "" {
		fmt.Fprintln(os.Stderr, "kubevirt-controller: --kubeconfig is required")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, opts); err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "kubevirt-controller:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, opts options) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", opts.kubeconfig)
	if err != nil {
		return fmt.Errorf("reading %s: %w", opts.kubeconfig, err)
	}
	// application.go's Execute: a rate limiter the KubeVirt CR's controller configuration can change later.
	limiter := ratelimiter.NewReloadableRateLimiter(
		flowcontrol.NewTokenBucketRateLimiter(virtconfig.DefaultVirtControllerQPS, virtconfig.DefaultVirtControllerBurst))
	cfg.RateLimiter = limiter
	clientSet, err := kubecli.GetKubevirtClientFromRESTConfig(cfg)
	if err != nil {
		return fmt.Errorf("creating the KubeVirt client: %w", err)
	}
	if opts.installCRD {
		if err := installKubeVirtCRD(ctx, clientSet); err != nil {
			return err
		}
	}

	stopCh := ctx.Done()
	factory := controller.NewKubeInformerFactory(clientSet.RestClient(), clientSet, nil, opts.kubevirtNamespace)

	// Execute: the CRD and KubeVirt informers come first, because the cluster config is built from them.
	crdInformer := factory.CRD()
	kubeVirtInformer := factory.KubeVirt()
	factory.Start(stopCh)
	if err := waitForSync(ctx, opts.syncTimeout, "CustomResourceDefinition and KubeVirt",
		crdInformer.HasSynced, kubeVirtInformer.HasSynced); err != nil {
		return err
	}
	clusterConfig, err := virtconfig.NewClusterConfig(crdInformer, kubeVirtInformer, opts.kubevirtNamespace)
	if err != nil {
		return fmt.Errorf("building the cluster config: %w", err)
	}
	clusterConfig.SetConfigModifiedCallback(func() { // Execute's shouldChangeRateLimiter
		rl := clusterConfig.GetConfig().ControllerConfiguration.RestClient.RateLimiter.TokenBucketRateLimiter
		limiter.Set(flowcontrol.NewTokenBucketRateLimiter(rl.QPS, rl.Burst))
	})
	hasCDI := clusterConfig.HasDataVolumeAPI()

	// Execute: the informers initVirtualMachines hands to vm.NewController.
	vmiInformer := factory.VMI()
	vmInformer := factory.VirtualMachine()
	namespaceInformer := factory.Namespace()
	pvcInformer := factory.PersistentVolumeClaim()
	controllerRevisionInformer := factory.ControllerRevision()
	instancetypeInformer := factory.VirtualMachineInstancetype()
	clusterInstancetypeInformer := factory.VirtualMachineClusterInstancetype()
	preferenceInformer := factory.VirtualMachinePreference()
	clusterPreferenceInformer := factory.VirtualMachineClusterPreference()
	var dataVolumeInformer, dataSourceInformer cache.SharedIndexInformer
	if hasCDI {
		dataVolumeInformer = factory.DataVolume()
		dataSourceInformer = factory.DataSource()
		log.Log.Infof("CDI detected, DataVolume integration enabled")
	} else {
		// Execute: "a dummy DataVolume informer in the event datavolume support is disabled".
		dataVolumeInformer = factory.DummyDataVolume()
		dataSourceInformer = factory.DummyDataSource()
		log.Log.Infof("CDI not detected, DataVolume integration disabled")
	}

	// initVirtualMachines, argument for argument. No launcher annotations or labels are synced
	// (--additional-launcher-annotations-sync and --additional-launcher-labels-sync default to none).
	recorder := newRecorder(clientSet)
	vmController, err := vm.NewController(
		vmiInformer,
		vmInformer,
		dataVolumeInformer,
		dataSourceInformer,
		kubeVirtInformer,
		namespaceInformer,
		pvcInformer,
		controllerRevisionInformer,
		recorder,
		clientSet,
		clusterConfig,
		netcontrollers.NewVMController(clientSet.GeneratedKubeVirtClient(), clusterConfig),
		vm.NewFirmwareController(clientSet.GeneratedKubeVirtClient()),
		instancetypecontroller.New(
			instancetypeInformer.GetStore(),
			clusterInstancetypeInformer.GetStore(),
			preferenceInformer.GetStore(),
			clusterPreferenceInformer.GetStore(),
			controllerRevisionInformer.GetStore(),
			clientSet,
			clusterConfig,
			recorder,
		),
		nil,
		nil,
	)
	if err != nil {
		return fmt.Errorf("creating the VM controller: %w", err)
	}

	// onStartedLeading: start the informers, then the controller.
	factory.Start(stopCh)
	err = waitForSync(ctx, opts.syncTimeout, "VM controller",
		vmiInformer.HasSynced, vmInformer.HasSynced, dataVolumeInformer.HasSynced, dataSourceInformer.HasSynced,
		namespaceInformer.HasSynced, pvcInformer.HasSynced, controllerRevisionInformer.HasSynced,
		instancetypeInformer.HasSynced, clusterInstancetypeInformer.HasSynced,
		preferenceInformer.HasSynced, clusterPreferenceInformer.HasSynced)
	if err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		vmController.Run(opts.threads, stopCh)
	}()
	fmt.Println("ready")
	<-done
	return nil
}

// waitForSync waits for the informers, giving up after timeout so that a missing CRD is reported rather than
// waited on forever.
func waitForSync(ctx context.Context, timeout time.Duration, what string, synced ...cache.InformerSynced) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("the %s informers did not sync within %v: is every CRD they watch installed "+
				"(kubevirts.kubevirt.io in particular)?", what, timeout)
		}
		return fmt.Errorf("stopped while waiting for the %s informers: %w", what, ctx.Err())
	}
	return nil
}

// newRecorder is application.go's newRecorder: events go to the API server as the VM controller's.
func newRecorder(clientSet kubecli.KubevirtClient) record.EventRecorder {
	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&k8scorev1.EventSinkImpl{Interface: clientSet.CoreV1().Events(k8sv1.NamespaceAll)})
	return broadcaster.NewRecorder(scheme.Scheme, k8sv1.EventSource{Component: recorderComponent})
}

// installKubeVirtCRD creates the kubevirts.kubevirt.io CRD that virt-operator installs, and waits until it is
// served. An existing CRD is left as it is.
func installKubeVirtCRD(ctx context.Context, clientSet kubecli.KubevirtClient) error {
	crd, err := components.NewKubeVirtCrd()
	if err != nil {
		return fmt.Errorf("generating the KubeVirt CRD: %w", err)
	}
	crds := clientSet.ExtensionsClient().ApiextensionsV1().CustomResourceDefinitions()
	if _, err := crds.Create(ctx, crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating the CRD %s: %w", crd.Name, err)
	}
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err := crds.Get(ctx, crd.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range got.Status.Conditions {
			if c.Type == extv1.Established && c.Status == extv1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the CRD %s to be established: %w", crd.Name, err)
	}
	return nil
}
