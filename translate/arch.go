package translate

import (
	"fmt"
	"strings"

	kubevirtv1 "kubevirt.io/api/core/v1"
)

// arch is what KubeVirt accepts on one guest architecture, for the choices the translator makes itself.
type arch struct {
	// name is KubeVirt's spec.template.spec.architecture.
	name string
	// efiOnly: KubeVirt refuses BIOS boot and UEFI Secure Boot, and defaults to EFI without Secure Boot
	// (KubeVirt v1.8.0 pkg/virt-api/webhooks/arm64.go validateBootOptions, pkg/defaults/arm64.go).
	efiOnly bool
	// noSATA: KubeVirt refuses the sata bus for disks and CD-ROMs (arm64.go validateDiskBus).
	noSATA bool
	// cdromBus is the CD-ROM bus the translator sets. KubeVirt refuses virtio for a CD-ROM on every
	// architecture (pkg/storage/admitters/disks.go), so where sata is refused it must be scsi.
	cdromBus kubevirtv1.DiskBus
}

// archOf turns CloudStack's template architecture into what KubeVirt runs.
func archOf(cloudstack string) (arch, error) {
	switch strings.ToLower(cloudstack) {
	case "":
		// No arch in the payload (CloudStack before 4.20): KubeVirt's VM mutator fills the cluster's default
		// architecture, amd64 unless the operator changed it.
		return arch{cdromBus: kubevirtv1.DiskBusSATA}, nil
	case "x86_64":
		return arch{name: "amd64", cdromBus: kubevirtv1.DiskBusSATA}, nil
	case "aarch64":
		return arch{name: "arm64", efiOnly: true, noSATA: true, cdromBus: kubevirtv1.DiskBusSCSI}, nil
	case "s390x":
		// scsi as on arm64: KubeVirt's s390x default CD-ROM bus is virtio too (pkg/defaults/s390x.go).
		return arch{name: "s390x", cdromBus: kubevirtv1.DiskBusSCSI}, nil
	}
	return arch{}, fmt.Errorf("template architecture %q is not one KubeVirt runs (x86_64, aarch64, s390x)", cloudstack)
}
