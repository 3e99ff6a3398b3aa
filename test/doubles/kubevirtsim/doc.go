// Package kubevirtsim runs KubeVirt's own VirtualMachine controller against an API server that has no KubeVirt
// (envtest), and stands in for the rest of KubeVirt that envtest cannot run: the node agent, CDI, the garbage
// collector, and the snapshot, restore and migration controllers. It runs no virtual machines.
//
// # KubeVirt's code
//
// The VirtualMachine controller is KubeVirt v1.8.0's, unchanged: kubevirt.io/kubevirt/pkg/virt-controller/watch/vm
// with the network, firmware and instancetype synchronizers it is built with, wired as virt-controller's
// application.go wires it, built as the binary test/upstream/cmd/kubevirt-controller (KubeVirt cannot link into
// this module) and started by Start against the same API server, as virt-controller's service account where the
// caller's identity may impersonate it (testenv's admin may). One controller serves every namespace of an API
// server; simulators of the same API server share it and the last one to stop stops it. Everything a VM's owner
// sees of the VM is therefore KubeVirt's: the finalizer kubevirt.io/virtualMachineControllerFinalize, the API
// version annotations, spec.runStrategy (and spec.running) deciding when a VMI is created or deleted,
// status.stateChangeRequests, DataVolumes created from spec.dataVolumeTemplates before the VMI starts, the
// firmware UUID written into the spec, ControllerRevisions of each start, status.printableStatus, ready, created,
// runStrategy, conditions, observedGeneration, desiredGeneration, the crash-loop back-off (status.startFailure:
// n²×10 s plus up to half again, at most 5 minutes), RestartRequired and the LiveUpdate rollout of CPU, memory,
// affinity and volume changes, conflict retries and rate-limited requeues, and the Events it records (source
// virtualmachine-controller). Its log goes nowhere unless $KUBEVIRTSIM_CONTROLLER_LOG names a file ("-" for
// stderr); a failed start reports its end.
//
// Where test/doubles/testenv installs them, KubeVirt's own admission webhooks (virt-api's) default and validate VMs
// and VMIs too: the simulator then writes VMIs as virt-controller's service account, the only identity those
// webhooks let change a VMI's status.
//
// # What is simulated
//
// Each part follows KubeVirt v1.8.0 (or the Kubernetes or CDI component named) as seen through the API:
//
//   - virt-handler and the VMI controller (vmi_controller.go): a new VMI moves Pending → Scheduling → Scheduled →
//     Running on node Options.NodeName, recording each phase in status.phaseTransitionTimestamps (KubeVirt's VM
//     controller counts a VMI that never reached Running as a start failure), with a Ready condition, interfaces
//     (the spec's MACs, made-up IPs) and guest OS info. A deleted VMI shuts down (Succeeded, or Failed if it never
//     ran) and loses its own finalizers, and the VM controller's once no VM owns it
//     (pkg/virt-controller/watch/vmi/lifecycle.go).
//   - CDI's DataVolume controller (datavolumes.go): a DataVolume moves Pending → ImportScheduled →
//     ImportInProgress → Succeeded (100.0%).
//   - The Kubernetes garbage collector (gc.go, and the VMI and DataVolume controllers): dependents of a vanished VM
//     (VMI, DataVolumes, ControllerRevisions) are deleted; Orphan and Foreground deletion of a VM are honoured.
//   - VirtualMachineSnapshot controller (where the snapshot.kubevirt.io CRDs are installed): the source VM is
//     locked (status.snapshotInProgress, finalizer snapshot.kubevirt.io/snapshot-source-protection), a
//     VirtualMachineSnapshotContent records its spec and is ready at once, and the snapshot goes InProgress →
//     Succeeded with readyToUse, creationTime, the Ready and Progressing conditions, indications (Online with
//     GuestAgent or Paused; none offline) and an Event, as KubeVirt writes them. A snapshot of a missing VM stays
//     InProgress ("Source does not exist") until spec.failureDeadline (default 5 minutes), then Fails. Deleting
//     it deletes its content (deletion policy Delete) and unlocks the VM.
//   - VirtualMachineRestore controller: the target VM's VMI must be gone, as targetReadinessPolicy says
//     (WaitGracePeriod by default: wait 5 minutes, then Failure; WaitEventually; FailImmediate; StopTarget halts
//     the VM); then status.restoreInProgress, the snapshot's spec put back on the VM (its run strategy kept) with
//     the restore.kubevirt.io/lastRestoreUID annotation, complete, restoreTime and the conditions KubeVirt
//     writes. Errors (a missing or unready snapshot) are recorded in the conditions and an Event and retried.
//   - VirtualMachineInstanceMigration controller and the virt-handlers of a live migration: Pending →
//     Scheduling → Scheduled → PreparingTarget → TargetReady → Running → Succeeded, one phase per StepDelay, with
//     the VMI's status.migrationState written at each step and the VMI moved (status.nodeName, label
//     kubevirt.io/nodeName) to the next of Options.MigrationNodes, or to addedNodeSelector's
//     kubernetes.io/hostname. A migration of a missing or finished VMI Fails as virt-controller fails it. Running
//     VMIs get the LiveMigratable condition (False for a pod network without masquerade or passt, or a
//     DataVolume whose access modes lack ReadWriteMany, or a PVC).
//   - Events: the snapshot, restore and migration controllers record core/v1 Events as KubeVirt's do.
//
// Options.Namespaces limits the simulated parts; KubeVirt's VM controller acts on every namespace, so a VM
// elsewhere gets a VMI that never leaves its first phase (printableStatus Starting), as on a cluster without a
// node to run it.
//
// Out-of-band events are injected with Sim.GuestShutdown, Sim.Crash, Sim.Pause, Sim.Unpause and Sim.SetFault (or
// Options.FailImagePull).
//
// Not simulated: pods, nodes, scheduling constraints, hotplug, the subresources.kubevirt.io API (start, stop,
// restart, pause, VNC: they return 404 in envtest; change spec.runStrategy, write status.stateChangeRequests, or
// delete the VMI instead; test/doubles/virtapisim serves some), DataVolume sources (every import succeeds), PVCs,
// VolumeSnapshots and volume restores, migration policies, failed or aborted migrations in flight, and garbage
// collection of restores owned by a deleted VM.
package kubevirtsim
