package translate

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
)

// VirtualMachine builds the VirtualMachine that runs the payload's Instance in namespace, started with
// spec.RunStrategy. It checks what KubeVirt's admission would reject, even where KubeVirt stores the VM and
// refuses only its VMI, so that the answer names the detail at fault before anything is created
// (test/admission runs KubeVirt's own webhooks over what it builds).
func VirtualMachine(p *Payload, namespace string, spec Spec) (*kubevirtv1.VirtualMachine, error) {
	if p.VM == nil {
		return nil, errors.New("the payload has no cloudstack.vm.details: CloudStack sends them with create and start")
	}
	name, err := VMName(p.InstanceName())
	if err != nil {
		return nil, err
	}
	labels, err := InstanceLabels(p)
	if err != nil {
		return nil, err
	}
	strategy := spec.RunStrategy
	vm := &kubevirtv1.VirtualMachine{
		TypeMeta:   metav1.TypeMeta{APIVersion: kubevirtv1.SchemeGroupVersion.String(), Kind: "VirtualMachine"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels},
		Spec: kubevirtv1.VirtualMachineSpec{
			RunStrategy: &strategy,
			Template: &kubevirtv1.VirtualMachineInstanceTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: templateLabels(labels, name)},
			},
		},
	}
	for _, mapper := range []func(*Payload, Spec, *kubevirtv1.VirtualMachine) error{
		mapResources, mapFirmware, mapArchitecture, mapDisks, mapNetworks,
	} {
		if err := mapper(p, spec, vm); err != nil {
			return nil, err
		}
	}
	return vm, nil
}

// InstanceLabels are the labels that tie an object to its CloudStack Instance.
func InstanceLabels(p *Payload) (map[string]string, error) {
	name, uuid := p.InstanceName(), p.InstanceUUID()
	if uuid == "" {
		return nil, errors.New("the payload has no virtualmachineid")
	}
	for key, v := range map[string]string{"virtualmachinename": name, "virtualmachineid": uuid} {
		if msg := labelValue(v); msg != "" {
			return nil, fmt.Errorf("%s %q cannot be a label value: %s", key, v, msg)
		}
	}
	return map[string]string{LabelManagedBy: ManagedBy, LabelInstanceName: name, LabelInstanceUUID: uuid}, nil
}

// templateLabels propagate to the VirtualMachineInstance and its pod, so VMIs can be listed like their VMs.
func templateLabels(instance map[string]string, vmName string) map[string]string {
	labels := maps.Clone(instance)
	labels["kubevirt.io/domain"] = vmName
	return labels
}

// Resources are a guest's CPU count and memory.
type Resources struct {
	CPUs   uint32
	Memory resource.Quantity
}

func (r Resources) String() string {
	return fmt.Sprintf("%d vCPUs and %s of memory", r.CPUs, r.Memory.String())
}

// Accounted is what CloudStack accounts (and bills) for the Instance: the offering's CPUs and memory (maxRam,
// which the guest sees).
func (p *Payload) Accounted() Resources {
	if p.VM == nil {
		return Resources{}
	}
	return Resources{CPUs: uint32(max(p.VM.CPUs, 0)), Memory: *resource.NewQuantity(max(p.VM.MaxRAM, p.VM.MinRAM), resource.BinarySI)}
}

// CheckInstancetype refuses an instancetype that does not give exactly what CloudStack accounts: CloudStack
// bills the offering, so an instancetype may stand in for it but never change it. gives is what the instancetype
// read from the cluster sets (spec.cpu.guest, spec.memory.guest).
func CheckInstancetype(p *Payload, name string, gives Resources) error {
	want := p.Accounted()
	if gives.CPUs == want.CPUs && gives.Memory.Cmp(want.Memory) == 0 {
		return nil
	}
	_, level, _ := p.Details().Lookup(DetailInstancetype)
	return &DetailError{Key: DetailInstancetype, Level: level, Reason: fmt.Sprintf(
		"VirtualMachineClusterInstancetype %s gives %s, but the offering CloudStack accounts gives %s: "+
			"name an instancetype of exactly the offering's size, or remove the detail", name, gives, want)}
}

// mapResources sets CPU and memory, unless a cluster instancetype stands in for them (KubeVirt rejects a VM
// that sets both); then spec.InstancetypeGives, what the instancetype was read to give, must be the offering's.
func mapResources(p *Payload, spec Spec, vm *kubevirtv1.VirtualMachine) error {
	if spec.Instancetype != "" {
		vm.Spec.Instancetype = &kubevirtv1.InstancetypeMatcher{Name: spec.Instancetype, Kind: "VirtualMachineClusterInstancetype"}
	}
	if spec.Preference != "" {
		vm.Spec.Preference = &kubevirtv1.PreferenceMatcher{Name: spec.Preference, Kind: "VirtualMachineClusterPreference"}
	}
	if spec.Instancetype != "" {
		if spec.InstancetypeGives == nil {
			return nil
		}
		return CheckInstancetype(p, spec.Instancetype, *spec.InstancetypeGives)
	}
	to := p.VM
	if to.CPUs < 1 {
		return fmt.Errorf("the offering gives %d CPUs: need at least 1 (or the offering detail instancetype)", to.CPUs)
	}
	const minMemory = 1 << 20 // the webhook's floor
	if to.MinRAM < minMemory {
		return fmt.Errorf("the offering gives %d bytes of memory (minRam): need at least 1 MiB", to.MinRAM)
	}
	guest := max(to.MaxRAM, to.MinRAM)
	domain := &vm.Spec.Template.Spec.Domain
	// One socket per vCPU, as libvirt and Forklift do: guests license and schedule by socket count least often.
	domain.CPU = &kubevirtv1.CPU{Sockets: uint32(to.CPUs), Cores: 1, Threads: 1}
	// The guest sees the offering's memory; the pod is scheduled by minRam, which CloudStack lowers by the
	// cluster's memory overcommit ratio.
	domain.Memory = &kubevirtv1.Memory{Guest: resource.NewQuantity(guest, resource.BinarySI)}
	domain.Resources.Requests = corev1.ResourceList{corev1.ResourceMemory: *resource.NewQuantity(to.MinRAM, resource.BinarySI)}
	return nil
}

// mapFirmware pins the SMBIOS UUID to the Instance UUID (cloud-init's instance-id) and picks the bootloader.
func mapFirmware(p *Payload, spec Spec, vm *kubevirtv1.VirtualMachine) error {
	a, err := archOf(p.VM.Arch)
	if err != nil {
		return err
	}
	boot, err := bootloader(p.VM, a, spec.Preference != "")
	if err != nil {
		return err
	}
	vm.Spec.Template.Spec.Domain.Firmware = &kubevirtv1.Firmware{UUID: types.UID(p.InstanceUUID()), Bootloader: boot}
	if boot != nil && boot.EFI != nil && *boot.EFI.SecureBoot {
		// KubeVirt refuses Secure Boot without SMM.
		vm.Spec.Template.Spec.Domain.Features = &kubevirtv1.Features{SMM: &kubevirtv1.FeatureState{Enabled: boot.EFI.SecureBoot}}
	}
	return nil
}

// bootloader follows CloudStack's boot type and mode. With none given it leaves the choice to a preference when
// one is set (KubeVirt applies a preference's firmware only where the VM sets none), else to the architecture.
func bootloader(to *VirtualMachineTO, a arch, preference bool) (*kubevirtv1.Bootloader, error) {
	switch strings.ToUpper(to.BootType) {
	case "":
		if preference {
			return nil, nil
		}
		if a.efiOnly {
			return &kubevirtv1.Bootloader{EFI: &kubevirtv1.EFI{SecureBoot: new(false)}}, nil
		}
		return &kubevirtv1.Bootloader{BIOS: &kubevirtv1.BIOS{}}, nil
	case "BIOS":
		if a.efiOnly {
			return nil, fmt.Errorf("boot type BIOS: KubeVirt boots %s guests only with UEFI; deploy the Instance with boot type UEFI, boot mode LEGACY", a.name)
		}
		return &kubevirtv1.Bootloader{BIOS: &kubevirtv1.BIOS{}}, nil
	case "UEFI":
		secure := strings.EqualFold(to.BootMode, "SECURE")
		if secure && a.efiOnly {
			return nil, fmt.Errorf("boot mode SECURE: KubeVirt has no UEFI Secure Boot for %s guests; deploy the Instance with boot mode LEGACY", a.name)
		}
		return &kubevirtv1.Bootloader{EFI: &kubevirtv1.EFI{SecureBoot: &secure}}, nil
	}
	return nil, fmt.Errorf("boot type %q is not BIOS or UEFI", to.BootType)
}

// mapArchitecture turns CloudStack's arch (from the template) into KubeVirt's.
func mapArchitecture(p *Payload, _ Spec, vm *kubevirtv1.VirtualMachine) error {
	a, err := archOf(p.VM.Arch)
	if err != nil {
		return err
	}
	vm.Spec.Template.Spec.Architecture = a.name
	return nil
}

// mapDisks adds the root disk and, for an ISO install, the cdrom it boots from first. An empty spec.DiskBus
// leaves the bus to the preference (or KubeVirt's default for the architecture).
func mapDisks(p *Payload, spec Spec, vm *kubevirtv1.VirtualMachine) error {
	a, err := archOf(p.VM.Arch)
	if err != nil {
		return err
	}
	if a.noSATA && spec.DiskBus == kubevirtv1.DiskBusSATA {
		return &DetailError{Key: DetailDiskBus, Reason: fmt.Sprintf("KubeVirt has no sata bus for %s guests: use virtio or scsi", a.name)}
	}
	root := spec.RootDisk
	name := vm.Name
	tmpl := &vm.Spec.Template.Spec
	rootBoot := uint(1)
	switch root.Source {
	case SourceContainerDisk:
		tmpl.Volumes = append(tmpl.Volumes, kubevirtv1.Volume{Name: "rootdisk", VolumeSource: kubevirtv1.VolumeSource{
			ContainerDisk: &kubevirtv1.ContainerDiskSource{Image: root.Image},
		}})
	case SourceImport, SourceClone:
		src, err := rootDiskSource(root, vm.Namespace)
		if err != nil {
			return err
		}
		addDataVolume(vm, "rootdisk", RootDiskName(name), src, root.Size, root.StorageClass)
	case SourceISO:
		rootBoot = 2
		addDataVolume(vm, "rootdisk", RootDiskName(name), &cdiv1.DataVolumeSource{Blank: &cdiv1.DataVolumeBlankImage{}}, root.Size, root.StorageClass)
		addDataVolume(vm, "cdrom", ISODiskName(name), &cdiv1.DataVolumeSource{HTTP: &cdiv1.DataVolumeSourceHTTP{URL: root.URL}}, root.ISOSize, root.StorageClass)
		cdromBoot := uint(1)
		tmpl.Domain.Devices.Disks = append(tmpl.Domain.Devices.Disks, kubevirtv1.Disk{
			Name: "cdrom", BootOrder: &cdromBoot,
			DiskDevice: kubevirtv1.DiskDevice{CDRom: &kubevirtv1.CDRomTarget{Bus: cdromBus(a, spec)}},
		})
	}
	tmpl.Domain.Devices.Disks = append([]kubevirtv1.Disk{{
		Name: "rootdisk", BootOrder: &rootBoot,
		DiskDevice: kubevirtv1.DiskDevice{Disk: &kubevirtv1.DiskTarget{Bus: spec.DiskBus}},
	}}, tmpl.Domain.Devices.Disks...)
	return nil
}

// cdromBus is sata on amd64, where every installer finds it, unless a preference may choose (KubeVirt's own
// default there is sata too); elsewhere the architecture's bus, because KubeVirt's default for an unset CD-ROM
// bus on arm64 and s390x is virtio, which it then refuses for a CD-ROM.
func cdromBus(a arch, spec Spec) kubevirtv1.DiskBus {
	if spec.Preference != "" && a.cdromBus == kubevirtv1.DiskBusSATA {
		return ""
	}
	return a.cdromBus
}

// rootDiskSource is the CDI source of an imported or cloned root disk.
func rootDiskSource(root RootDisk, vmNamespace string) (*cdiv1.DataVolumeSource, error) {
	switch root.Source {
	case SourceClone:
		ns := root.PVCNamespace
		if ns == "" {
			ns = vmNamespace
		}
		return &cdiv1.DataVolumeSource{PVC: &cdiv1.DataVolumeSourcePVC{Namespace: ns, Name: root.PVCName}}, nil
	case SourceImport:
		if strings.HasPrefix(root.URL, "docker://") {
			url := root.URL
			return &cdiv1.DataVolumeSource{Registry: &cdiv1.DataVolumeSourceRegistry{URL: &url}}, nil
		}
		return &cdiv1.DataVolumeSource{HTTP: &cdiv1.DataVolumeSourceHTTP{URL: root.URL}}, nil
	}
	return nil, fmt.Errorf("root disk source %d has no DataVolume", root.Source)
}

// addDataVolume adds a DataVolume template and the volume that uses it. The template carries the Instance's
// labels so the DataVolume (created by KubeVirt) can be found and removed with the Instance.
func addDataVolume(vm *kubevirtv1.VirtualMachine, volume, dvName string, src *cdiv1.DataVolumeSource, size resource.Quantity, storageClass string) {
	storage := &cdiv1.StorageSpec{}
	if !size.IsZero() {
		storage.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: size}
	}
	if storageClass != "" {
		sc := storageClass
		storage.StorageClassName = &sc
	}
	vm.Spec.DataVolumeTemplates = append(vm.Spec.DataVolumeTemplates, kubevirtv1.DataVolumeTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Name: dvName, Labels: maps.Clone(vm.Labels)},
		Spec:       cdiv1.DataVolumeSpec{Source: src, Storage: storage},
	})
	vm.Spec.Template.Spec.Volumes = append(vm.Spec.Template.Spec.Volumes, kubevirtv1.Volume{
		Name: volume, VolumeSource: kubevirtv1.VolumeSource{DataVolume: &kubevirtv1.DataVolumeSource{Name: dvName}},
	})
}

// mapNetworks attaches each CloudStack NIC, in device order, to the Multus network of its segment with bridge
// binding and CloudStack's MAC, so the guest network's virtual router (DHCP) recognises it.
func mapNetworks(p *Payload, spec Spec, vm *kubevirtv1.VirtualMachine) error {
	nics := append([]NicTO(nil), p.VM.NICs...)
	sort.SliceStable(nics, func(i, j int) bool { return nics[i].DeviceID < nics[j].DeviceID })
	tmpl := &vm.Spec.Template.Spec
	// Without any interface KubeVirt would add a pod-network NIC; CloudStack asked for none.
	autoattach := false
	tmpl.Domain.Devices.AutoattachPodInterface = &autoattach
	for i, nic := range nics {
		iface, network, err := mapNIC(i, nic, spec)
		if err != nil {
			return err
		}
		tmpl.Domain.Devices.Interfaces = append(tmpl.Domain.Devices.Interfaces, iface)
		tmpl.Networks = append(tmpl.Networks, network)
	}
	return nil
}

// mapNIC maps one NIC; index is its position in device order, which names the interface (nic0, nic1...).
func mapNIC(index int, nic NicTO, spec Spec) (kubevirtv1.Interface, kubevirtv1.Network, error) {
	mac, err := nicMAC(nic)
	if err != nil {
		return kubevirtv1.Interface{}, kubevirtv1.Network{}, err
	}
	segment, err := Segment(nic)
	if err != nil {
		return kubevirtv1.Interface{}, kubevirtv1.Network{}, err
	}
	ref := spec.Networks.Attachment(segment)
	if msg := attachmentRefProblem(ref); msg != "" {
		return kubevirtv1.Interface{}, kubevirtv1.Network{}, &DetailError{Key: DetailNetworkTemplate,
			Reason: fmt.Sprintf("NIC %d on segment %q maps to %q: %s; name it in network_map", nic.DeviceID, segment, ref, msg)}
	}
	name := fmt.Sprintf("nic%d", index)
	iface := kubevirtv1.Interface{
		Name: name, MacAddress: mac, Model: spec.NICModel,
		InterfaceBindingMethod: kubevirtv1.InterfaceBindingMethod{Bridge: &kubevirtv1.InterfaceBridge{}},
	}
	network := kubevirtv1.Network{Name: name, NetworkSource: kubevirtv1.NetworkSource{
		Multus: &kubevirtv1.MultusNetwork{NetworkName: ref},
	}}
	return iface, network, nil
}

// nicMAC validates CloudStack's MAC as KubeVirt's webhook would: a unicast 6-byte address.
func nicMAC(nic NicTO) (string, error) {
	if nic.MAC == "" {
		return "", fmt.Errorf("NIC %d has no MAC address", nic.DeviceID)
	}
	hw, err := net.ParseMAC(nic.MAC)
	if err != nil || len(hw) != 6 {
		return "", fmt.Errorf("NIC %d: %q is not a 6-byte MAC address", nic.DeviceID, nic.MAC)
	}
	if hw[0]&1 == 1 {
		return "", fmt.Errorf("NIC %d: %q is a multicast MAC address", nic.DeviceID, nic.MAC)
	}
	return hw.String(), nil
}
