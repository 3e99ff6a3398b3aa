package testenv_test

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/testenv"
)

// TestUpstreamBinaries builds KubeVirt's binaries (or finds them cached): hack/test.sh runs it before the other
// packages, so that a first run's build of KubeVirt is not counted against any other test's deadline.
func TestUpstreamBinaries(t *testing.T) {
	for _, name := range []string{"kubevirt-webhooks", "kubevirt-controller", "kubevirt-domain"} {
		t.Run(name, func(t *testing.T) {
			bin, err := testenv.UpstreamBinary(t.Context(), name)
			require.NoError(t, err)
			fi, err := os.Stat(bin)
			require.NoError(t, err)
			assert.True(t, fi.Mode().IsRegular() && fi.Mode()&0o111 != 0, "%s is an executable file", bin)
			again, err := testenv.UpstreamBinary(t.Context(), name)
			require.NoError(t, err)
			assert.Equal(t, bin, again, "the second call finds the first's binary")
		})
	}
}
