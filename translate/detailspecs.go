package translate

// Details that say which sources an Instance's disks may come from, and how large they may be. All are read
// from the operator's levels only.
const (
	DetailAllowedRegistries  = "allowed_registries"
	DetailAllowedURLPrefixes = "allowed_url_prefixes"
	DetailMaxDiskSize        = "max_disk_size"
)

// DefaultMaxDiskSize bounds root_disk_size and iso_size where CloudStack accounts no size for the disk.
const DefaultMaxDiskSize = "1Ti"

// LabelSharedSource marks a PersistentVolumeClaim the operator shares as a root_disk_pvc clone source; its value
// must be "true".
const LabelSharedSource = Prefix + "shared-source"

// detailSpecs is the registry's content, in the order of docs/configuration.md's table.
func detailSpecs() []DetailSpec {
	operator := []DetailSpec{
		{Key: DetailKubeconfig, Setters: OperatorLevels, Usually: "extension or cluster", Default: "— (required)",
			Meaning: "absolute path of a kubeconfig file on the management servers"},
		{Key: DetailContext, Setters: OperatorLevels, Usually: "host or cluster", Default: "the kubeconfig's current context",
			Meaning: "kubeconfig context to use"},
		{Key: DetailNamespace, Setters: OperatorLevels, Usually: "host", Default: "— (required)",
			Meaning: "namespace of this host's Instances: the host's `statuses` reports exactly the managed VMs in it. System namespaces (`kube-*`, `openshift-*`, `kubevirt`, `cdi`, `cloudstack-kubevirt-system`, `cloudstack-kubevirt-console` and the `console_namespace`) are always refused"},
		{Key: DetailAllowedNamespaces, Setters: ExtensionLevel, Kind: KindList, Usually: "extension (only there)", Default: "any",
			Meaning: "comma-separated namespaces (a trailing `*` matches a prefix) that hosts may name; read from the extension's own details only, so a host or Instance detail cannot widen it"},
		{Key: DetailInsecureTLS, Setters: OperatorLevels, Kind: KindBool, Usually: "extension or cluster", Default: "`false`",
			Meaning: "`true` accepts a kubeconfig that turns TLS verification off (and logs a warning on every call); otherwise such a kubeconfig is refused. The kubeconfig must be a regular file that other users cannot write"},
		{Key: DetailLogFile, Setters: OperatorLevels, Usually: "extension", Default: "`" + DefaultLogFile + "`",
			Meaning: "absolute path of the diagnostics log; an unwritable file is ignored, never fatal"},
	}
	disks := []DetailSpec{
		{Key: DetailImage, Setters: AnyLevel, Usually: "template",
			Meaning: "root disk: containerDisk image (ephemeral), e.g. `quay.io/containerdisks/fedora:43`; its registry must be allowed (`allowed_registries`)"},
		{Key: DetailRootDiskURL, Setters: AnyLevel, Usually: "template",
			Meaning: "root disk: a DataVolume imported from an `http(s)://` URL (allowed by `allowed_url_prefixes`) or a `docker://` registry image (allowed by `allowed_registries`); needs a size (`root_disk_size`, or the root volume's size CloudStack sends)"},
		{Key: DetailRootDiskPVC, Setters: AnyLevel, Usually: "template",
			Meaning: "root disk: a DataVolume cloned from a PVC, `name` (the host's namespace) or `namespace/name` (host, cluster or extension details only). The PVC must carry the label `" + LabelSharedSource + "=true` and must not be an Instance's (`app.kubernetes.io/managed-by=cloudstack-kubevirt` or an `instance-uuid` label)"},
		{Key: DetailISOURL, Setters: AnyLevel, Usually: "template (ISO)",
			Meaning: "ISO install: the ISO is imported (`http(s)://`, allowed by `allowed_url_prefixes`) and attached as a SATA cdrom that boots first; the root disk is a blank DataVolume of `root_disk_size`"},
		{Key: DetailRootDiskSize, Setters: AnyLevel, Kind: KindQuantity, Usually: "template or offering", Default: "the root volume's size CloudStack sends; else the source's (clone only)",
			Meaning: "size of the root DataVolume, e.g. `20Gi`; never more than the root volume's size CloudStack sends (which is used when it sends one), nor than `max_disk_size`"},
		{Key: DetailISOSize, Setters: AnyLevel, Kind: KindQuantity, Usually: "template", Default: "`" + DefaultISOSize + "`",
			Meaning: "size of the PVC the ISO is imported into; never more than `max_disk_size`"},
		{Key: DetailAllowedRegistries, Setters: OperatorLevels, Kind: KindList, Usually: "extension or cluster", Default: "any public registry",
			Meaning: "comma-separated registries, or registry/repository prefixes (`quay.io/containerdisks`), that `image` and `docker://` `root_disk_url` may name. Unset: any registry but `localhost`, single-label names, `*.svc`, `*.cluster.local`, `*.local`, `*.internal`, loopback, link-local, private or unspecified IP addresses and numeric hosts in other notations (`2852039166`); set, exactly the listed ones"},
		{Key: DetailAllowedURLPrefixes, Setters: OperatorLevels, Kind: KindList, Usually: "extension or cluster", Default: "any public URL",
			Meaning: "comma-separated URL prefixes (`https://images.example.com/cloud/`) that `root_disk_url` and `iso_url` may start with (same scheme and host, path at a `/` boundary). Unset: any `http(s)` URL but those whose host is refused as for `allowed_registries`; set, exactly the listed ones, and no `.` or `..` path segments. URLs with credentials are always refused"},
		{Key: DetailMaxDiskSize, Setters: OperatorLevels, Kind: KindQuantity, Usually: "extension or cluster", Default: "`" + DefaultMaxDiskSize + "`",
			Meaning: "the largest `root_disk_size` and `iso_size` an Instance may ask for (CloudStack accounts no size for these disks when it sends no root volume)"},
		{Key: DetailStorageClass, Setters: OperatorLevels, Usually: "host or cluster", Default: "the cluster's default",
			Meaning: "StorageClass of the DataVolumes"},
		{Key: DetailDiskBus, Setters: AnyLevel, Kind: KindEnum, Values: []string{"virtio", "sata", "scsi"}, Usually: "template", Default: "`" + DefaultDiskBus + "`",
			Meaning: "root disk bus: `virtio`, `sata`, `scsi`"},
	}
	instance := []DetailSpec{
		{Key: DetailInstancetype, Setters: AnyLevel, Usually: "offering",
			Meaning: "a `VirtualMachineClusterInstancetype` that stands in for the offering's CPU and memory; its `spec.cpu.guest` and `spec.memory.guest` must be exactly the offering's (CPUs and memory, which CloudStack accounts), or the call is refused"},
		{Key: DetailPreference, Setters: AnyLevel, Usually: "offering or template",
			Meaning: "a `VirtualMachineClusterPreference` (cluster-scoped: only cluster admins create them; a preference fills devices and firmware, never CPU count or memory)"},
		{Key: DetailRunStrategy, Setters: AnyLevel, Kind: KindEnum, Values: []string{"Always", "RerunOnFailure"}, Usually: "offering, host or cluster", Default: "`" + string(DefaultRunStrategy) + "`",
			Meaning: "KubeVirt run strategy while the Instance is on: `Always` (restart on any exit) or `RerunOnFailure` (a guest shutdown stays off); stop always sets `Halted`"},
		{Key: DetailNetworkMap, Setters: OperatorLevels, Kind: KindList, Usually: "host or cluster",
			Meaning: "VLAN to NetworkAttachmentDefinition, `1577=vlan-prod,1578=infra/vlan-test`; keys are VLAN ids, `untagged`, or `<scheme>-<id>` for other isolation (`vxlan-5000`)"},
		{Key: DetailNetworkTemplate, Setters: OperatorLevels, Usually: "host or cluster", Default: "`" + DefaultNetworkTemplate + "`",
			Meaning: "name (or `namespace/name`) of the attachment of any VLAN `network_map` does not name"},
		{Key: DetailNICModel, Setters: AnyLevel, Kind: KindEnum, Values: []string{"virtio", "e1000", "e1000e", "igb", "ne2k_pci", "pcnet", "rtl8139"}, Usually: "template or offering", Default: "`" + DefaultNICModel + "`",
			Meaning: "`virtio`, `e1000`, `e1000e`, `igb`, `ne2k_pci`, `pcnet`, `rtl8139`"},
		{Key: DetailReconcilerLease, Setters: OperatorLevels, Usually: "extension or cluster", Default: "`" + DefaultReconcilerLease.Namespace + "/" + DefaultReconcilerLease.Name + "`",
			Meaning: "`namespace/name` of the [companion reconciler](reconciler.md)'s heartbeat Lease; `status`/`statuses` answer from its labels while it is fresh. `none`: always read the full objects"},
		{Key: DetailStatusCache, Setters: OperatorLevels, Usually: "extension", Default: "`10s`",
			Meaning: "how long one listing of the host's power states, read under a fresh heartbeat, answers the `status` calls of a ping round (kept in the management server's cache directory, never past the heartbeat, and replaced by any action that changes a power state: see [performance](performance.md#the-ping-round)); up to `1m`, `0` or `off` reads the cluster on every call"},
		{Key: DetailWaitUntilRunning, Setters: AnyLevel, Kind: KindBool, Usually: "offering, host or cluster", Default: "`true`",
			Meaning: "`create`, `start` and `reboot` return only once the VM runs (failing fast on image, volume and crash-loop errors); `false` returns once KubeVirt has the request"},
	}
	console := []DetailSpec{
		{Key: DetailConsoleMode, Setters: OperatorLevels, Kind: KindEnum, Values: []string{ConsoleVNC, ConsoleDirect}, Usually: "cluster or extension", Default: "`" + ConsoleVNC + "`",
			Meaning: "[`getconsole`](console.md): `vnc` hands CloudStack's console proxy a host, port and one-time password; `direct` hands the user a URL of the gateway's web console"},
		{Key: DetailConsoleHost, Setters: OperatorLevels, Usually: "cluster or extension", Default: "— (required for `vnc`)",
			Meaning: "the console gateway's address as the zone's console proxy VM reaches it (its Service's load balancer or a node address)"},
		{Key: DetailConsolePort, Setters: OperatorLevels, Usually: "cluster or extension", Default: "`5900`",
			Meaning: "the gateway's VNC port as the console proxy VM reaches it (e.g. a NodePort)"},
		{Key: DetailConsoleURL, Setters: OperatorLevels, Usually: "cluster or extension", Default: "— (required for `direct`)",
			Meaning: "the gateway's web console as users' browsers reach it, `https://console.example.com`"},
		{Key: DetailConsoleNamespace, Setters: OperatorLevels, Usually: "cluster or extension", Default: "`" + DefaultConsoleNamespace + "`",
			Meaning: "where `getconsole` leaves its tokens and the gateway reads them (its `--namespace`); it must hold nothing else, and is never a host's namespace"},
		{Key: DetailConsoleLifetime, Setters: OperatorLevels, Usually: "cluster or extension", Default: "`30s`",
			Meaning: "how long a password or link stays usable if nobody uses it (5 s to 10 min; seconds or a duration)"},
	}
	return concat(operator, disks, instance, console)
}

func concat(groups ...[]DetailSpec) []DetailSpec {
	var out []DetailSpec
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}
