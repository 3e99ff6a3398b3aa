// Package virtapisim is a TEST DOUBLE for KubeVirt's virt-api: the aggregated subresources.kubevirt.io/v1 API
// (pause, unpause, restart, vnc, version), which envtest does not serve. It is not KubeVirt.
//
// On a real cluster kube-apiserver's aggregator authenticates the caller, authorizes the subresource with RBAC and
// proxies the request to virt-api. envtest has no virt-api and cannot route to one, so this package stands in front
// of envtest instead: an HTTPS server that authenticates callers by client certificate (issued by its own CA,
// see Server.Config), serves subresources.kubevirt.io itself after a SubjectAccessReview of the caller, and forwards
// every other request to envtest as the caller, by impersonation. Clients configured with Server.Config therefore
// see one API server with KubeVirt's subresources, with RBAC enforced as a real cluster enforces it.
//
// Served, as KubeVirt v1.9.0 behaves as seen through the API:
//
//   - PUT virtualmachineinstances/{name}/pause and /unpause: the VMI's Paused condition through kubevirtsim's
//     Sim.Pause and Sim.Unpause; 409 Conflict when the VMI is not running, already paused, or not paused.
//   - PUT virtualmachines/{name}/restart: status.stateChangeRequests Stop (of the current VMI) then Start, which
//     the VM controller carries out; 409 Conflict when the VM has no running VMI.
//   - GET virtualmachineinstances/{name}/vnc: a websocket (subprotocol plain.kubevirt.io) whose binary messages
//     carry the guest's raw RFB stream both ways, relayed to Options.VNC, as virt-handler relays QEMU's VNC socket.
//   - GET version.
//
// Not served: start, stop, migrate, console (serial), portforward, guestosinfo, userlist, filesystemlist,
// addvolume/removevolume, expand-spec and the other subresources; they answer 404.
package virtapisim
