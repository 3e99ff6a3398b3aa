package powercache_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube/powercache"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/cloudstacksim"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// The launcher reads a status payload with powercache.ParseStatusRequest, the extension with
// translate.ParsePayload: both must find the same Instance and the same host, or a listing written by one would
// answer the other for the wrong Instance, or never.
func TestStatusRequestAgreesWithPayload(t *testing.T) {
	host := cloudstacksim.Host{
		Host:        map[string]string{"kubeconfig": "/etc/cloudstack/kubevirt/kubeconfig", "namespace": "tenant-a"},
		ResourceMap: map[string]string{"cluster.level.key": "value"},
		Extension:   map[string]string{"log_file": "/var/log/x.log", "status_cache": "10s"},
	}
	in := cloudstacksim.Instance{ID: 45, Name: "i-2-45-VM", UUID: "126f4562-1f0f-4313-875e-000000000045", CPUs: 1, MemoryMB: 512,
		Details: map[string]string{"image": "quay.io/containerdisks/fedora:43", "namespace": "a-user's-own"}}
	payloads := map[string][]byte{}
	for _, action := range []string{"status", "stop", "create"} {
		data, err := cloudstacksim.GsonJSON(host.Payload(action, in))
		require.NoError(t, err)
		payloads[action] = data
	}
	for _, f := range []string{"status_payload.json", "create_payload.json", "custom_action_payload.json"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "translate", "testdata", f))
		require.NoError(t, err)
		payloads[f] = data
	}
	for name, data := range payloads {
		t.Run(name, func(t *testing.T) {
			req, err := powercache.ParseStatusRequest(data)
			require.NoError(t, err)
			p, err := translate.ParsePayload(data)
			require.NoError(t, err)
			assert.NotEmpty(t, req.Instance)
			assert.Equal(t, p.InstanceName(), req.Instance)
			assert.Equal(t, p.InstanceUUID(), req.UUID)
			d := p.ExternalDetails
			assert.Equal(t, [3]map[string]string{d.Host, d.ResourceMap, d.Extension}, req.Details)
		})
	}
	_, err := powercache.ParseStatusRequest([]byte("{not json"))
	assert.Error(t, err)
}

func TestAnswerStatus(t *testing.T) {
	root := filepath.Join(t.TempDir(), "power")
	host := powercache.StatusRequest{Details: [3]map[string]string{{"namespace": "tenant-a"}, nil, {"log_file": "/var/log/x.log"}}}
	dir, err := powercache.Open(root, host.HostKey())
	require.NoError(t, err)
	epoch, err := dir.Epoch()
	require.NoError(t, err)
	now := time.Now()
	require.NoError(t, dir.Store(powercache.Listing{Epoch: epoch, Taken: now, Until: now.Add(time.Minute), LogFile: "/var/log/x.log",
		Entries: []powercache.Entry{{Instance: "i-2-1-VM", UUID: "u-1", State: "poweron"}, {Instance: "i-2-2-VM", UUID: "u-2"}}}))

	tests := []struct {
		name           string
		instance, uuid string
		details        [3]map[string]string
		ok, trusted    bool
	}{
		{"the Instance", "i-2-1-VM", "u-1", host.Details, true, true},
		{"another Instance's VM", "i-2-1-VM", "u-other", host.Details, false, true},
		{"a state the listing could not tell", "i-2-2-VM", "u-2", host.Details, false, true},
		{"names are matched exactly", "i-2-1-vm", "u-1", host.Details, false, true},
		{"an Instance not in the listing", "i-2-3-VM", "u-3", host.Details, false, true},
		{"another host", "i-2-1-VM", "u-1", [3]map[string]string{{"namespace": "tenant-b"}, nil, {"log_file": "/var/log/x.log"}}, false, false},
		{"no Instance", "", "", host.Details, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, ok, trusted, err := powercache.AnswerStatus(root, powercache.StatusRequest{Instance: tt.instance, UUID: tt.uuid, Details: tt.details})
			require.NoError(t, err)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.trusted, trusted)
			if ok {
				assert.Equal(t, powercache.Answer{State: "poweron", LogFile: "/var/log/x.log"}, a)
			}
		})
	}
}
