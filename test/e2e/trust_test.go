package e2e

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	instancetypev1beta1 "kubevirt.io/api/instancetype/v1beta1"
	snapshotv1 "kubevirt.io/api/snapshot/v1beta1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/cloudstacksim"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// The trust-boundary tests (issue 12) drive the extension binary as CloudStack does, with every detail an end
// user can set at the virtualmachine level (Instance, template, offering), and check what reaches the cluster.

// sourcePVC creates the PVC ns/name (and ns) with labels, as an operator or another Instance's DataVolume would.
func sourcePVC(t *testing.T, ns, name string, labels map[string]string) {
	t.Helper()
	if err := s.client.Create(t.Context(), namespaceObject(ns)); err != nil && !isAlreadyExists(err) {
		require.NoError(t, err)
	}
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")}},
		},
	}
	if err := s.client.Create(t.Context(), pvc); err != nil && !isAlreadyExists(err) {
		require.NoError(t, err)
	}
}

// allowClones binds manifests/extension-rbac's clone-source ClusterRole in sourceNS to the ServiceAccount KubeVirt
// authorizes a VM's clones as (default, of the VM's namespace; the extension sets none), as the README says.
func allowClones(t *testing.T, vmNS, sourceNS string) {
	t.Helper()
	bindCloneSource(t, sourceNS, rbacv1.Subject{Kind: "ServiceAccount", Name: "default", Namespace: vmNS})
}

// bindCloneSource binds the clone-source ClusterRole in ns to subject.
func bindCloneSource(t *testing.T, ns string, subject rbacv1.Subject) {
	t.Helper()
	applyManifests(t, "extension-rbac/clone-source.yaml")
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "clone-source-" + subject.Namespace + "-" + subject.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cloudstack-kubevirt-extension-clone-source"},
		Subjects:   []rbacv1.Subject{subject},
	}
	if err := s.client.Create(t.Context(), rb); err != nil && !isAlreadyExists(err) {
		require.NoError(t, err)
	}
}

// requireRefused asserts one JSON error naming want, a non-zero exit, no secret echoed and nothing created.
func requireRefused(t *testing.T, ns string, res cloudstacksim.Result, in cloudstacksim.Instance, want string) {
	t.Helper()
	requireFailure(t, res, want)
	assert.NotContains(t, res.Output, "uHQHQ4niy8f4ogwCM1k-rw", "the payload's VNC password is never echoed")
	assert.Zero(t, managedObjects(t, ns, in.UUID), "nothing created")
}

// Finding 1: a plain root_disk_pvc name set as an Instance detail cloned another Instance's root disk from the
// namespace the host's accounts share. A PVC is cloned only when the operator shared it.
func TestTrustRootDiskPVC(t *testing.T) {
	const ns = "e2e-bad"
	namespace(t, ns)
	victim := instance(nil)
	victimDisk := translate.RootDiskName(vmName(victim))
	sourcePVC(t, ns, victimDisk, map[string]string{
		translate.LabelManagedBy: translate.ManagedBy, translate.LabelInstanceUUID: victim.UUID, translate.LabelInstanceName: victim.Name,
		translate.LabelSharedSource: "true", // even marked shared, an Instance's disk is never a source
	})
	sourcePVC(t, ns, "team-notes", nil)
	sourcePVC(t, ns, "dv-made-disk", map[string]string{translate.LabelInstanceUUID: victim.UUID})
	tests := []struct {
		name, action, pvc, want string
	}{
		{"another Instance's root disk", "create", victimDisk, "PersistentVolumeClaim e2e-bad/" + victimDisk + " is a disk of Instance " + victim.Name},
		{"another Instance's root disk, at prepare", "prepare", victimDisk, "is a disk of Instance"},
		{"a disk with only an Instance label", "create", "dv-made-disk", "is a disk of Instance"},
		{"a PVC the operator did not share", "create", "team-notes", "PersistentVolumeClaim e2e-bad/team-notes is not a shared clone source: the operator shares one by labelling it cloudstack.apache.org/shared-source=true"},
		{"a PVC that does not exist", "create", "nowhere", "PersistentVolumeClaim e2e-bad/nowhere does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := instance(map[string]string{"root_disk_pvc": tt.pvc})
			requireRefused(t, ns, call(t, host(ns), tt.action, in), in, tt.want)
		})
	}
	t.Run("a start that changes the clone source is checked as a create is", func(t *testing.T) {
		sourcePVC(t, ns, "shared-base", map[string]string{translate.LabelSharedSource: "true"})
		in := instance(map[string]string{"root_disk_pvc": "shared-base"})
		requireSuccess(t, call(t, host(ns), "create", in))
		requireSuccess(t, call(t, host(ns), "stop", in))
		in.Details["root_disk_pvc"] = victimDisk // the user edits the Instance's details while it is stopped
		requireFailure(t, call(t, host(ns), "start", in), "is a disk of Instance "+victim.Name)
		vm, err := getVM(t.Context(), ns, vmName(in))
		require.NoError(t, err)
		assert.Equal(t, "shared-base", vm.Spec.DataVolumeTemplates[0].Spec.Source.PVC.Name, "the VM still clones the shared PVC")
		requireSuccess(t, call(t, host(ns), "delete", in))
	})
}

// Finding 1 and 8: a PVC the operator shared is cloned, by the extension's own identity (manifests/extension-rbac
// bound as the README says), and KubeVirt's VM controller, which authorizes the clone as the VM's ServiceAccount,
// makes the DataVolume.
func TestTrustSharedSourceClone(t *testing.T) {
	needsEnvtest(t)
	applyAllRBAC(t)
	namespace(t, managedNamespace)
	sourcePVC(t, "e2e-golden", "fedora-43", map[string]string{translate.LabelSharedSource: "true"})
	sourcePVC(t, managedNamespace, "golden-alpine", map[string]string{translate.LabelSharedSource: "true"})
	allowClones(t, managedNamespace, "e2e-golden")
	allowClones(t, managedNamespace, managedNamespace)
	// Shared sources in a namespace of their own: the extension reads them there too.
	bindCloneSource(t, "e2e-golden", rbacv1.Subject{Kind: "ServiceAccount", Name: "cloudstack-extension", Namespace: systemNamespace})
	kubeconfig, err := s.env.KubeconfigFor(extensionIdentity, serviceAccountGroups)
	require.NoError(t, err)
	h := host(managedNamespace)
	h.Host["kubeconfig"] = kubeconfig

	t.Run("the extension's identity may ask CDI for a clone in its namespace", func(t *testing.T) {
		for _, attrs := range []authorizationv1.ResourceAttributes{
			{Namespace: managedNamespace, Verb: "create", Group: "cdi.kubevirt.io", Resource: "datavolumes", Subresource: "source"},
			{Namespace: managedNamespace, Verb: "get", Resource: "persistentvolumeclaims"},
			{Verb: "get", Group: "instancetype.kubevirt.io", Resource: "virtualmachineclusterinstancetypes"},
		} {
			review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User: extensionIdentity, Groups: serviceAccountGroups, ResourceAttributes: &attrs,
			}}
			require.NoError(t, s.client.Create(t.Context(), review))
			assert.True(t, review.Status.Allowed, "%s %s/%s in %q", attrs.Verb, attrs.Resource, attrs.Subresource, attrs.Namespace)
		}
	})
	t.Run("check finds every permission the extension uses, the clone's included", func(t *testing.T) {
		_, lines := runCheck(t, h, h.Payload("check", instance(map[string]string{"image": "quay.io/containerdisks/fedora:43"})))
		assert.Equal(t, kube.Pass, lines["permissions"].Result, lines["permissions"].Detail)
	})
	for _, tt := range []struct {
		name    string
		details map[string]string
		host    map[string]string
	}{
		{"in the host's namespace, as an Instance detail", map[string]string{"root_disk_pvc": "golden-alpine"}, nil},
		{"in another namespace, as a host detail", nil, map[string]string{"root_disk_pvc": "e2e-golden/fedora-43"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := host(managedNamespace)
			h.Host["kubeconfig"] = kubeconfig
			for k, v := range tt.host {
				h.Host[k] = v
			}
			in := instance(tt.details)
			requireSuccess(t, call(t, h, "prepare", in))
			requireSuccess(t, call(t, h, "create", in))
			dv := &cdiv1.DataVolume{}
			require.NoError(t, s.client.Get(t.Context(), client.ObjectKey{Namespace: managedNamespace, Name: translate.RootDiskName(vmName(in))}, dv), "KubeVirt made the DataVolume")
			require.NotNil(t, dv.Spec.Source.PVC)
			requireSuccess(t, call(t, h, "delete", in))
		})
	}
}

// clusterInstancetype creates a VirtualMachineClusterInstancetype of cpus and memory, once.
func clusterInstancetype(t *testing.T, name string, cpus uint32, memory string) {
	t.Helper()
	it := &instancetypev1beta1.VirtualMachineClusterInstancetype{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: instancetypev1beta1.VirtualMachineInstancetypeSpec{
			CPU:    instancetypev1beta1.CPUInstancetype{Guest: cpus},
			Memory: instancetypev1beta1.MemoryInstancetype{Guest: resource.MustParse(memory)},
		},
	}
	if err := s.client.Create(t.Context(), it); err != nil && !isAlreadyExists(err) {
		require.NoError(t, err)
	}
}

// Finding 2: CloudStack bills the offering (2 vCPUs, 1 GiB here): an instancetype must give exactly that,
// wherever it is set, and sizes may not exceed what CloudStack accounts.
func TestTrustAccountedResources(t *testing.T) {
	const ns = "e2e-bad"
	namespace(t, ns)
	clusterInstancetype(t, "e2e-huge", 64, "256Gi")
	clusterInstancetype(t, "e2e-offering", 2, "1Gi")
	const url = "https://images.example.com/fedora.qcow2"
	tests := []struct {
		name    string
		details map[string]string
		host    map[string]string
		root    int64 // the root volume CloudStack sends, bytes
		want    string
	}{
		{name: "a larger instancetype as an Instance detail", details: map[string]string{"image": "quay.io/containerdisks/fedora:43", "instancetype": "e2e-huge"},
			want: "detail instancetype (set on the instance, template or offering): VirtualMachineClusterInstancetype e2e-huge gives 64 vCPUs and 256Gi of memory, but the offering CloudStack accounts gives 2 vCPUs and 1Gi of memory"},
		{name: "a larger instancetype as a host detail", details: map[string]string{"image": "quay.io/containerdisks/fedora:43"}, host: map[string]string{"instancetype": "e2e-huge"},
			want: "detail instancetype (set on the host): VirtualMachineClusterInstancetype e2e-huge gives 64 vCPUs"},
		{name: "a 1000Ti root disk", details: map[string]string{"root_disk_url": url, "root_disk_size": "1000Ti"},
			want: "detail root_disk_size (set on the instance, template or offering): 1000Ti is more than the operator's max_disk_size (1Ti)"},
		{name: "the user's max_disk_size is ignored", details: map[string]string{"root_disk_url": url, "root_disk_size": "1000Ti", "max_disk_size": "2000Ti"},
			want: "max_disk_size (1Ti)"},
		{name: "more than the root volume CloudStack accounts", details: map[string]string{"root_disk_url": url, "root_disk_size": "100Gi"}, root: 20 << 30,
			want: "100Gi is more than the root volume's 20Gi that CloudStack accounts"},
		{name: "a 5Ti ISO", details: map[string]string{"iso_url": "https://images.example.com/a.iso", "root_disk_size": "8Gi", "iso_size": "5Ti"},
			want: "detail iso_size (set on the instance, template or offering): 5Ti is more than the operator's max_disk_size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := host(ns)
			for k, v := range tt.host {
				h.Host[k] = v
			}
			in := instance(tt.details)
			in.RootDiskBytes = tt.root
			requireRefused(t, ns, call(t, h, "create", in), in, tt.want)
		})
	}

	t.Run("check reports the Instance's instancetype", func(t *testing.T) {
		h := host(ns)
		in := instance(map[string]string{"image": "quay.io/containerdisks/fedora:43", "instancetype": "e2e-huge"})
		_, lines := runCheck(t, h, h.PayloadAs(in, "Running", true))
		assert.Equal(t, kube.Fail, lines["Instance"].Result)
		assert.Contains(t, lines["Instance"].Detail, "detail instancetype (set on the instance, template or offering): VirtualMachineClusterInstancetype e2e-huge gives 64 vCPUs")
	})

	t.Run("an instancetype of the offering's size stands in for it", func(t *testing.T) {
		in := instance(map[string]string{"image": "quay.io/containerdisks/fedora:43", "instancetype": "e2e-offering"})
		requireSuccess(t, call(t, host(ns), "create", in))
		vm, err := getVM(t.Context(), ns, vmName(in))
		require.NoError(t, err)
		assert.Equal(t, "e2e-offering", vm.Spec.Instancetype.Name)
		requireSuccess(t, call(t, host(ns), "delete", in))
	})

	t.Run("the root volume's size and the operator's storage class", func(t *testing.T) {
		in := instance(map[string]string{"root_disk_url": url, "storage_class": "premium"})
		in.RootDiskBytes = 20 << 30
		requireSuccess(t, call(t, host(ns), "create", in))
		dv := &cdiv1.DataVolume{}
		require.NoError(t, s.client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: translate.RootDiskName(vmName(in))}, dv))
		got := dv.Spec.Storage.Resources.Requests[corev1.ResourceStorage]
		assert.True(t, resource.MustParse("20Gi").Equal(got), "the size CloudStack accounts, not %s", got.String())
		assert.Nil(t, dv.Spec.Storage.StorageClassName, "storage_class is the operator's: the Instance's is ignored")
		requireSuccess(t, call(t, host(ns), "delete", in))
	})
}

// Finding 3: CDI fetches root_disk_url and iso_url from inside the cluster, and the node pulls image: internal
// addresses are refused unless the operator allows them, and the allow-lists are the operator's alone.
func TestTrustDiskSources(t *testing.T) {
	const ns = "e2e-bad"
	namespace(t, ns)
	tests := []struct {
		name    string
		details map[string]string
		ext     map[string]string
		want    string
	}{
		{name: "the cloud's metadata service", details: map[string]string{"root_disk_url": "http://169.254.169.254/latest/meta-data/iam/", "root_disk_size": "1Gi"},
			want: `detail root_disk_url (set on the instance, template or offering): "http://169.254.169.254/latest/meta-data/iam/" is refused: host 169.254.169.254 is a link-local address`},
		{name: "a cluster Service", details: map[string]string{"iso_url": "http://minio.storage.svc.cluster.local:9000/a.iso", "root_disk_size": "8Gi"},
			want: "is a cluster Service"},
		{name: "a Service of the importer's namespace", details: map[string]string{"root_disk_url": "http://vault:8200/v1/secret", "root_disk_size": "1Gi"},
			want: "is a single-label name"},
		{name: "a cluster registry", details: map[string]string{"root_disk_url": "docker://registry.kube-system.svc:5000/internal:1", "root_disk_size": "1Gi"},
			want: "registry registry.kube-system.svc:5000 is a cluster Service"},
		{name: "an image from a private address", details: map[string]string{"image": "10.96.0.20:5000/internal/app:1"},
			want: "registry 10.96.0.20:5000 is a private address"},
		{name: "credentials in the URL", details: map[string]string{"root_disk_url": "https://admin:hunter2@images.example.com/f.qcow2", "root_disk_size": "1Gi"},
			want: "carries credentials"},
		{name: "a registry the operator did not list", details: map[string]string{"image": "docker.io/library/fedora:43"}, ext: map[string]string{"allowed_registries": "quay.io/containerdisks"},
			want: "registry docker.io is not in the operator's allowed_registries (quay.io/containerdisks)"},
		{name: "the user cannot widen the registries", details: map[string]string{"image": "evil.example.com/x:1", "allowed_registries": "evil.example.com"}, ext: map[string]string{"allowed_registries": "quay.io"},
			want: "allowed_registries (quay.io)"},
		{name: "a URL outside the operator's prefixes", details: map[string]string{"root_disk_url": "https://images.example.com.attacker.net/f.qcow2", "root_disk_size": "1Gi"}, ext: map[string]string{"allowed_url_prefixes": "https://images.example.com/"},
			want: "does not start with any of the operator's allowed_url_prefixes (https://images.example.com/)"},
		{name: "the user cannot widen the prefixes", details: map[string]string{"root_disk_url": "http://169.254.169.254/x", "root_disk_size": "1Gi", "allowed_url_prefixes": "http://169.254.169.254/"},
			want: "is a link-local address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := host(ns)
			for k, v := range tt.ext {
				h.Extension[k] = v
			}
			in := instance(tt.details)
			res := call(t, h, "create", in)
			requireRefused(t, ns, res, in, tt.want)
			assert.NotContains(t, res.Output, "hunter2")
		})
	}
	t.Run("what the operator allows is taken", func(t *testing.T) {
		h := host(ns)
		h.Extension["allowed_registries"] = "quay.io/containerdisks"
		h.Extension["allowed_url_prefixes"] = "http://minio.storage.svc:9000/images/"
		for _, details := range []map[string]string{
			{"image": "quay.io/containerdisks/fedora:43"},
			{"root_disk_url": "http://minio.storage.svc:9000/images/fedora.qcow2", "root_disk_size": "10Gi"},
		} {
			in := instance(details)
			requireSuccess(t, call(t, h, "create", in))
			requireSuccess(t, call(t, h, "delete", in))
		}
	})
}

// Finding 7: a VM name is reused once an Instance is expunged (or by another CloudStack sharing the namespace);
// an Instance's snapshots are those labelled with its UUID.
func TestTrustSnapshotsByUUID(t *testing.T) {
	h := customHost(t)
	in := instance(map[string]string{"image": "quay.io/containerdisks/fedora:43"})
	name := vmName(in)
	requireSuccess(t, call(t, h, "create", in))
	former := &snapshotv1.VirtualMachineSnapshot{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: customNamespace, Name: translate.SnapshotObjectName(name, "former"),
			Labels:      map[string]string{translate.LabelManagedBy: translate.ManagedBy, translate.LabelInstanceUUID: "0d1e7e7e-0000-4000-8000-000000000001"},
			Annotations: map[string]string{translate.AnnotationSnapshotName: "former"},
		},
		Spec: snapshotv1.VirtualMachineSnapshotSpec{Source: corev1.TypedLocalObjectReference{
			APIGroup: ptr.To(kubevirtv1.SchemeGroupVersion.Group), Kind: "VirtualMachine", Name: name}},
	}
	require.NoError(t, s.client.Create(t.Context(), former))

	rows := tableOf(t, runCustom(t, h, "ListSnapshots", in, nil))
	for _, r := range rows {
		assert.NotEqual(t, "former", r["name"], "another Instance's snapshot of a VM of the same name is not listed")
	}
	requireFailure(t, runCustom(t, h, "RestoreSnapshot", in, map[string]any{"snap_name": "former"}), `has no snapshot "former"`)
	res := runCustom(t, h, "DeleteSnapshot", in, map[string]any{"snap_name": "former"})
	requireSuccess(t, res)
	assert.Contains(t, res.Output, "nothing to do")
	require.NoError(t, s.client.Get(t.Context(), client.ObjectKeyFromObject(former), &snapshotv1.VirtualMachineSnapshot{}), "the other Instance's snapshot is left alone")
	requireFailure(t, runCustom(t, h, "CreateSnapshot", in, map[string]any{"snap_name": "former"}), "that CloudStack did not take for this Instance")
	requireSuccess(t, call(t, h, "delete", in))
	require.NoError(t, s.client.Get(t.Context(), client.ObjectKeyFromObject(former), &snapshotv1.VirtualMachineSnapshot{}), "delete removes only the Instance's own snapshots")
	require.NoError(t, s.client.Delete(t.Context(), former))
}
