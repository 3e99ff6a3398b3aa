// Package powerstate is the companion reconciler: it keeps, on every VirtualMachine the extension manages, the
// power state CloudStack is told (a label, the same translate.PowerStateOf the extension uses), records each
// transition as an Event and in metrics, and holds a heartbeat Lease that tells the extension when those labels
// can be trusted.
package powerstate
