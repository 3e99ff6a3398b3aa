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
// Out-of-band events are injected with Sim.GuestShutdown, Sim.Crash, Sim.Pause, Sim.Unpause and Sim.SetFault (or
// Options.FailImagePull).
//
// Not simulated: pods, nodes, scheduling constraints, hotplug, instancetypes and preferences, RestartRequired,
// webhooks (defaults and validation; the migration admission's refusals, a non-migratable VMI or one already
// migrating, become a Failed migration with the admission's message in a FailedMigration event), the
// subresources.kubevirt.io API (start, stop, restart, pause, VNC: they return 404 in envtest; change
// spec.runStrategy, write status.stateChangeRequests, or delete the VMI instead; test/virtapisim serves some),
// DataVolume sources (every import succeeds), PVCs, VolumeSnapshots and volume restores, migration policies,
// failed or aborted migrations in flight, garbage collection of restores owned by a deleted VM, adoption of
// orphaned VMIs, and the VM and VMI lifecycle's own events.
package kubevirtsim
