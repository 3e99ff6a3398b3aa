package cloudstacksim

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPayloadByAction(t *testing.T) {
	h := Host{Host: map[string]string{"namespace": "tenant-a"}}
	in := Instance{ID: 45, Name: "i-2-45-VM", UUID: "u-45", CPUs: 2, MemoryMB: 1024,
		NICs: []NIC{{MAC: "02:01:00:cc:00:01", IP: "10.1.1.245", BroadcastURI: "vlan://1577"}}}
	stopped := in
	stopped.State = "Stopped"
	tests := []struct {
		action string
		in     Instance
		state  string
		nics   int
	}{
		{"prepare", in, "Starting", 1},
		{"create", in, "Starting", 1},
		{"start", stopped, "Starting", 1},
		{"stop", in, "Stopping", 0},
		{"delete", stopped, "Stopping", 0},
		{"reboot", in, "Running", 0},
		{"status", in, "Running", 0},
		{"status", stopped, "Stopped", 0},
		{"getconsole", in, "Running", 0},
		{"CreateSnapshot", stopped, "Stopped", 0},
	}
	for _, tt := range tests {
		t.Run(tt.action+" "+tt.state, func(t *testing.T) {
			to := h.Payload(tt.action, tt.in)["cloudstack.vm.details"].(map[string]any)
			assert.Equal(t, tt.state, to["state"])
			assert.Len(t, to["nics"], tt.nics)
		})
	}
	assert.Equal(t, h.StatusesPayload(), h.Payload("statuses", in), "statuses names no Instance")
}
