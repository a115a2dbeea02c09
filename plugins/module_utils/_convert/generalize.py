# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Generalizing a Linux guest for other hardware, in one libguestfs (guestfish) run.

The work is one shell script run inside the guest (guestfish ``sh``: the guest's own tools, its
root mounted, /dev of the appliance bound in). Each change it makes is printed as ``VF-CHANGE: ...``
and each thing it could not do as ``VF-WARN: ...`` so the module can report them.
"""

from __future__ import annotations

import shlex

from .blockdev import mbr_entry

# Storage drivers of common physical machines; added where the guest's kernel has them.
GENERIC_STORAGE_MODULES = (
    "ahci", "ata_piix", "ata_generic", "pata_acpi", "sd_mod", "sr_mod", "nvme", "megaraid_sas", "mpt3sas",
    "hpsa", "aacraid", "virtio_blk", "virtio_scsi", "uas", "usb_storage", "mptsas", "vmw_pvscsi",
)

MARK = "# virtforge v2p"
# A guest with Debian's/Ubuntu's signed boot chain (shim-signed, grub-efi-amd64-signed) gets it on the
# removable path (shim as BOOTX64.EFI, the signed GRUB beside it), which boots with Secure Boot on or off;
# without those packages GRUB is installed unsigned (Secure Boot must be off)
SECURE_BOOT_PROBE = ("sb=''; [ -f /usr/lib/shim/shimx64.efi.signed ] && [ -d /usr/lib/grub/x86_64-efi-signed ]"
                     " && sb=--uefi-secure-boot")


def _q(text):
    return shlex.quote(str(text))


def _prologue(disk_sectors):
    """Helpers, and ``$gdisk``: the kernel's name of the guest's disk in the appliance.

    guestfish calls the first disk /dev/sda, but the appliance's kernel names disks in the order
    they come up: under load the appliance's own disk can be sda and the guest's sdb. The guest's
    disk is the one of ``disk_sectors`` sectors that is not the appliance's.
    """
    n = int(disk_sectors)
    return [
        "exec 2>&1",
        "change() { echo \"VF-CHANGE: $*\"; }",
        "warn() { echo \"VF-WARN: $*\"; }",
        "",
        "# --- the guest's disk (VF_ROOT: only for tests of this part)",
        "appl=$(readlink -f \"${VF_ROOT:-}\"/dev/disk/by-id/*_appliance 2>/dev/null | head -n 1)",
        "gdisk=''",
        "for b in \"${VF_ROOT:-}\"/sys/block/*; do",
        "  [ \"${VF_ROOT:-}/dev/${b##*/}\" = \"$appl\" ] && continue",
        "  [ \"$(cat \"$b/size\" 2>/dev/null)\" = %d ] || continue" % n,
        "  [ -z \"$gdisk\" ] || { echo \"VF-FAIL: two disks of %d sectors in the appliance: $gdisk, ${b##*/}\";"
        " exit 1; }" % n,
        "  gdisk=${b##*/}",
        "done",
        "[ -n \"$gdisk\" ] || { echo 'VF-FAIL: the guest disk (%d sectors) is not in the appliance'; exit 1; }" % n,
        "partdev() { for p in \"${VF_ROOT:-}\"/sys/block/$gdisk/$gdisk*; do"
        " [ \"$(cat \"$p/partition\" 2>/dev/null)\" = \"$1\" ] && { echo \"/dev/${p##*/}\"; return 0; }; done;"
        " return 1; }",
        "",
    ]


def _initramfs_lines(extra_modules=()):
    """The initramfs part: generic storage drivers in every kernel's initramfs.

    With initramfs-tools, each kernel's initramfs is listed first (``lsinitramfs``): when every wanted
    driver that kernel has is already in it (Debian's default ``MODULES=most`` puts them there), it is
    kept as it is and nothing is written. Otherwise ``MODULES=most`` and the drivers are written to the
    guest's initramfs configuration and every initramfs is regenerated. dracut guests are always
    regenerated with ``--no-hostonly`` (their default host-only images carry only the drivers of the
    hardware they were built on). Paths start with ``$VF_ROOT`` only for tests of this part.
    """
    # module names with "_" (as the listing below is normalized): modinfo takes either spelling
    modules = " ".join(_q(m.replace("-", "_")) for m in list(GENERIC_STORAGE_MODULES) + list(extra_modules))
    return [
        "# --- initramfs with generic storage drivers",
        "if [ -d \"${VF_ROOT:-}\"/etc/initramfs-tools ]; then",
        "  added=''; missing=''",
        "  for k in \"${VF_ROOT:-}\"/lib/modules/*; do",
        "    [ -d \"$k\" ] || continue",
        "    kver=${k##*/}",
        "    img=\"${VF_ROOT:-}/boot/initrd.img-$kver\"",
        "    have=' '",
        "    if [ -f \"$img\" ] && command -v lsinitramfs >/dev/null 2>&1; then",
        "      have=\" $(lsinitramfs \"$img\" 2>/dev/null"
        " | sed -n 's#.*/\\([^/]*\\)\\.ko\\(\\.[a-z]*\\)\\{0,1\\}$#\\1#p' | tr - _ | tr '\\n' ' ')\"",
        "    fi",
        "    for m in " + modules + "; do",
        "      f=$(modinfo -k \"$kver\" -F filename \"$m\" 2>/dev/null) || continue",
        "      case \" $added \" in *\" $m \"*) ;; *) added=\"$added $m\";; esac",
        "      [ \"$f\" = '(builtin)' ] && continue",
        "      case \"$have\" in *\" $m \"*) ;; *) missing=\"$missing $kver:$m\";; esac",
        "    done",
        "  done",
        "  if [ -z \"$missing\" ]; then",
        "    change \"initramfs kept: it already has every generic storage driver its kernel has:$added\"",
        "  else",
        "    mkdir -p \"${VF_ROOT:-}\"/etc/initramfs-tools/conf.d",
        "    printf '%s\\nMODULES=most\\n' " + _q(MARK)
        + " > \"${VF_ROOT:-}\"/etc/initramfs-tools/conf.d/virtforge-v2p.conf",
        "    touch \"${VF_ROOT:-}\"/etc/initramfs-tools/modules",
        "    sed -i '/^" + MARK + " begin/,/^" + MARK + " end/d' \"${VF_ROOT:-}\"/etc/initramfs-tools/modules",
        "    { echo " + _q(MARK + " begin") + "; for m in $added; do echo \"$m\"; done; echo " + _q(MARK + " end")
        + "; } >> \"${VF_ROOT:-}\"/etc/initramfs-tools/modules",
        "    change \"initramfs: MODULES=most, storage drivers:$added (missing before:$missing)\"",
        "    update-initramfs -u -k all >/tmp/vf-initramfs.log 2>&1 || { cat /tmp/vf-initramfs.log; echo 'VF-FAIL: "
        "update-initramfs'; exit 1; }",
        "    change 'initramfs regenerated for every installed kernel'",
        "  fi",
        "elif command -v dracut >/dev/null 2>&1; then",
        "  dracut --no-hostonly --force --regenerate-all >/tmp/vf-dracut.log 2>&1 || { cat /tmp/vf-dracut.log;"
        " echo 'VF-FAIL: dracut'; exit 1; }",
        "  change 'initramfs regenerated with dracut --no-hostonly'",
        "else",
        "  warn 'neither initramfs-tools nor dracut found: initramfs not regenerated'",
        "fi",
        "",
    ]


def guest_script(disk_sectors, extra_modules=(), serial_console=True, grow=None, esp=None):
    """The shell script run inside the guest.

    ``disk_sectors``: the size of the disk guestfish was given (to find it in the appliance).
    ``grow``: dict(number, entry_offset, sectors) to enlarge an MBR partition to the disk's end
    (the partition table entry is rewritten in place, the kernel told with partx, the ext2/3/4
    filesystem grown online with resize2fs).
    ``esp``: dict(number, entry_offset, start, sectors): an EFI system partition to add for UEFI
    firmware (see ``_esp_lines``).
    """
    lines = _prologue(disk_sectors) + _initramfs_lines(extra_modules) + [
        "# --- fstab by UUID",
        "if [ -f /etc/fstab ]; then",
        "  : > /tmp/vf-fstab",
        "  while IFS= read -r line; do",
        "    dev=$(printf '%s\\n' \"$line\" | awk '{print $1}')",
        "    case \"$dev\" in",
        "      /dev/sd*|/dev/vd*|/dev/hd*|/dev/xvd*)",
        "        app=''",
        "        case \"$dev\" in /dev/sda[1-9]*|/dev/vda[1-9]*|/dev/hda[1-9]*|/dev/xvda[1-9]*)"
        " app=$(partdev \"${dev##*da}\") || app='';; esac",
        "        uuid=$( [ -n \"$app\" ] && blkid -p -s UUID -o value \"$app\" 2>/dev/null || true)",
        "        if [ -n \"$uuid\" ]; then",
        "          line=$(printf '%s\\n' \"$line\" | sed \"s#^\\([[:space:]]*\\)$dev#\\1UUID=$uuid#\")",
        "          change \"fstab: $dev -> UUID=$uuid\"",
        "        else",
        "          warn \"fstab: no UUID found for $dev\"",
        "        fi;;",
        "    esac",
        "    printf '%s\\n' \"$line\" >> /tmp/vf-fstab",
        "  done < /etc/fstab",
        "  if ! cmp -s /tmp/vf-fstab /etc/fstab; then cat /tmp/vf-fstab > /etc/fstab; fi",
        "fi",
        "",
        "# --- persistent NIC names",
        "for f in /etc/udev/rules.d/70-persistent-net.rules /etc/udev/rules.d/75-persistent-net-generator.rules; do",
        "  if [ -e \"$f\" ]; then rm -f \"$f\"; change \"removed $f\"; fi",
        "done",
        "for f in /etc/systemd/network/*.link; do",
        "  [ -e \"$f\" ] || continue",
        "  if grep -qi '^[[:space:]]*MACAddress=' \"$f\"; then rm -f \"$f\"; change \"removed $f (NIC name pinned"
        " to a MAC)\"; fi",
        "done",
        "for f in /etc/systemd/network/*.network /etc/NetworkManager/system-connections/*; do",
        "  [ -e \"$f\" ] || continue",
        "  if grep -qiE '^[[:space:]]*(MACAddress|mac-address)=' \"$f\"; then warn \"$f matches a NIC by MAC"
        " address: it will not match the new hardware\"; fi",
        "done",
        "if [ -f /etc/network/interfaces ] && grep -qE '^(auto|iface|allow-hotplug) +(eth|ens|enp|eno)' "
        "/etc/network/interfaces; then",
        "  warn '/etc/network/interfaces names NICs explicitly: names differ on other hardware'",
        "fi",
    ]
    lines += ["", "# --- serial console"]
    if not serial_console:
        lines += [
            "if [ -f /etc/default/grub ]; then",
            "  if grep -q 'console=ttyS' /etc/default/grub; then",
            "    sed -i -E 's/ ?console=ttyS[^ \"]*//g' /etc/default/grub",
            "    change 'grub: serial console removed from the kernel command line'",
            "  fi",
            "fi",
        ]
    else:
        lines += ["grep -q 'console=ttyS' /etc/default/grub 2>/dev/null && echo 'VF-INFO: serial console kept'"]
    lines += [
        "",
        "# --- bootloader by UUID",
        "if [ -f /etc/default/grub ] && grep -q '^GRUB_DISABLE_LINUX_UUID=true' /etc/default/grub; then",
        "  sed -i 's/^GRUB_DISABLE_LINUX_UUID=true/#&/' /etc/default/grub",
        "  change 'grub: root by UUID (GRUB_DISABLE_LINUX_UUID disabled)'",
        "fi",
        "if command -v update-grub >/dev/null 2>&1; then",
        "  update-grub >/tmp/vf-grub.log 2>&1 || { cat /tmp/vf-grub.log; echo 'VF-FAIL: update-grub'; exit 1; }",
        "  change 'grub configuration regenerated (root=UUID)'",
        "elif command -v grub2-mkconfig >/dev/null 2>&1; then",
        "  grub2-mkconfig -o /boot/grub2/grub.cfg >/tmp/vf-grub.log 2>&1 || { cat /tmp/vf-grub.log;"
        " echo 'VF-FAIL: grub2-mkconfig'; exit 1; }",
        "  change 'grub configuration regenerated'",
        "else",
        "  warn 'no grub tools: bootloader configuration left as it was'",
        "fi",
    ]
    lines += _grow_lines(grow) + _esp_lines(esp)
    lines += ["sync", "echo VF-DONE"]
    return "\n".join(lines) + "\n"


def layout_script(grow, esp, disk_sectors):
    """Only the partition growth and the EFI system partition (O(generalize=false))."""
    lines = _prologue(disk_sectors) + _grow_lines(grow) + _esp_lines(esp) + ["sync", "echo VF-DONE"]
    return "\n".join(lines) + "\n"


def _esp_lines(esp):
    """Add an EFI system partition to ``$gdisk``'s MBR and install GRUB for UEFI on the removable path.

    The guest needs GRUB's x86_64-efi modules (Debian/Ubuntu: grub-efi-amd64-bin) and mkfs.fat
    (dosfstools); without them the run fails before anything is copied. The new primary entry (type
    0xef) is written in place and read back, the kernel told with partx; the partition gets a FAT32
    filesystem, ``grub-install --target=x86_64-efi --removable --no-nvram`` writes
    ``EFI/BOOT/BOOTX64.EFI`` (the path firmware boots without a boot entry in its NVRAM: a new
    machine has none), and fstab mounts it on /boot/efi by UUID. The MBR boot code is not touched:
    the disk still boots with BIOS firmware too.
    """
    if not esp:
        return []
    if esp.get("existing"):
        return _existing_esp_lines(int(esp["number"]))
    number, start, sectors = int(esp["number"]), int(esp["start"]), int(esp["sectors"])
    fail = "{ echo \"VF-FAIL: EFI system partition: %s\"; exit 1; }"
    lines = [
        "",
        "# --- EFI system partition %d and GRUB for UEFI on the removable path" % number,
        "[ -d /usr/lib/grub/x86_64-efi ] || " + fail % "the guest has no GRUB modules for UEFI"
        " (/usr/lib/grub/x86_64-efi; Debian and Ubuntu: install grub-efi-amd64-bin in the source)",
        "command -v grub-install >/dev/null 2>&1 || " + fail % "the guest has no grub-install",
        "command -v mkfs.fat >/dev/null 2>&1 || "
        + fail % "the guest has no mkfs.fat (install dosfstools in the source)",
    ]
    if esp.get("table") != "gpt":   # a GPT was written whole before this script ran
        offset = int(esp["entry_offset"])
        entry = mbr_entry(0xEF, start, sectors)
        octets = "".join("\\%03o" % b for b in entry)
        lines += [
            "printf '%s' | dd of=/dev/$gdisk bs=1 seek=%d count=16 conv=notrunc status=none || " % (octets, offset)
            + fail % "writing the partition table entry of /dev/$gdisk",
            "sync",
            "written=$(od -An -tx1 -j %d -N 16 /dev/$gdisk | tr -d ' \\n')" % offset,
            "[ \"$written\" = %s ] || " % entry.hex() + fail % "the entry reads back as $written",
        ]
    return lines + [
        "partx -a -n %d /dev/$gdisk >/dev/null 2>&1 || partx -u -n %d /dev/$gdisk" % (number, number),
        "esp=$(partdev %d) || " % number + fail % "the kernel has no partition %d on /dev/$gdisk" % number,
        "[ \"$(cat /sys/class/block/${esp#/dev/}/size 2>/dev/null)\" = %d ] || " % sectors
        + fail % "the kernel does not see $esp with %d sectors" % sectors,
        "mkfs.fat -F 32 -n EFI \"$esp\" >/tmp/vf-esp.log 2>&1 || { cat /tmp/vf-esp.log; "
        "echo 'VF-FAIL: EFI system partition: mkfs.fat'; exit 1; }",
        "mkdir -p /boot/efi",
        "mount -t vfat \"$esp\" /boot/efi || " + fail % "mounting $esp on /boot/efi",
    ] + _grub_efi_removable_lines(lambda reason: "{ umount /boot/efi; %s; }" % (fail % reason)) + [
        "umount /boot/efi",
        "uuid=$(blkid -p -s UUID -o value \"$esp\")",
        "[ -n \"$uuid\" ] || " + fail % "no UUID on $esp",
        "sed -i '\\|^[^#]*[[:space:]]/boot/efi[[:space:]]|d' /etc/fstab",
        "printf 'UUID=%s /boot/efi vfat umask=0077 0 1\\n' \"$uuid\" >> /etc/fstab",
        "change \"EFI system partition %d (%d MiB, FAT32, UUID $uuid) at sector %d, mounted on /boot/efi by"
        " fstab\"" % (number, sectors // 2048, start),
        "change 'GRUB for UEFI installed (EFI/BOOT/BOOTX64.EFI, the removable-media path); BIOS boot code kept'",
    ]


def _grub_efi_removable_lines(failing):
    """GRUB for UEFI on the removable-media path of the ESP mounted on /boot/efi, with the guest's own
    grub-install; the signed chain (shim as BOOTX64.EFI, Debian's signed GRUB) when the guest has both.
    ``failing(reason)`` is the shell group that undoes what the caller mounted and fails the run."""
    return [
        SECURE_BOOT_PROBE,
        "grub-install --target=x86_64-efi --efi-directory=/boot/efi --removable --no-nvram $sb"
        " >/tmp/vf-grub-efi.log 2>&1 || { cat /tmp/vf-grub-efi.log; %s; }" % failing("grub-install"),
        "[ -f /boot/efi/EFI/BOOT/BOOTX64.EFI ] || " + failing("grub-install wrote no EFI/BOOT/BOOTX64.EFI"),
        "[ -z \"$sb\" ] || change 'signed chain for Secure Boot: shim as BOOTX64.EFI, signed GRUB'",
    ]


def _existing_esp_lines(number):
    """An image with an EFI system partition of its own keeps it and its boot loader; firmware without
    a boot entry for it (any other machine's NVRAM) boots EFI/BOOT/BOOTX64.EFI, so that file must be
    there: when it is missing, GRUB for UEFI is installed on that path too (the guest's own grub-install),
    and without GRUB's UEFI modules the run fails before anything is copied."""
    fail = ("{ [ -z \"$mounted\" ] || umount /boot/efi; echo \"VF-FAIL: EFI system partition %d: %%s\"; exit 1; }"
            % number)
    return [
        "",
        "# --- the image's own EFI system partition %d: its loader on the removable-media path" % number,
        "esp=$(partdev %d) || " % number + fail % "the kernel has no partition %d on /dev/$gdisk" % number,
        "mkdir -p /boot/efi",
        "mounted=''",
        "# guestfish mounted it already when the guest's fstab names it",
        "if ! mountpoint -q /boot/efi; then",
        "  mount -t vfat \"$esp\" /boot/efi || " + fail % "mounting $esp on /boot/efi",
        "  mounted=1",
        "fi",
        "if [ -f /boot/efi/EFI/BOOT/BOOTX64.EFI ] || [ -f /boot/efi/EFI/BOOT/bootx64.efi ]; then",
        "  change 'EFI system partition %d kept: it has EFI/BOOT/BOOTX64.EFI (the removable-media path)'" % number,
        "else",
        "  [ -d /usr/lib/grub/x86_64-efi ] && command -v grub-install >/dev/null 2>&1 || "
        + fail % "no EFI/BOOT/BOOTX64.EFI and no GRUB for UEFI to put there (Debian and Ubuntu: grub-efi-amd64-bin)",
    ] + ["  " + line for line in _grub_efi_removable_lines(lambda reason: fail % reason)] + [
        "  change 'GRUB for UEFI installed on the removable-media path of EFI system partition %d' "
        "'(EFI/BOOT/BOOTX64.EFI: firmware without a boot entry boots it)'" % number,
        "fi",
        "[ -z \"$mounted\" ] || umount /boot/efi || " + fail % "unmounting /boot/efi",
    ]


def _grow_lines(grow):
    """Grow the last partition of ``$gdisk`` and its ext2/3/4 filesystem, inside the appliance.

    An MBR entry is written in place and read back (a GPT was written before the script ran, see
    ``guestfish_script``); the kernel is told with partx (the root is
    mounted, so no re-read of the whole table); the kernel's view is checked before the filesystem
    is grown. Any mismatch fails the run (and the module checks the entry once more on the overlay).
    """
    if not grow:
        return []
    number, sectors = int(grow["number"]), int(grow["sectors"])
    fail = "{ echo \"VF-FAIL: grow partition %d: %%s\"; exit 1; }" % number
    lines = [
        "",
        "# --- grow the last partition and its filesystem",
        "part=$(partdev %d) || " % number + fail % "no partition %d on /dev/$gdisk" % number,
    ]
    if grow.get("table") != "gpt":   # a GPT was written whole before this script ran
        offset = int(grow["entry_offset"])
        octets = "".join("\\%03o" % b for b in sectors.to_bytes(4, "little"))
        lines += [
            "printf '%s' | dd of=/dev/$gdisk bs=1 seek=%d count=4 conv=notrunc status=none || " % (octets, offset)
            + fail % "writing the partition table entry of /dev/$gdisk",
            "sync",
            "written=$(od -An -tu4 -j %d -N 4 /dev/$gdisk | tr -d ' ')" % offset,
            "[ \"$written\" = %d ] || " % sectors + fail % "the entry reads back as $written",
        ]
    return lines + [
        "partx -u -n %d /dev/$gdisk || resizepart /dev/$gdisk %d %d" % (number, number, sectors),
        "[ \"$(cat /sys/class/block/${part#/dev/}/size 2>/dev/null)\" = %d ] || " % sectors
        + fail % "the kernel did not take the new size of $part",
        "fstype=$(blkid -p -s TYPE -o value \"$part\")",
        "case \"$fstype\" in",
        "  ext2|ext3|ext4) resize2fs \"$part\" >/tmp/vf-resize.log 2>&1 || { cat /tmp/vf-resize.log;"
        " echo 'VF-FAIL: resize2fs'; exit 1; }",
        "    change \"partition %d grown to %d sectors, $fstype filesystem grown\";;" % (number, sectors),
        "  *) change \"partition %d grown to %d sectors\"; warn \"filesystem ${fstype:-(none found)} on partition %d"
        " not grown\";;" % (number, sectors, number),
        "esac",
    ]


def guestfish_script(script_path, uploads=()):
    """guestfish commands (after ``-i``): upload the script, run it with the guest's shell, remove it.

    ``uploads``: (local file, byte offset) pairs written onto the guest's disk first (a GPT's new
    tables); the script then tells the kernel about the partitions that changed.
    The script's exit status is printed rather than returned: guestfish drops a failed command's
    output, and that output is what says what went wrong.
    """
    return "\n".join(["upload-offset %s /dev/sda %d" % (path, int(offset)) for path, offset in uploads] + [
        "upload %s /tmp/virtforge-generalize.sh" % script_path,
        "sh \"/bin/sh /tmp/virtforge-generalize.sh || echo VF-EXIT: $?\"",
        "rm-f /tmp/virtforge-generalize.sh",
        "",
    ])


def parse_output(out):
    changes, warnings = [], []
    done = False
    for line in (out or "").splitlines():
        line = line.strip()
        if line.startswith("VF-CHANGE: "):
            changes.append(line[len("VF-CHANGE: "):])
        elif line.startswith("VF-WARN: "):
            warnings.append(line[len("VF-WARN: "):])
        elif line == "VF-DONE":
            done = True
    return changes, warnings, done
