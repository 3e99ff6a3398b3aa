package translate

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Finding 3: sources CDI or the node would fetch from inside the cluster are refused unless the operator allows
// them; the allow-lists are the operator's alone.
func TestDiskSources(t *testing.T) {
	const size = "10Gi"
	tests := []struct {
		name    string
		details map[string]string
		wantErr string
	}{
		{name: "public image", details: map[string]string{"image": "quay.io/containerdisks/fedora:43"}},
		{name: "Docker Hub image", details: map[string]string{"image": "fedora"}},
		{name: "public URL", details: map[string]string{"root_disk_url": "https://images.example.com/f.qcow2"}},
		{name: "link-local metadata", details: map[string]string{"root_disk_url": "http://169.254.169.254/latest/meta-data/"}, wantErr: "is a link-local address"},
		{name: "IPv6 link-local", details: map[string]string{"iso_url": "http://[fe80::1]/a.iso"}, wantErr: "is a link-local address"},
		{name: "loopback", details: map[string]string{"root_disk_url": "http://127.0.0.1:8080/x"}, wantErr: "is a loopback address"},
		{name: "private address", details: map[string]string{"root_disk_url": "http://10.96.0.10/x"}, wantErr: "is a private address"},
		{name: "cluster Service", details: map[string]string{"root_disk_url": "http://minio.storage.svc.cluster.local:9000/x"}, wantErr: "is a cluster Service"},
		{name: "short Service name", details: map[string]string{"iso_url": "http://minio/a.iso"}, wantErr: "single-label name"},
		{name: "svc suffix", details: map[string]string{"root_disk_url": "https://api.default.svc/x"}, wantErr: "is a cluster Service"},
		{name: "localhost", details: map[string]string{"root_disk_url": "http://localhost/x"}, wantErr: "is the node itself"},
		{name: "registry import from a cluster registry", details: map[string]string{"root_disk_url": "docker://registry.kube-system.svc:5000/secret:1"}, wantErr: "is a cluster Service"},
		{name: "image from a cluster registry", details: map[string]string{"image": "10.0.0.5:5000/internal/app:1"}, wantErr: "registry 10.0.0.5:5000 is a private address"},
		{name: "image from localhost", details: map[string]string{"image": "localhost/x:1"}, wantErr: "is the node itself"},
		{name: "credentials never echoed", details: map[string]string{"root_disk_url": "https://user:hunter2@images.example.com/f.qcow2"}, wantErr: "carries credentials"},
		{name: "allowed prefix", details: map[string]string{"root_disk_url": "https://images.example.com/cloud/f.qcow2", "host:allowed_url_prefixes": "https://mirror.example.org/, https://images.example.com/cloud"}},
		{name: "operator may allow an internal host", details: map[string]string{"root_disk_url": "http://minio.storage.svc:9000/images/f.qcow2", "host:allowed_url_prefixes": "http://minio.storage.svc:9000/images/"}},
		{name: "outside the prefixes", details: map[string]string{"root_disk_url": "https://images.example.com/other/f.qcow2", "host:allowed_url_prefixes": "https://images.example.com/cloud"}, wantErr: "does not start with any of the operator's allowed_url_prefixes"},
		{name: "prefix is not a host prefix", details: map[string]string{"root_disk_url": "https://images.example.com.evil.net/cloud/f.qcow2", "host:allowed_url_prefixes": "https://images.example.com"}, wantErr: "allowed_url_prefixes"},
		{name: "prefix ends at a slash", details: map[string]string{"root_disk_url": "https://images.example.com/cloud-evil/f.qcow2", "host:allowed_url_prefixes": "https://images.example.com/cloud"}, wantErr: "allowed_url_prefixes"},
		{name: "user cannot widen the prefixes", details: map[string]string{"root_disk_url": "http://169.254.169.254/x", "allowed_url_prefixes": "http://169.254.169.254/"}, wantErr: "link-local"},
		{name: "octal IPv4", details: map[string]string{"root_disk_url": "http://0251.0376.0251.0376/x"}, wantErr: "non-canonical form"},
		{name: "decimal IPv4", details: map[string]string{"root_disk_url": "http://2852039166/x"}, wantErr: "non-canonical form"},
		{name: "IPv4-mapped IPv6", details: map[string]string{"root_disk_url": "http://[::ffff:169.254.169.254]/x"}, wantErr: "link-local"},
		{name: "dot segments leave the prefix", details: map[string]string{"root_disk_url": "https://images.example.com/cloud/../private/f.qcow2", "host:allowed_url_prefixes": "https://images.example.com/cloud/"}, wantErr: ". or .. segments"},
		{name: "encoded dot segments too", details: map[string]string{"root_disk_url": "https://images.example.com/cloud/%2e%2e/private/f.qcow2", "host:allowed_url_prefixes": "https://images.example.com/cloud/"}, wantErr: ". or .. segments"},
		{name: "a name ending in a letter is a name", details: map[string]string{"root_disk_url": "https://cdn.example.cafe/x"}},
		{name: "allowed registry", details: map[string]string{"image": "quay.io/containerdisks/fedora:43", "host:allowed_registries": "quay.io/containerdisks"}},
		{name: "allowed registry for registry imports", details: map[string]string{"root_disk_url": "docker://quay.io/containerdisks/fedora:43", "host:allowed_registries": "quay.io"}},
		{name: "registry not allowed", details: map[string]string{"image": "docker.io/library/fedora:43", "host:allowed_registries": "quay.io"}, wantErr: "registry docker.io is not in the operator's allowed_registries (quay.io)"},
		{name: "Docker Hub by default name", details: map[string]string{"image": "fedora:43", "host:allowed_registries": "quay.io"}, wantErr: "registry docker.io"},
		{name: "repository prefix ends at a slash", details: map[string]string{"image": "quay.io/containerdisks-evil/x:1", "host:allowed_registries": "quay.io/containerdisks"}, wantErr: "allowed_registries"},
		{name: "user cannot widen the registries", details: map[string]string{"image": "evil.example/x:1", "host:allowed_registries": "quay.io", "allowed_registries": "evil.example"}, wantErr: "allowed_registries (quay.io)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			details := map[string]string{"root_disk_size": size}
			for k, v := range tt.details {
				details[k] = v
			}
			_, err := buildVM(t, samplePayload(t, details))
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
			assert.NotContains(t, err.Error(), "hunter2")
			var de *DetailError
			require.ErrorAs(t, err, &de)
		})
	}
}

// Finding 2: the root disk's size is what CloudStack accounts when it sends the root volume.
func TestRootVolumeSizeFromPayload(t *testing.T) {
	const gib = int64(1) << 30
	tests := []struct {
		name     string
		details  map[string]string
		want     string
		wantErr  string
		noVolume bool
	}{
		{name: "the root volume's size", details: map[string]string{"root_disk_url": "https://images.example.com/f.qcow2"}, want: "20Gi"},
		{name: "a smaller detail gives way to the accounted size", details: map[string]string{"root_disk_url": "https://images.example.com/f.qcow2", "root_disk_size": "10Gi"}, want: "20Gi"},
		{name: "a larger detail is refused", details: map[string]string{"root_disk_url": "https://images.example.com/f.qcow2", "root_disk_size": "1000Ti"}, wantErr: "1000Ti is more than the root volume's 20Gi that CloudStack accounts"},
		{name: "a clone gets the accounted size", details: map[string]string{"root_disk_pvc": "golden-fedora"}, want: "20Gi"},
		{name: "ISO install", details: map[string]string{"iso_url": "https://images.example.com/a.iso"}, want: "20Gi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := samplePayload(t, tt.details)
			p.VM.Disks = []DiskTO{{Type: "ISO"}, {Type: "ROOT", Data: DiskDataTO{Size: 20 * gib, VolumeType: "ROOT"}}}
			vm, err := buildVM(t, p)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			got := vm.Spec.DataVolumeTemplates[0].Spec.Storage.Resources.Requests[corev1.ResourceStorage]
			assert.True(t, resource.MustParse(tt.want).Equal(got), "size %s", got.String())
		})
	}
}

// CloudStack's GsonHelper wraps a DiskTO's data in an object keyed by its Java class; plain Gson does not.
func TestDiskTOForms(t *testing.T) {
	for name, data := range map[string]string{
		"GsonHelper": `{"cloudstack.vm.details":{"disks":[{"data":{"org.apache.cloudstack.storage.to.VolumeObjectTO":{"volumeType":"ROOT","size":21474836480}},"diskSeq":0,"type":"ROOT"}]}}`,
		"plain":      `{"cloudstack.vm.details":{"disks":[{"data":{"volumeType":"ROOT","size":21474836480},"type":"ROOT"}]}}`,
	} {
		t.Run(name, func(t *testing.T) {
			p, err := ParsePayload([]byte(data))
			require.NoError(t, err)
			size, ok := p.RootVolumeSize()
			assert.True(t, ok)
			assert.Equal(t, int64(20)<<30, size)
		})
	}
	p, err := ParsePayload([]byte(`{"cloudstack.vm.details":{"disks":[]}}`))
	require.NoError(t, err)
	_, ok := p.RootVolumeSize()
	assert.False(t, ok, "CloudStack sends no volumes for External Instances")
}

// Finding 2: an instancetype must give exactly what CloudStack accounts, wherever it is set.
func TestCheckInstancetype(t *testing.T) {
	tests := []struct {
		name    string
		gives   Resources
		wantErr string
	}{
		{name: "the offering's size", gives: Resources{CPUs: 2, Memory: resource.MustParse("1Gi")}},
		{name: "larger", gives: Resources{CPUs: 64, Memory: resource.MustParse("256Gi")}, wantErr: "detail instancetype (set on the instance, template or offering): VirtualMachineClusterInstancetype u1.huge gives 64 vCPUs and 256Gi of memory, but the offering CloudStack accounts gives 2 vCPUs and 1Gi of memory"},
		{name: "more memory only", gives: Resources{CPUs: 2, Memory: resource.MustParse("2Gi")}, wantErr: "detail instancetype"},
		{name: "fewer CPUs", gives: Resources{CPUs: 1, Memory: resource.MustParse("1Gi")}, wantErr: "detail instancetype"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := samplePayload(t, map[string]string{"image": "a/b:1", "instancetype": "u1.huge"})
			p.VM.CPUs, p.VM.MinRAM, p.VM.MaxRAM = 2, 512<<20, 1<<30
			spec, err := p.Details().Spec()
			require.NoError(t, err)
			spec.InstancetypeGives = &tt.gives
			vm, err := VirtualMachine(p, "tenant-a", spec)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "u1.huge", vm.Spec.Instancetype.Name)
			assert.Nil(t, vm.Spec.Template.Spec.Domain.CPU)
		})
	}
}
