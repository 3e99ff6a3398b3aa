package translate

// Every object the product creates carries these labels, so that
// `kubectl get vm -l app.kubernetes.io/managed-by=cloudstack-kubevirt` lists what CloudStack manages and
// `-L cloudstack.apache.org/instance-name` shows CloudStack's name for it.
const (
	// Prefix is the one prefix of every CloudStack label and annotation the product writes.
	Prefix = "cloudstack.apache.org/"

	// LabelManagedBy marks the objects the product manages; its value is ManagedBy.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "cloudstack-kubevirt"

	// LabelInstanceName holds the CloudStack internal name in its original case (i-2-45-VM).
	LabelInstanceName = Prefix + "instance-name"
	// LabelInstanceUUID holds the CloudStack Instance UUID; it proves which Instance owns a VirtualMachine.
	LabelInstanceUUID = Prefix + "instance-uuid"
	// LabelPowerState is written by the reconciler: the power state CloudStack is told (poweron/poweroff).
	LabelPowerState = Prefix + "power-state"

	// AnnotationPowerStateChanged is written by the reconciler: when LabelPowerState last changed (RFC 3339).
	AnnotationPowerStateChanged = Prefix + "power-state-changed"
	// AnnotationPowerStateGeneration is written by the reconciler: the VM's metadata.generation that
	// LabelPowerState was computed from. A start or stop changes the VM's spec, hence its generation, so a reader
	// can tell a label that predates the latest intent without reading the VM's spec.
	AnnotationPowerStateGeneration = Prefix + "power-state-generation"

	// AnnotationHeartbeatNamespaces is set on the reconciler's heartbeat Lease: the namespaces whose labels it
	// keeps current, comma-separated; empty for every namespace.
	AnnotationHeartbeatNamespaces = Prefix + "namespaces"
)
