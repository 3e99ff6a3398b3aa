package boot

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
)

// report is what the probe guest's init printed on the serial console (hack/boot-guest.sh), parsed.
type report struct {
	loader     string // syslinux (BIOS) or grub (UEFI), from the kernel command line the loader passed
	firmware   string // bios or uefi
	secureBoot string // 1 when enforcing, 0 when not, none under BIOS
	uuid       string // SMBIOS system UUID
	smbios     map[string]string
	cpus       []cpu
	presentKiB int64 // the memory the kernel was handed
	nics       []nic
	disks      []disk
	complete   bool // init reached its end
}

type cpu struct{ pkg, core, siblings string }

type nic struct{ name, mac, driver string }

type disk struct{ name, bus, driver, medium string }

// sockets, cores per socket and threads per core, from the CPUs' topology.
func (r report) topology() (sockets, cores, threads int) {
	pkgs, coresOf, sibs := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, c := range r.cpus {
		pkgs[c.pkg] = true
		coresOf[c.pkg+"/"+c.core] = true
		sibs[c.siblings] = true
	}
	if len(r.cpus) == 0 {
		return 0, 0, 0
	}
	return len(pkgs), len(coresOf) / len(pkgs), len(r.cpus) / len(coresOf)
}

// bootDisks are the block devices holding one of the probe's boot media (its disk's marker or its ISO's volume
// id); a VM the extension made has exactly one, the device it booted from.
func (r report) bootDisks() []disk {
	var out []disk
	for _, d := range r.disks {
		if d.medium != "none" {
			out = append(out, d)
		}
	}
	return out
}

func parseReport(log string) (report, error) {
	r := report{smbios: map[string]string{}}
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		line := strings.TrimSpace(strings.TrimRight(sc.Text(), "\r"))
		i := strings.Index(line, "probe: ")
		if i < 0 {
			continue
		}
		fields := strings.Fields(line[i+len("probe: "):])
		if len(fields) == 0 {
			continue
		}
		kv := keyValues(fields[1:])
		switch {
		case fields[0] == "cmdline":
			for _, f := range fields[1:] {
				if v, ok := strings.CutPrefix(f, "probe.loader="); ok {
					r.loader = v
				}
			}
		case strings.HasPrefix(fields[0], "firmware="):
			kv = keyValues(fields)
			r.firmware, r.secureBoot = kv["firmware"], kv["secureboot"]
		case fields[0] == "smbios":
			r.uuid = strings.ToLower(kv["uuid"])
			r.smbios = kv
		case fields[0] == "cpu" && len(fields) > 1:
			r.cpus = append(r.cpus, cpu{kv["package"], kv["core"], kv["siblings"]})
		case fields[0] == "memory":
			n, err := strconv.ParseInt(kv["present_kib"], 10, 64)
			if err != nil {
				return r, fmt.Errorf("probe's memory line %q: %w", line, err)
			}
			r.presentKiB = n
		case fields[0] == "nic" && len(fields) > 1:
			r.nics = append(r.nics, nic{fields[1], strings.ToLower(kv["mac"]), kv["driver"]})
		case fields[0] == "disk" && len(fields) > 1:
			r.disks = append(r.disks, disk{fields[1], kv["bus"], kv["driver"], kv["medium"]})
		case fields[0] == "end":
			r.complete = true
		}
	}
	if !r.complete {
		return r, fmt.Errorf("the probe guest never reported its end")
	}
	return r, nil
}

// keyValues reads key=value fields; a value may continue over the following fields until the next key (SMBIOS
// strings have spaces), and quotes are dropped.
func keyValues(fields []string) map[string]string {
	kv := map[string]string{}
	last := ""
	for _, f := range fields {
		if k, v, ok := strings.Cut(f, "="); ok && !strings.ContainsAny(k, `"`) {
			last = k
			kv[k] = strings.Trim(v, `"`)
			continue
		}
		if last != "" {
			kv[last] = strings.Trim(kv[last]+" "+f, `"`)
		}
	}
	return kv
}
