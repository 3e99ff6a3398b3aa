package translate

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// plantedSecret is the sample payloads' vncPassword: whatever the input, it must never reach an error message.
const plantedSecret = "uHQHQ4niy8f4ogwCM1k-rw"

// FuzzTranslate feeds arbitrary payloads through parsing, detail resolution and the VM builders. Nothing may
// panic, no error may echo the planted secret, and every VM built must be one KubeVirt's webhook would take
// on the points the builders enforce. `go test` runs the seeds; `go test -fuzz FuzzTranslate ./translate`
// explores.
func FuzzTranslate(f *testing.F) {
	files, err := filepath.Glob("testdata/*.json")
	require.NoError(f, err)
	for _, file := range files {
		data, err := os.ReadFile(file)
		require.NoError(f, err)
		f.Add(data)
		f.Add(withImage(data))
	}
	for _, seed := range []string{``, `{}`, `[]`, `null`, `{"cloudstack.vm.details":null}`, `{"virtualmachinename":"i-2-1-VM"}`,
		`{"cloudstack.vm.details":{"cpus":-1,"minRam":-5,"name":"i-2-1-VM","vncPassword":"` + plantedSecret + `"}}`,
		`{"cloudstack.vm.details":{"cpus":"2"}}`, `{"externaldetails":{"host":{"namespace":"Kube_System"}}}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePayload(data)
		if err != nil {
			requireNoSecret(t, err)
			return
		}
		d := p.Details()
		if _, err := d.Connection(); err != nil {
			requireNoSecret(t, err)
		}
		spec, err := d.Spec()
		if err != nil {
			requireNoSecret(t, err)
			return
		}
		vm, err := VirtualMachine(p, "tenant-a", spec)
		if err != nil {
			requireNoSecret(t, err)
			return
		}
		require.Empty(t, dns1123Label(vm.Name), "VM name %q", vm.Name)
		require.NotNil(t, vm.Spec.RunStrategy, "runStrategy always set")
		require.Nil(t, vm.Spec.Running, "running never set")
		require.Equal(t, ManagedBy, vm.Labels[LabelManagedBy])
		require.Equal(t, p.InstanceName(), vm.Labels[LabelInstanceName])
		_ = PowerStateOf(vm, nil)
	})
}

// withImage adds the image detail a template would carry, so the seeds reach the builders.
func withImage(data []byte) []byte {
	return bytes.Replace(data, []byte(`"externaldetails":{`), []byte(`"externaldetails":{"virtualmachine":{"image":"quay.io/containerdisks/fedora:43"},`), 1)
}

func requireNoSecret(t *testing.T, err error) {
	t.Helper()
	require.False(t, strings.Contains(err.Error(), plantedSecret), "an error echoes the secret: %v", err)
}
