// Package kubevirtsim is a TEST DOUBLE for KubeVirt's virt-controller and virt-handler (and the small part of CDI
// and the Kubernetes garbage collector they rely on). It is not KubeVirt and runs no virtual machines.
//
// envtest stores KubeVirt objects but runs nothing: a VirtualMachine never gets a VirtualMachineInstance and no
// status is ever written. The simulator fills that gap in-process, against any API server with the KubeVirt
// (and optionally CDI) CRDs installed, so that code driving VirtualMachines can be tested end to end. It follows
// KubeVirt v1.9.0 as seen through the API:
//
//   - VirtualMachine controller: spec.runStrategy (Always, RerunOnFailure, Once, Manual, Halted) and the
//     deprecated spec.running decide whether a VirtualMachineInstance exists; status.stateChangeRequests are
//     honoured and cleared; the finalizer kubevirt.io/virtualMachineControllerFinalize is added and, on deletion,
//     removed once the VMI is gone; spec.dataVolumeTemplates become DataVolumes before the VMI starts; an empty
//     firmware UUID is filled in; status.printableStatus, ready, created, runStrategy, conditions,
//     observedGeneration, desiredGeneration and startFailure (crash-loop back-off) are kept as KubeVirt keeps them.
//   - VirtualMachineInstance controller and handler: a new VMI moves Pending → Scheduling → Scheduled → Running on
//     node Options.NodeName with a Ready condition, interfaces (the spec's MACs, made-up IPs) and guest OS info. A
//     deleted VMI shuts down (Succeeded, or Failed if it never ran) and its finalizers are removed.
//   - DataVolume controller: a DataVolume moves Pending → ImportScheduled → ImportInProgress → Succeeded (100.0%).
//   - Garbage collector: VMIs and DataVolumes whose controlling VirtualMachine is gone are deleted; foreground
//     and orphan deletion of a VirtualMachine are honoured.
//
// Out-of-band events are injected with Sim.GuestShutdown, Sim.Crash, Sim.Pause, Sim.Unpause and Sim.SetFault (or
// Options.FailImagePull).
//
// Not simulated: pods, nodes, scheduling constraints, live migration, hotplug, instancetypes and preferences,
// RestartRequired, webhooks (defaults and validation), the subresources.kubevirt.io API (start, stop, restart,
// pause, VNC: they return 404 in envtest; change spec.runStrategy, write status.stateChangeRequests, or delete the
// VMI instead), DataVolume sources (every import succeeds), PVCs, adoption of orphaned VMIs, and events.
package kubevirtsim
