package testenv_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	kubevirtv1 "kubevirt.io/api/core/v1"
	instancetypev1beta1 "kubevirt.io/api/instancetype/v1beta1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/testenv"
)

func TestEnv(t *testing.T) {
	start := time.Now()
	env := testenv.ForTest(t)
	t.Logf("envtest started in %v", time.Since(start).Round(time.Millisecond))
	ctx := t.Context()

	t.Run("CRDs are installed", func(t *testing.T) {
		var vms kubevirtv1.VirtualMachineList
		require.NoError(t, env.Client.List(ctx, &vms, client.InNamespace("default")))
		var vmis kubevirtv1.VirtualMachineInstanceList
		require.NoError(t, env.Client.List(ctx, &vmis, client.InNamespace("default")))
		var dvs cdiv1.DataVolumeList
		require.NoError(t, env.Client.List(ctx, &dvs, client.InNamespace("default")))
	})

	t.Run("admin kubeconfig", func(t *testing.T) {
		path := t.TempDir() + "/admin.kubeconfig"
		require.NoError(t, env.WriteKubeconfig(path))
		c := clientFromKubeconfig(t, env, path)
		require.NoError(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "admin-"}}))
	})

	t.Run("a new user has no rights until RBAC grants them", func(t *testing.T) {
		path, err := env.KubeconfigFor("alice", []string{"cloudstack"})
		require.NoError(t, err)
		c := clientFromKubeconfig(t, env, path)
		err = c.List(ctx, &kubevirtv1.VirtualMachineList{}, client.InNamespace("default"))
		require.True(t, apierrors.IsForbidden(err), "want Forbidden, got %v", err)
		require.Contains(t, err.Error(), `User "alice"`)
	})

	t.Run("ConfigFor", func(t *testing.T) {
		cfg, err := env.ConfigFor("system:serviceaccount:ns:sa", nil)
		require.NoError(t, err)
		c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
		require.NoError(t, err)
		err = c.Get(ctx, client.ObjectKey{Name: "default"}, &corev1.Namespace{})
		require.True(t, apierrors.IsForbidden(err), "want Forbidden, got %v", err)
	})

	t.Run("Stop is idempotent", func(t *testing.T) {
		t.Cleanup(func() { require.NoError(t, env.Stop()) })
	})
}

func TestScheme(t *testing.T) {
	s, err := testenv.Scheme()
	require.NoError(t, err)
	for _, obj := range []client.Object{
		&corev1.Pod{}, &kubevirtv1.VirtualMachine{}, &kubevirtv1.VirtualMachineInstance{}, &cdiv1.DataVolume{},
		&instancetypev1beta1.VirtualMachineClusterInstancetype{},
	} {
		_, _, err := s.ObjectKinds(obj)
		require.NoError(t, err, "%T", obj)
	}
}

func clientFromKubeconfig(t *testing.T, env *testenv.Env, path string) client.Client {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	require.NoError(t, err)
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	require.NoError(t, err)
	return c
}
