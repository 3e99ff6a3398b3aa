// Command kubevirt-domain turns a VirtualMachineInstance into the libvirt domain XML virt-launcher would define for
// it, with KubeVirt v1.8.0's own converter, unchanged: it reads the VMI (JSON, as KubeVirt's VM controller and
// admission produced it) on stdin and prints the domain on stdout.
//
// It does what kubevirt.io/kubevirt@v1.8.0/pkg/virt-launcher/virtwrap/manager.go does in SyncVMI before it
// defines the domain: generateConverterContext (the ConverterContext), Convert_v1_VirtualMachineInstance_To_api_Domain,
// then api.NewDefaulter(...).SetObjectDefaults_Domain. The options virt-handler sends with the VMI are built as
// pkg/virt-handler/vm.go syncVirtualMachine and options.go virtualMachineOptions build them, from KubeVirt's default
// cluster configuration (pkg/virt-config: SMBIOS family, manufacturer and product "KubeVirt"/"KubeVirt"/"None"; the
// serial console log on; Bochs display for EFI guests), with the interface domain attachments of
// pkg/network/domainspec.DomainAttachmentByInterfaceName.
//
// What a launcher pod would find on its file system is given by flags instead:
//
//	-container-disk PATH  the image a containerDisk volume's container holds (virt-launcher reads its format and
//	                      size with qemu-img, pkg/os/disk.GetDiskInfoWithValidation, which this runs on PATH)
//	-ovmf DIR             virt-launcher's --ovmf-path (default /usr/share/OVMF): efi.DetectEFIEnvironment looks there
//	                      for OVMF_CODE.fd, OVMF_CODE.secboot.fd, OVMF_VARS.fd, OVMF_VARS.secboot.fd
//	-kvm                  /dev/kvm is usable (virt-launcher's hypervisorDeviceAvailable); without it the cluster is
//	                      taken to allow emulation (spec.configuration.developerConfiguration.useEmulation), and
//	                      KubeVirt's KVM configurator writes a type="qemu" domain (TCG)
//
// The paths in the domain are the launcher pod's (/var/run/kubevirt-private/..., /var/run/kubevirt-ephemeral-disks/...);
// a test that runs the domain elsewhere rewrites them. Nothing else is changed here.
package main

import (
	"encoding/json"
	"encoding/xml"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	v1 "kubevirt.io/api/core/v1"

	ephemeraldisk "kubevirt.io/kubevirt/pkg/ephemeral-disk"
	cmdv1 "kubevirt.io/kubevirt/pkg/handler-launcher-com/cmd/v1"
	"kubevirt.io/kubevirt/pkg/network/domainspec"
	osdisk "kubevirt.io/kubevirt/pkg/os/disk"
	virtconfig "kubevirt.io/kubevirt/pkg/virt-config"
	"kubevirt.io/kubevirt/pkg/virt-launcher/virtwrap/api"
	"kubevirt.io/kubevirt/pkg/virt-launcher/virtwrap/converter"
	"kubevirt.io/kubevirt/pkg/virt-launcher/virtwrap/converter/arch"
	convertertypes "kubevirt.io/kubevirt/pkg/virt-launcher/virtwrap/converter/types"
	"kubevirt.io/kubevirt/pkg/virt-launcher/virtwrap/efi"
)

func main() {
	containerDisk := flag.String("container-disk", "", "the image every containerDisk volume's container holds")
	ovmf := flag.String("ovmf", "/usr/share/OVMF", "virt-launcher's --ovmf-path")
	kvm := flag.Bool("kvm", false, "the hypervisor device (/dev/kvm) is usable; without it, KubeVirt's emulation is allowed")
	flag.Parse()
	if err := run(os.Stdin, os.Stdout, *containerDisk, *ovmf, *kvm); err != nil {
		fmt.Fprintln(os.Stderr, "kubevirt-domain:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer, containerDisk, ovmf string, kvm bool) error {
	vmi := &v1.VirtualMachineInstance{}
	if err := json.NewDecoder(in).Decode(vmi); err != nil {
		return fmt.Errorf("reading the VMI from stdin: %w", err)
	}
	c, err := converterContext(vmi, containerDisk, ovmf, kvm)
	if err != nil {
		return err
	}
	domain := &api.Domain{}
	if err := converter.Convert_v1_VirtualMachineInstance_To_api_Domain(vmi, domain, c); err != nil {
		return fmt.Errorf("KubeVirt's converter refused VMI %s/%s: %w", vmi.Namespace, vmi.Name, err)
	}
	api.NewDefaulter(c.Architecture.GetArchitecture()).SetObjectDefaults_Domain(domain)
	b, err := xml.MarshalIndent(domain.Spec, "", "  ")
	if err != nil {
		return fmt.Errorf("writing the domain XML: %w", err)
	}
	_, err = fmt.Fprintf(out, "%s\n", b)
	return err
}

// virtHandlerOptions are the options virt-handler sends virt-launcher with the VMI (pkg/virt-handler/vm.go
// syncVirtualMachine, options.go virtualMachineOptions) under KubeVirt's default cluster configuration.
func virtHandlerOptions(vmi *v1.VirtualMachineInstance) *cmdv1.VirtualMachineOptions {
	return &cmdv1.VirtualMachineOptions{
		VirtualMachineSMBios: &cmdv1.SMBios{
			Family:       virtconfig.SmbiosConfigDefaultFamily,
			Manufacturer: virtconfig.SmbiosConfigDefaultManufacturer,
			Product:      virtconfig.SmbiosConfigDefaultProduct,
		},
		Topology: &cmdv1.Topology{},
		ClusterConfig: &cmdv1.ClusterConfig{
			BochsDisplayForEFIGuests: true, // VGADisplayForEFIGuests is off by default
		},
		InterfaceDomainAttachment: domainspec.DomainAttachmentByInterfaceName(vmi.Spec.Domain.Devices.Interfaces, nil),
	}
}

// converterContext is virt-launcher's generateConverterContext (pkg/virt-launcher/virtwrap/manager.go) for a VMI
// with no hotplugged, block, SR-IOV, GPU or host devices, which is what the extension creates.
func converterContext(vmi *v1.VirtualMachineInstance, containerDisk, ovmf string, kvm bool) (*convertertypes.ConverterContext, error) {
	options := virtHandlerOptions(vmi)
	permanent := map[string]v1.VolumeStatus{}
	for _, status := range vmi.Status.VolumeStatus {
		if status.HotplugVolume == nil {
			permanent[status.Name] = status
		}
	}
	disksInfo := map[string]*osdisk.DiskInfo{}
	for _, volume := range vmi.Spec.Volumes {
		if volume.ContainerDisk == nil {
			continue
		}
		if containerDisk == "" {
			return nil, fmt.Errorf("volume %s is a containerDisk: give its image with -container-disk", volume.Name)
		}
		// virt-launcher's default --disk-memory-limit is 1 GiB (cmd/virt-launcher/virt-launcher.go).
		info, err := osdisk.GetDiskInfoWithValidation(containerDisk, 1<<30)
		if err != nil {
			return nil, fmt.Errorf("containerDisk %s: %w", volume.Name, err)
		}
		if err := osdisk.VerifyImage(info); err != nil {
			return nil, fmt.Errorf("invalid image in containerDisk %s: %w", volume.Name, err)
		}
		disksInfo[volume.Name] = info
	}
	efiConf, err := efiConfiguration(vmi, ovmf)
	if err != nil {
		return nil, err
	}
	clusterConfig := options.GetClusterConfig()
	// The free page reporting and serial console log rules are manager.go's isFreePageReportingEnabled and
	// isSerialConsoleLogEnabled, which are not exported.
	freePageReporting := !clusterConfig.GetFreePageReportingDisabled() &&
		(vmi.Spec.Domain.Devices.AutoattachMemBalloon == nil || *vmi.Spec.Domain.Devices.AutoattachMemBalloon) &&
		!vmi.IsHighPerformanceVMI() && vmi.GetAnnotations()[v1.FreePageReportingDisabledAnnotation] != "true"
	logSerial := vmi.Spec.Domain.Devices.LogSerialConsole
	serialConsoleLog := (logSerial != nil && *logSerial) || (logSerial == nil && !clusterConfig.GetSerialConsoleLogDisabled())
	return &convertertypes.ConverterContext{
		Architecture:                    arch.NewConverter(runtime.GOARCH),
		VirtualMachine:                  vmi,
		AllowEmulation:                  !kvm,
		HypervisorDeviceAvailable:       kvm,
		IsBlockPVC:                      map[string]bool{},
		IsBlockDV:                       map[string]bool{},
		EFIConfiguration:                efiConf,
		UseVirtioTransitional:           vmi.Spec.Domain.Devices.UseVirtioTransitional != nil && *vmi.Spec.Domain.Devices.UseVirtioTransitional,
		PermanentVolumes:                permanent,
		HotplugVolumes:                  map[string]v1.VolumeStatus{},
		FreePageReporting:               freePageReporting,
		SerialConsoleLog:                serialConsoleLog,
		HypervisorName:                  v1.KvmHypervisorName, // virt-launcher's --hypervisor default
		ExpandDisksEnabled:              clusterConfig.GetExpandDisksEnabled(),
		SMBios:                          options.VirtualMachineSMBios,
		Topology:                        options.Topology,
		BochsForEFIGuests:               clusterConfig.GetBochsDisplayForEFIGuests(),
		PCINUMAAwareTopologyEnabled:     clusterConfig.GetPCINUMAAwareTopologyEnabled(),
		DomainAttachmentByInterfaceName: options.GetInterfaceDomainAttachment(),
		DisksInfo:                       disksInfo,
		// virt-launcher's --ephemeral-disk-dir default, /var/run/kubevirt-ephemeral-disks (cmd/virt-launcher/
		// virt-launcher.go); the converter only names the overlay there, virt-launcher's preStartHook creates it.
		EphemeraldiskCreator: ephemeraldisk.NewEphemeralDiskCreator(filepath.Join("/var/run/kubevirt-ephemeral-disks", "disk-data")),
	}, nil
}

// efiConfiguration is generateConverterContext's EFI branch for a VMI without SEV, SNP or TDX.
func efiConfiguration(vmi *v1.VirtualMachineInstance, ovmf string) (*convertertypes.EFIConfiguration, error) {
	if !vmi.IsBootloaderEFI() {
		return nil, nil
	}
	secureBoot := vmi.Spec.Domain.Firmware.Bootloader.EFI.SecureBoot == nil || *vmi.Spec.Domain.Firmware.Bootloader.EFI.SecureBoot
	env := efi.DetectEFIEnvironment(runtime.GOARCH, ovmf)
	if !env.Bootable(secureBoot, efi.None) {
		return nil, fmt.Errorf("EFI OVMF roms missing in %s for booting in EFI mode with SecureBoot=%v", ovmf, secureBoot)
	}
	return &convertertypes.EFIConfiguration{
		EFICode:      env.EFICode(secureBoot, efi.None),
		EFIVars:      env.EFIVars(secureBoot, efi.None),
		SecureLoader: secureBoot,
	}, nil
}
