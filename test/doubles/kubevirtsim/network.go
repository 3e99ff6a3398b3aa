package kubevirtsim

import (
	"crypto/sha256"
	"fmt"

	kubevirtv1 "kubevirt.io/api/core/v1"
)

// interfaceStatuses reports what virt-handler and the guest agent would: each interface of the spec with its MAC
// (or a made-up, locally administered one), a made-up IP, and its name in the guest. Pod-network IPs come from
// 10.244.0.0/16, the others from 172.16.0.0/12; they are derived from the VMI's UID, so a restarted VMI gets new
// ones, as a pod would.
func interfaceStatuses(vmi *kubevirtv1.VirtualMachineInstance) []kubevirtv1.VirtualMachineInstanceNetworkInterface {
	onPod := map[string]bool{}
	for _, n := range vmi.Spec.Networks {
		onPod[n.Name] = n.Pod != nil
	}
	ifaces := vmi.Spec.Domain.Devices.Interfaces
	out := make([]kubevirtv1.VirtualMachineInstanceNetworkInterface, 0, len(ifaces))
	for i, iface := range ifaces {
		h := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", vmi.UID, i)))
		mac := iface.MacAddress
		if mac == "" {
			mac = fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", h[0], h[1], h[2], h[3], h[4])
		}
		ip := fmt.Sprintf("172.%d.%d.%d", 16+h[5]%16, h[6], 2+h[7]%250)
		if onPod[iface.Name] {
			ip = fmt.Sprintf("10.244.%d.%d", h[5], 2+h[7]%250)
		}
		out = append(out, kubevirtv1.VirtualMachineInstanceNetworkInterface{
			Name:          iface.Name,
			MAC:           mac,
			IP:            ip,
			IPs:           []string{ip},
			InterfaceName: fmt.Sprintf("eth%d", i),
			InfoSource:    "domain, guest-agent",
			QueueCount:    1,
			LinkState:     "up",
		})
	}
	return out
}
