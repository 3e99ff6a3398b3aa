package translate

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// VMName is the VirtualMachine name of a CloudStack Instance: its internal name, lower-cased
// (i-2-45-VM -> i-2-45-vm). The name is deterministic, so every action finds the VM without stored state.
func VMName(instanceName string) (string, error) {
	if instanceName == "" {
		return "", fmt.Errorf("the payload names no Instance (virtualmachinename is missing)")
	}
	name := strings.ToLower(instanceName)
	if msg := dns1123Label(name); msg != "" {
		return "", fmt.Errorf("instance name %q cannot name a VirtualMachine: %s", instanceName, msg)
	}
	return name, nil
}

// RootDiskName and ISODiskName name the DataVolumes of an Instance; they share the VM's name as a prefix so
// kubectl lists them together.
func RootDiskName(vmName string) string { return vmName + "-root" }

// ISODiskName names the DataVolume an ISO is imported into.
func ISODiskName(vmName string) string { return vmName + "-iso" }

// dns1123Label returns why s is not a DNS-1123 label (VM names end up as pod labels and host names), or "".
func dns1123Label(s string) string {
	if errs := validation.IsDNS1123Label(s); len(errs) > 0 {
		return strings.Join(errs, "; ")
	}
	return ""
}

// labelValue returns why s cannot be a label value, or "".
func labelValue(s string) string {
	if errs := validation.IsValidLabelValue(s); len(errs) > 0 {
		return strings.Join(errs, "; ")
	}
	return ""
}

// dns1123Subdomain returns why s is not a DNS-1123 subdomain (most object names), or "".
func dns1123Subdomain(s string) string {
	if errs := validation.IsDNS1123Subdomain(s); len(errs) > 0 {
		return strings.Join(errs, "; ")
	}
	return ""
}
