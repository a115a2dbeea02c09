#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: image_build
short_description: Build a golden Debian disk image with debootstrap and libguestfs, cached by recipe
version_added: 0.1.0
description:
  - Builds a bootable Debian disk image (qcow2 or raw) from a distribution mirror with C(debootstrap)
    and libguestfs (C(virt-make-fs), C(guestfish)). It has an ext4 root filesystem on an MBR partition,
    GRUB on the disk, a serial console, systemd-networkd doing DHCP on every NIC whose name matches
    O(dhcp_match), qemu-guest-agent and OpenSSH.
  - The image carries no machine identity. C(/etc/machine-id) is empty and there are no SSH host keys,
    so every clone makes its own at first boot.
  - The options that change the image's content form a I(recipe); the image is cached in O(cache_dir)
    as C(<sha256 of the canonical recipe>.qcow2) with a C(.json) description beside it. The same recipe
    never builds twice; a cache hit takes well under a second.
  - Progress is written as phase lines to O(log_path) (C(tail -f) it); a build takes about six
    minutes under software emulation.
  - Without hardware virtualization on the machine running the module, libguestfs is run with
    E(LIBGUESTFS_BACKEND=direct) and E(LIBGUESTFS_BACKEND_SETTINGS=force_tcg).
author:
  - virtforge.libvirt contributors (@virtforge)
extends_documentation_fragment:
  - virtforge.libvirt.libvirt
options:
  release:
    description: Debian release (suite) to install.
    type: str
    default: bookworm
    choices: [bookworm, trixie, bullseye]
  mirror:
    description:
      - Debian mirror URL. It is always passed to C(debootstrap) explicitly (the machine's own apt
        sources are never used) and written to the image's C(/etc/apt/sources.list).
    type: str
    default: http://deb.debian.org/debian
  components:
    description: Archive components.
    type: list
    elements: str
    default: [main]
  variant:
    description: debootstrap variant. V(minbase) is the smallest; V(default) adds the I(important) packages.
    type: str
    default: minbase
    choices: [minbase, default]
  kernel:
    description:
      - Kernel package. V(linux-image-cloud-amd64) has virtio, IDE and bonding but no SATA/AHCI or e1000,
        and is much faster to convert with virt-v2v; use V(linux-image-amd64) for emulated hardware.
    type: str
    default: linux-image-cloud-amd64
  packages:
    description: Extra packages to install (on top of the kernel, GRUB, systemd, udev, dbus, iproute2,
      qemu-guest-agent and openssh-server).
    type: list
    elements: str
    default: []
  cloud_init:
    description:
      - Install cloud-init, configured to look for a NoCloud seed only (see M(virtforge.libvirt.image_customize)'s
        O(virtforge.libvirt.image_customize#module:cloud_init_seed)). It slows the first boot down.
    type: bool
    default: false
  free_space:
    description:
      - Free space left on the root filesystem, as bytes or with a unit (V(700M), V(2G)).
      - Leave enough for what the guest will do (virt-v2v rebuilds the initramfs inside the guest).
    type: raw
    default: 512M
  bootloader:
    description:
      - Bootloader installed on the disk, and with it the disk's layout.
      - V(grub-pc) - PC BIOS. An MBR with one partition, the root filesystem.
      - V(grub-efi) - UEFI. A GPT with an EFI system partition (partition 1, 128 MiB, FAT32, mounted on
        C(/boot/efi) by UUID) and the root filesystem (partition 2, last on the disk, so it can be grown).
        GRUB for UEFI is installed on the removable-media path C(EFI/BOOT/BOOTX64.EFI), which firmware boots
        without a boot entry in its NVRAM (every domain or machine the image is copied to starts without
        one). Boot it with UEFI firmware (M(virtforge.libvirt.domain) O(virtforge.libvirt.domain#module:firmware=efi)).
        The signed chain for Secure Boot comes with it (C(shim-signed), C(grub-efi-amd64-signed); Debian's
        kernels are signed) - shim is C(BOOTX64.EFI), the signed GRUB beside it, so the image boots with
        Secure Boot on (firmware with the Microsoft keys enrolled, M(virtforge.libvirt.domain)
        O(virtforge.libvirt.domain#module:secure_boot=true)) or off.
    type: str
    default: grub-pc
    choices: [grub-pc, grub-efi]
  format:
    description: Image format.
    type: str
    default: qcow2
    choices: [qcow2, raw]
  hostname:
    description:
      - Host name baked into the image (clones usually get their own with M(virtforge.libvirt.image_customize)).
    type: str
    default: debian
  timezone:
    description: Time zone (a name under C(/usr/share/zoneinfo); add V(tzdata) to O(packages) for others than UTC).
    type: str
    default: Etc/UTC
  root_password:
    description:
      - Root password. Without it root has no password (log in with SSH keys set by
        M(virtforge.libvirt.image_customize)). Never logged; part of the recipe only as a salted digest.
    type: str
  kernel_cmdline:
    description: Kernel command line (C(GRUB_CMDLINE_LINUX_DEFAULT)).
    type: str
    default: console=ttyS0
  dhcp_match:
    description:
      - Interface name patterns (systemd-networkd C([Match] Name=)) that get DHCP. NIC names depend on the PCI
        slot (C(enp1s0), C(enp0s3)...), so the default matches them all.
      - An empty list writes no DHCP unit at all, for images whose NICs are configured per clone
        (M(virtforge.libvirt.image_customize) O(virtforge.libvirt.image_customize#module:network)) or by
        another network stack (a hypervisor host image whose NICs become bond members).
    type: list
    elements: str
    default: ["en*", "eth*"]
  cache_dir:
    description:
      - Where built images are kept, as C(<recipe hash>.qcow2) and C(<recipe hash>.json). Must be readable by
        the QEMU user when images are used as backing files of linked clones (the files are mode 0644).
    type: path
    default: /var/cache/virtforge/images
  package_cache:
    description: Directory where downloaded packages are kept between builds (C(debootstrap --cache-dir)).
      Defaults to C(debs) under O(cache_dir). Not part of the recipe. Builds that run at the same time and
      share it take turns for their debootstrap step (a lock file in it); the rest of each build runs
      side by side.
    type: path
  dest:
    description:
      - Also provide the image at this path, as a copy (written under a temporary name and renamed) or a
        symbolic link to the cached image (O(dest_mode)). Without it, use RV(image).
    type: path
  dest_mode:
    description: How O(dest) is provided.
    type: str
    default: copy
    choices: [copy, symlink]
  log_path:
    description: File the phase lines are written to. Defaults to C(<cache_dir>/<recipe hash>.log).
    type: path
  force:
    description:
      - Build again even when the cache has the image (the cached image is replaced atomically).
      - Refused when images in O(cache_dir), beside O(dest) or in a libvirt storage pool directory use the cached
        image as their backing file (linked clones would be corrupted). The same holds for replacing an outdated
        copy at O(dest).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Reports whether a build (or a copy to O(dest)) would happen, without doing it.
  diff_mode:
    support: full
    description: Shows the image and recipe before and after.
  idempotent:
    support: full
    description: The same recipe is a cache hit and reports no change.
requirements:
  - debootstrap, libguestfs-tools (virt-make-fs, guestfish), qemu-utils, and a kernel package on the machine
    running the module (for the libguestfs appliance).
  - root privileges.
notes:
  - O(uri) is accepted so that the C(group/virtforge.libvirt.libvirt) module defaults apply to this module too;
    building an image does not connect to libvirt (libvirt-python and lxml are not needed).
  - Bad input (an unknown release, a package name with spaces...) fails before anything is downloaded or written.
  - A failed build removes its working directory; the cache keeps only complete images.
seealso:
  - module: virtforge.libvirt.image_customize
  - module: virtforge.libvirt.volume
"""

EXAMPLES = r"""
- name: Build (or find in the cache) the golden image
  virtforge.libvirt.image_build:
    release: bookworm
    mirror: http://deb.debian.org/debian
    packages: [zstd]
    free_space: 700M
  register: golden

- name: Use it as the backing file of linked clones
  virtforge.libvirt.volume:
    pool: default
    name: web1.qcow2
    clone_from: "{{ golden.image }}"
    mode: linked

- name: A generic-kernel image with cloud-init, linked into the default pool directory
  virtforge.libvirt.image_build:
    kernel: linux-image-amd64
    cloud_init: true
    packages: [sudo, curl]
    free_space: 2G
    root_password: "{{ vault_root_password }}"
    dest: /var/lib/libvirt/images/debian12-cloud.qcow2
    dest_mode: symlink

- name: A UEFI image (GPT, EFI system partition, GRUB for UEFI)
  virtforge.libvirt.image_build:
    kernel: linux-image-amd64
    bootloader: grub-efi
    free_space: 1G
  register: golden_efi

- name: A linked clone of it
  virtforge.libvirt.volume:
    pool: default
    name: uefi1.qcow2
    clone_from: "{{ golden_efi.image }}"
    mode: linked
  register: uefi1_disk

- name: A domain that boots the clone with UEFI firmware
  virtforge.libvirt.domain:
    name: uefi1
    memory: 1024
    firmware: efi
    disks:
      - path: "{{ uefi1_disk.path }}"
        format: qcow2
    state: running
"""

RETURN = r"""
image:
  description: Path of the image in the cache (use it as a backing file).
  returned: always
  type: str
  sample: /var/cache/virtforge/images/3f1c...e9.qcow2
path:
  description: O(dest) when set, else RV(image).
  returned: always
  type: str
dest:
  description: O(dest), absolute.
  returned: always
  type: str
recipe_hash:
  description: sha256 of the canonical recipe (the cache key).
  returned: always
  type: str
recipe:
  description: The canonical recipe (secrets masked).
  returned: always
  type: dict
cache_hit:
  description: The image was already in the cache.
  returned: always
  type: bool
built:
  description: This run built the image.
  returned: always
  type: bool
sha256:
  description: sha256 of the image file. Absent in check mode when the image would be built.
  returned: when the image exists
  type: str
size_bytes:
  description: Size of the image file.
  returned: when the image exists
  type: int
virtual_size_bytes:
  description: Virtual size of the disk.
  returned: when the image exists
  type: int
format:
  description: Image format.
  returned: when the image exists
  type: str
created:
  description: When the cached image was built (UTC).
  returned: when the image exists
  type: str
timings:
  description: Seconds per phase of this run's build (debootstrap, configure, make-fs, bootloader, checksum, total).
  returned: always
  type: dict
  sample: {debootstrap: 61.2, configure: 1.1, make-fs: 118.0, bootloader: 84.5, checksum: 3.0, total: 268.1}
build_timings:
  description: The phase timings recorded when the cached image was built.
  returned: when the image exists
  type: dict
log_path:
  description: The phase log.
  returned: always
  type: str
metadata_path:
  description: The C(.json) description of the cached image.
  returned: always
  type: str
changes:
  description: What was (or would be) done, as C({path, action, before, after}).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import fail_from_exception
from ansible_collections.virtforge.libvirt.plugins.module_utils._image import build
from ansible_collections.virtforge.libvirt.plugins.module_utils._libvirt import CONNECTION_ARGSPEC
from ansible_collections.virtforge.libvirt.plugins.module_utils._run import Runner


def main():
    argument_spec = dict(CONNECTION_ARGSPEC)
    argument_spec.update(build.ARGUMENT_SPEC)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    try:
        result = build.run_module(module, Runner(module))
    except Exception as exc:  # pylint: disable=broad-except
        fail_from_exception(module, exc)
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
