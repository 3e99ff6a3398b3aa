#!/usr/bin/env bash
# Builds the probe guest the boot tests (test/boot) start under libvirt: a small Linux whose init prints to the
# serial console and the screen what it sees (firmware, Secure Boot, SMBIOS, vCPUs and their topology, memory,
# each NIC's MAC and driver, each disk's bus and whether it holds the probe's boot medium), then idles.
#
#   hack/boot-guest.sh <dir>     writes <dir>/disk.img (64 MiB, MBR, one FAT partition that boots with syslinux
#                                under BIOS and with shim + GRUB under UEFI, Secure Boot included) and <dir>/probe.iso
#                                (isolinux for BIOS, the same FAT image as its El Torito EFI image for UEFI)
#
# Nothing is mounted: mtools, syslinux's mtools installer and xorriso write the images. The kernel, busybox, shim
# and GRUB come from Debian 12's signed packages, downloaded (apt-get download) and unpacked, never installed,
# into a cache outside the work tree. Needs: apt-get, dpkg-deb, mtools, dosfstools, fdisk (sfdisk), cpio, kmod
# (depmod), syslinux, syslinux-common, isolinux, xorriso.
set -euo pipefail

out=${1:?usage: hack/boot-guest.sh <output dir>}
cache="${XDG_CACHE_HOME:-$HOME/.cache}/cloudstack-kubevirt/boot-guest"
debs="$cache/debs"
mkdir -p "$out" "$debs"

# The guest's markers: init reads them back from each block device to say which one holds the boot medium.
disk_marker=CSKV-PROBE-BOOT-DISK
iso_volid=CSKV_PROBE_ISO

fetch() { # fetch <package>: the .deb of <package> in $debs, downloaded once
  local f
  f=$(ls "$debs/$1"_*.deb 2>/dev/null | head -1 || true)
  if [ -z "$f" ]; then
    (cd "$debs" && apt-get download -q "$1" >/dev/null 2>&1) || { echo "boot-guest: apt-get download $1 failed (apt-get update?)" >&2; exit 1; }
    f=$(ls "$debs/$1"_*.deb | head -1)
  fi
  echo "$f"
}

kernel_package() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}'; }
kernel_pkg=$(kernel_package)
if [ -z "$kernel_pkg" ] && [ "$(id -u)" = 0 ]; then
  apt-get update -qq # a fresh machine may have no package lists yet
  kernel_pkg=$(kernel_package)
fi
[ -n "$kernel_pkg" ] || { echo "boot-guest: apt-cache knows no linux-image-amd64: run apt-get update" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for p in "$kernel_pkg" busybox-static shim-signed grub-efi-amd64-signed; do
  dpkg-deb -x "$(fetch "$p")" "$work/pkgs"
done
kver=${kernel_pkg#linux-image-}

# The initramfs: busybox, the init below, and the modules for every disk bus and NIC model KubeVirt offers on x86.
root="$work/root"
mkdir -p "$root"/{bin,dev,proc,sys,lib/modules}
cp "$work/pkgs/bin/busybox" "$root/bin/busybox"
modules="virtio_pci virtio_blk virtio_scsi virtio_net virtio_balloon virtio_input virtio_rng e1000 e1000e igb 8139cp 8139too ne2k-pci pcnet32 ahci sd_mod sr_mod efivarfs"
mods="$work/pkgs/lib/modules/$kver"
mkdir -p "$root/lib/modules/$kver"
cp "$mods/modules.order" "$mods/modules.builtin" "$mods/modules.builtin.modinfo" "$root/lib/modules/$kver/" 2>/dev/null || true
depmod -b "$work/pkgs" "$kver" # a .deb ships no modules.dep: dpkg's trigger makes it
need=$(for m in $modules; do modprobe -d "$work/pkgs" -S "$kver" --show-depends "$m" | awk '$1=="insmod"{print $2}'; done | sort -u)
for f in $need; do
  rel=${f#"$work/pkgs/"}
  mkdir -p "$root/$(dirname "$rel")"
  cp "$f" "$root/$rel"
done
depmod -b "$root" "$kver"

cat >"$root/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $modules; do modprobe -q "\$m" 2>/dev/null; done
[ -d /sys/firmware/efi/efivars ] && mount -t efivarfs efivarfs /sys/firmware/efi/efivars
# Devices probe asynchronously: give the NICs and disks a moment to appear.
sleep 1
# Each line goes to the serial console, which the tests read, and to the screen, which the VNC console shows.
say() { echo "probe: \$*"; echo "probe: \$*" >/dev/tty0 2>/dev/null; }
say begin kernel=\$(uname -r) uptime=\$(cut -d' ' -f1 /proc/uptime)s
say cmdline \$(cat /proc/cmdline)
if [ -d /sys/firmware/efi ]; then
  # An efivarfs file is 4 bytes of attributes, then the value: SecureBoot is one byte, 1 when enforcing.
  sb=\$(dd if=/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c bs=1 skip=4 count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
  say firmware=uefi secureboot=\${sb:-none}
else
  say firmware=bios secureboot=none
fi
say smbios uuid=\$(cat /sys/class/dmi/id/product_uuid) manufacturer="\$(cat /sys/class/dmi/id/sys_vendor)" product="\$(cat /sys/class/dmi/id/product_name)" family="\$(cat /sys/class/dmi/id/product_family)"
for c in /sys/devices/system/cpu/cpu[0-9]*; do
  say cpu \${c##*/} package=\$(cat \$c/topology/physical_package_id) core=\$(cat \$c/topology/core_id) siblings=\$(cat \$c/topology/thread_siblings_list)
done
ram=0
for r in \$(grep ' : System RAM' /proc/iomem | cut -d' ' -f1 | tr -d ' '); do
  ram=\$((ram + 0x\${r#*-} - 0x\${r%-*} + 1))
done
# The kernel's "Memory: <available>K/<present>K": present counts every page the firmware handed over, which is the
# guest's memory less what the firmware keeps (more under UEFI); /proc/iomem's System RAM for comparison.
say memory systemram=\$ram present_kib=\$(dmesg | sed -n 's/.*Memory: [0-9]*K\/\([0-9]*\)K.*/\1/p' | head -1)
for n in /sys/class/net/*; do
  [ "\${n##*/}" = lo ] && continue
  say nic \${n##*/} mac=\$(cat \$n/address) driver=\$(basename \$(readlink \$n/device/driver))
done
for b in /sys/block/*; do
  d=\${b##*/}
  case \$d in loop*|ram*) continue;; esac
  path=\$(readlink -f \$b/device)
  # SATA disks sit under an ata port, SCSI disks (virtio-scsi's too) under a host and target, virtio-blk directly
  # under its virtio device.
  case \$path in
    */ata[0-9]*) bus=sata;;
    */host[0-9]*/target*) bus=scsi;;
    */virtio[0-9]*) bus=virtio;;
    *) bus=other;;
  esac
  [ -e \$b/device/driver ] && driver=\$(basename \$(readlink \$b/device/driver)) || driver=none
  medium=none
  dd if=/dev/\$d bs=512 skip=1 count=1 2>/dev/null | grep -q $disk_marker && medium=disk
  dd if=/dev/\$d bs=2048 skip=16 count=1 2>/dev/null | grep -q $iso_volid && medium=iso
  say disk \$d bus=\$bus driver=\$driver sectors=\$(cat \$b/size) medium=\$medium
done
say end
# Stay up, as a guest does: the domain ends when KubeVirt's VMI does (the tests destroy it then).
while :; do sleep 3600; done
EOF
chmod 0755 "$root/init"
(cd "$root" && find . | sort | cpio -o -H newc --quiet -R 0:0) | gzip -1 >"$work/initrd.img"
cp "$work/pkgs/boot/vmlinuz-$kver" "$work/vmlinuz"

# Both loaders boot the same kernel, and write to the serial console too; the command line says which loader did.
# console=ttyS0 is KubeVirt's serial console (serial0, autoattached); quiet keeps the log to what the assertions
# read.
append="console=ttyS0,115200 quiet loglevel=3 panic=-1"
cat >"$work/syslinux.cfg" <<EOF
SERIAL 0 115200
DEFAULT probe
TIMEOUT 0
PROMPT 0
LABEL probe
  KERNEL /vmlinuz
  APPEND initrd=/initrd.img $append probe.loader=syslinux
EOF
cat >"$work/grub.cfg" <<EOF
serial --unit=0 --speed=115200
terminal_output serial console
echo "GRUB: booting the probe"
set timeout=0
set default=0
menuentry probe {
  linux /vmlinuz $append probe.loader=grub
  initrd /initrd.img
}
EOF

# The FAT file system: syslinux for BIOS, shim (BOOTX64.EFI, signed by Microsoft's UEFI CA) and Debian's signed
# GRUB beside it for UEFI. Debian's GRUB reads /EFI/debian/grub.cfg (its prefix), else grub.cfg next to itself.
fat="$work/fat.img"
mkfs.fat -C -n PROBE "$fat" $((32 * 1024)) >/dev/null
syslinux --install "$fat"
export MTOOLS_SKIP_CHECK=1
mmd -i "$fat" ::/EFI ::/EFI/BOOT ::/EFI/debian
mcopy -i "$fat" "$work/pkgs/usr/lib/shim/shimx64.efi.signed" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$fat" "$work/pkgs/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed" ::/EFI/BOOT/grubx64.efi
mcopy -i "$fat" "$work/grub.cfg" ::/EFI/BOOT/grub.cfg
mcopy -i "$fat" "$work/grub.cfg" ::/EFI/debian/grub.cfg
mcopy -i "$fat" "$work/syslinux.cfg" ::/syslinux.cfg
mcopy -i "$fat" "$work/vmlinuz" "$work/initrd.img" ::/

# The disk: an MBR with syslinux's boot code, the marker in LBA 1, and the FAT file system as partition 1 (active).
disk="$work/disk.img"
truncate -s 64M "$disk"
printf 'label: dos\nstart=2048, type=ef, bootable\n' | sfdisk -q "$disk"
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$disk" bs=440 count=1 conv=notrunc status=none
printf '%s' "$disk_marker" | dd of="$disk" bs=512 seek=1 conv=notrunc status=none
dd if="$fat" of="$disk" bs=1M seek=1 conv=notrunc status=none

# The ISO: isolinux for BIOS, the FAT image as the EFI boot image, and the kernel and initramfs as files.
iso="$work/iso"
mkdir -p "$iso/isolinux"
cp /usr/lib/ISOLINUX/isolinux.bin /usr/lib/syslinux/modules/bios/ldlinux.c32 "$iso/isolinux/"
cp "$work/syslinux.cfg" "$iso/isolinux/isolinux.cfg"
cp "$work/vmlinuz" "$work/initrd.img" "$iso/"
cp "$fat" "$iso/efi.img"
# GRUB started from the El Torito image looks for its configuration on the CD itself: Debian's signed GRUB searches
# for /.disk/info and then reads /boot/grub/grub.cfg there.
mkdir -p "$iso/.disk" "$iso/boot/grub" "$iso/EFI/debian"
echo "cloudstack-kubevirt probe" >"$iso/.disk/info"
cp "$work/grub.cfg" "$iso/boot/grub/grub.cfg"
cp "$work/grub.cfg" "$iso/EFI/debian/grub.cfg"
xorriso -as mkisofs -quiet -V "$iso_volid" -o "$work/probe.iso" \
  -b isolinux/isolinux.bin -c isolinux/boot.cat -no-emul-boot -boot-load-size 4 -boot-info-table \
  -eltorito-alt-boot -e efi.img -no-emul-boot "$iso" 2>/dev/null

mv "$disk" "$out/disk.img"
mv "$work/probe.iso" "$out/probe.iso"
echo "boot-guest: $out/disk.img and $out/probe.iso (kernel $kver)"
