#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: v2p
short_description: Write a guest image onto a physical disk (block device) so it boots on other hardware
version_added: 0.1.0
description:
  - V2P - the reverse of P2V. Writes a virtual machine's disk image onto a block device (a physical disk)
    so the system boots on real hardware.
  - The source image is never modified. The module works on a temporary qcow2 overlay of it, generalizes the
    guest in that overlay in one libguestfs run, copies the overlay with C(qemu-img convert -O raw) to the
    device, and verifies the written range against the overlay with C(qemu-img compare).
  - Generalization (Linux guests with initramfs-tools or dracut) - every kernel's initramfs must hold the
    generic storage drivers (AHCI, PIIX/IDE, NVMe, SCSI HBA drivers where the kernel has them). With
    initramfs-tools each initramfs is listed first; one that already holds them all is kept, otherwise
    C(MODULES=most) and the drivers are configured and every initramfs is regenerated. dracut images are
    regenerated with C(--no-hostonly);
    C(/etc/fstab) entries naming C(/dev/sdX)/C(/dev/vdX) are rewritten by UUID; the GRUB configuration is
    regenerated with the root by UUID; persistent NIC naming rules (C(70-persistent-net.rules), C(.link)
    files pinned to a MAC) are removed; the serial console is kept unless O(serial_console=false).
    Every change made inside the guest is returned in RV(guest_changes).
  - For UEFI machines (O(firmware=efi)) an image without an EFI system partition gets one (FAT32,
    O(esp_size_mib)) - a new primary partition in an MBR, or a new entry in a GPT - at the device's end when
    O(grow_last_partition) is set (the last partition then grows up to it), otherwise right after the
    image's partitions - and C(grub-install --target=x86_64-efi
    --removable --no-nvram) puts GRUB on the removable-media path C(EFI/BOOT/BOOTX64.EFI), the file UEFI
    firmware boots when its NVRAM has no boot entry for the disk (a new machine has none). C(/etc/fstab)
    mounts the partition on C(/boot/efi) by UUID. The MBR's boot code is kept, so the disk boots with BIOS
    firmware too. The guest must have GRUB's UEFI modules (Debian/Ubuntu C(grub-efi-amd64-bin)) and
    C(mkfs.fat) (C(dosfstools)); without them the run fails before anything is written to the device.
    An image that already boots with UEFI keeps its EFI system partition and boot loader; only a missing
    C(EFI/BOOT/BOOTX64.EFI) is added (GRUB for UEFI on the removable path).
  - GPT images - both tables (primary and backup, with their CRC32s) are read and rewritten by the module;
    the new backup table goes into the device's last sectors, so the whole device is written. Both tables
    are read back from the overlay and checked before anything reaches the device.
  - Refuses a device that is mounted, held (device-mapper, RAID, LVM), used as swap, a disk of a libvirt
    domain, open exclusively by another program, or smaller than the image's virtual size. Never
    overwrites a device that has a partition table unless O(force=true).
  - After a successful write, a record (source identity, options, sha256 of the written range) is kept in
    O(record_dir); a later run with the same source and options finds the device content unchanged
    (by checksum) and reports no change.
  - Without hardware virtualization libguestfs runs with E(LIBGUESTFS_BACKEND_SETTINGS=force_tcg); the
    generalization then takes minutes when an initramfs has to be rebuilt inside the emulated appliance.
  - Works with C(async); O(log_path) gets one line per phase.
author:
  - virtforge.libvirt contributors (@virtforge)
extends_documentation_fragment:
  - virtforge.libvirt.libvirt
options:
  src:
    description: The guest's disk image (qcow2, raw, vmdk...). Only read.
    type: path
    required: true
  src_format:
    description: Format of O(src); detected when not set.
    type: str
    choices: [qcow2, raw, vmdk, vdi, vhdx, vpc]
  device:
    description: The target block device, for example C(/dev/sdb). Its whole content may be replaced.
    type: path
    required: true
  force:
    description: Overwrite a device that already has a partition table (MBR or GPT).
    type: bool
    default: false
  generalize:
    description: Generalize the guest for other hardware (see the description). With V(false) the image is
      copied as it is.
    type: bool
    default: true
  serial_console:
    description: Keep C(console=ttyS*) on the kernel command line. With V(false) it is removed.
    type: bool
    default: true
  extra_modules:
    description:
      - More kernel modules the initramfs must hold (when the kernel has them). One that is missing from it
        makes the initramfs be regenerated.
    type: list
    elements: str
    default: []
  grow_last_partition:
    description:
      - Grow the last partition (and its ext2/3/4 filesystem) to the end of the device.
      - MBR (the last partition must be a primary one) or GPT (the partition that starts last grows up to
        the backup table, which moves to the device's last sectors). An EFI system partition that comes last
        is refused, and so is a device whose logical sectors are not 512 bytes.
    type: bool
    default: false
  firmware:
    description:
      - Firmware of the target machine.
      - V(bios) - the image's partition table and boot loader, as they are.
      - V(efi) - UEFI. An image without an EFI system partition gets one with GRUB for UEFI (see the
        description). An MBR needs a free primary slot, a GPT a free entry, and the device room for the image
        plus O(esp_size_mib). An image with an EFI system partition keeps it; when it has no
        C(EFI/BOOT/BOOTX64.EFI) (the only loader firmware finds without a boot entry in its NVRAM, which a
        new machine does not have), GRUB for UEFI is installed on that path. On a GPT image the whole
        device is written, so that the backup table ends up in its last sectors.
    type: str
    choices: [bios, efi]
    default: bios
  esp_size_mib:
    description:
      - Size of the EFI system partition that O(firmware=efi) adds, in MiB (at least 64). The default, 260 MiB,
        is the smallest FAT32 size that also works on disks with 4096-byte sectors.
    type: int
    default: 260
  work_dir:
    description: Directory for the temporary overlay (it holds only what the generalization changes).
    type: path
    default: /var/tmp
  record_dir:
    description: Where the records of completed writes are kept (one JSON file per device name).
    type: path
    default: /var/lib/virtforge/v2p
  log_path:
    description: Progress log (one line per phase, with the guest's output) that can be followed with C(tail -f).
    type: path
attributes:
  check_mode:
    support: full
    description: Checks the source, the device (use, size, partition table) and the record; writes nothing.
  diff_mode:
    support: none
    description: No diff is shown; the result describes what was (or would be) done.
  idempotent:
    support: full
    description: The same source and options on a device whose content still has the recorded checksum report
      no change.
notes:
  - The guest needs the drivers of the target's hardware in its kernel. Debian's cloud kernel
    (C(linux-image-cloud-amd64)) has no AHCI, e1000 or most physical NIC drivers; its generic kernel
    (C(linux-image-amd64)) has them.
  - A GPT image written onto a larger device gets its backup table at the device's end even without
    O(grow_last_partition) (its partitions stay as they are; the whole device is written).
  - Secure Boot - an image's own ESP is kept as it is (an image made with M(virtforge.libvirt.image_build)
    O(virtforge.libvirt.image_build#module:bootloader=grub-efi) carries shim and signed GRUB and boots with
    Secure Boot on). Where this module installs GRUB for UEFI, a guest with Debian's/Ubuntu's C(shim-signed)
    and C(grub-efi-amd64-signed) gets that signed chain; without them GRUB is unsigned and Secure Boot must
    be off on the target.
requirements:
  - qemu-utils (qemu-img), libguestfs-tools (guestfish)
"""

EXAMPLES = r"""
- name: Put the web server's image onto the second disk of a physical machine
  virtforge.libvirt.v2p:
    src: /var/lib/libvirt/images/web1.qcow2
    device: /dev/sdb
    force: true
    grow_last_partition: true
    log_path: /var/log/virtforge/v2p-web1.log
  async: 3600
  poll: 15

- name: The same onto a machine with UEFI firmware (an EFI system partition is added at the disk's end)
  virtforge.libvirt.v2p:
    src: /var/lib/libvirt/images/web1.qcow2
    device: /dev/sdb
    force: true
    grow_last_partition: true
    firmware: efi
"""

RETURN = r"""
device:
  description: The real path of the device written.
  returned: always
  type: str
  sample: /dev/sdb
virtual_size:
  description: Virtual size of the source image in bytes.
  returned: always
  type: int
device_size:
  description: Size of the device in bytes.
  returned: always
  type: int
length:
  description: Bytes of the device that hold the image (the device size with O(grow_last_partition); with
    O(firmware=efi) and no growth, up to the end of the added EFI system partition).
  returned: always
  type: int
bytes_written:
  description: Bytes written in this run (0 when nothing changed or in check mode).
  returned: always
  type: int
sha256:
  description: sha256 of the written range of the device, as recorded.
  returned: when written or up to date
  type: str
verified:
  description: Whether the device's content was verified against the generalized image.
  returned: always
  type: bool
partition_table_before:
  description: V(mbr), V(gpt) or null - what the device had before.
  returned: always
  type: str
grow:
  description: The partition growth planned (number, start, sectors, old_sectors; table V(mbr) or V(gpt)), or
    null.
  returned: always
  type: dict
esp:
  description: The EFI system partition planned with O(firmware=efi) (number, start, sectors, in 512-byte
    sectors; table V(mbr) or V(gpt)), or its number and C(existing=true) for the image's own ESP, or null.
  returned: always
  type: dict
  sample: {number: 2, start: 4192256, sectors: 532480, entry_offset: 462, table: mbr}
firmware:
  description: The firmware the device was written for.
  returned: always
  type: str
guest_changes:
  description: What the generalization changed inside the guest.
  returned: always
  type: list
  elements: str
  sample: ["initramfs: MODULES=most, storage drivers: ata_piix sd_mod", "grub configuration regenerated (root=UUID)"]
guest_warnings:
  description: What the generalization could not do (also given as warnings).
  returned: always
  type: list
  elements: str
timing:
  description: Seconds per phase (overlay, generalize or, with O(generalize=false), layout, copy, verify,
    record check) and in total.
  returned: always
  type: dict
log_path:
  description: The progress log.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.virtforge.libvirt.plugins.module_utils import _libvirt
from ansible_collections.virtforge.libvirt.plugins.module_utils._convert import v2p
from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import fail_from_exception
from ansible_collections.virtforge.libvirt.plugins.module_utils._run import Runner


def main():
    argument_spec = dict(_libvirt.CONNECTION_ARGSPEC)
    argument_spec.update(v2p.ARGUMENT_SPEC)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    conns = []

    def connect():
        if _libvirt.libvirt is None:
            return None
        if not conns:
            conns.append(_libvirt.module_connection(module, readonly=True))
        return conns[0]

    try:
        result = v2p.run_module(module, Runner(module), connect=connect)
    except Exception as exc:  # pylint: disable=broad-except
        fail_from_exception(module, exc)
    finally:
        for conn in conns:
            conn.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
