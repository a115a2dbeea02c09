#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: v2v
short_description: Convert a guest of another hypervisor (VMware, Hyper-V, Xen, raw/qcow2) into a KVM domain
version_added: 0.1.0
description:
  - Runs C(virt-v2v) to inspect the guest and fix it up for KVM (virtio drivers, initramfs, bootloader,
    guest agent), writes the converted disks into a libvirt pool or a directory, and defines the domain
    through the collection's domain engine, fitted to this host.
  - "Inputs: a disk image (vmdk, vhd, vhdx, raw, qcow2: C(-i disk)), an OVA package (C(-i ova)) whose
    manifest (.mf) checksums the module verifies before virt-v2v starts, a VMware C(.vmx) (C(-i vmx)), or a
    guest of another libvirt host such as Xen (C(-i libvirt -ic URI), O(src_uri) and O(src_name))."
  - "A C(.vmx) is read first with virt-v2v's own rules for hard disks (by controller and C(deviceType)):
    a disk entry virt-v2v would leave out of the conversion, a C(.vmx) naming no disk it reads, and a
    missing or damaged disk file are refused before virt-v2v starts, naming the entry."
  - The source is only read. virt-v2v writes into a temporary directory inside the output directory; the
    disks are renamed into place only when the conversion succeeded, and removed again if defining the
    domain fails. An interrupted run (signal, C(async) timeout) removes its temporary directory.
  - "The domain: virt-v2v's own XML is the base (machine type, features, video, RNG), minus what this
    host lacks: the domain type is C(kvm) only with hardware virtualization, otherwise C(qemu) (with a
    warning); C(<vsock>) is dropped where the host has no C(/dev/vhost-vsock). NICs are mapped to networks
    or bridges with O(network_map) (or O(default_network)); their MAC addresses are kept unless
    O(keep_macs=false)."
  - O(inspect=false) converts a disk image with C(qemu-img convert) only - no inspection, no driver or
    bootloader fix-up - for guests virt-v2v cannot inspect; the module warns that it did so.
  - An existing domain of the same name means the guest was converted already (no change) unless O(force).
  - Progress goes to O(log_path) (phases and virt-v2v's own output; C(tail -f) it); phase timings are
    returned. Works with C(async).
  - Without hardware virtualization virt-v2v is run with E(LIBGUESTFS_BACKEND=direct) and
    E(LIBGUESTFS_BACKEND_SETTINGS=force_tcg); a conversion then takes minutes (the initramfs is rebuilt
    inside an emulated appliance).
author:
  - virtforge.libvirt contributors (@virtforge)
extends_documentation_fragment:
  - virtforge.libvirt.libvirt
options:
  name:
    description: Name of the domain to create; the disks are named C(NAME-sda.qcow2), C(NAME-sdb.qcow2)...
    type: str
    required: true
  src:
    description: The input - a disk image, an C(.ova) file (or a directory holding its files), or a C(.vmx) file.
    type: path
  input:
    description: Kind of input; V(auto) decides from O(src)'s extension (C(.ova), C(.vmx), anything else is a
      disk image) or from O(src_uri).
    type: str
    choices: [auto, disk, ova, vmx, libvirt]
    default: auto
  src_format:
    description: Format of a disk image input (qemu-img names; V(vpc) is VHD). Detected when not set.
    type: str
    choices: [vmdk, vpc, vhdx, qcow2, raw, vdi]
  src_uri:
    description: libvirt URI of the source host (for example C(xen+ssh://root@xen1/)), with O(src_name).
    type: str
  src_name:
    description: Name of the guest on O(src_uri).
    type: str
  src_password:
    description: Password for O(src_uri) (passed to virt-v2v in a file readable only by root, removed after).
    type: str
  pool:
    description: libvirt storage pool (directory-backed) for the converted disks.
    type: str
  directory:
    description: Directory for the converted disks (instead of O(pool)).
    type: path
  format:
    description: Format of the converted disks.
    type: str
    choices: [qcow2, raw]
    default: qcow2
  inspect:
    description: Use virt-v2v (inspection and fix-up). V(false) copies a disk image with qemu-img only.
    type: bool
    default: true
  verify_manifest:
    description: Verify an OVA's manifest before converting (an OVA without one is refused).
    type: bool
    default: true
  network_map:
    description: Where the source's NICs go, by the source network's name (for example C(VM Network)).
    type: list
    elements: dict
    default: []
    suboptions:
      source:
        description: Network (or bridge) name on the source.
        type: str
        required: true
      network:
        description: libvirt network on this host.
        type: str
      bridge:
        description: Host bridge on this host.
        type: str
  default_network:
    description: libvirt network for NICs that O(network_map) does not name (and for O(inspect=false)).
    type: str
  keep_macs:
    description: Keep the source's MAC addresses. With V(false) new stable ones are derived from the name.
    type: bool
    default: true
  macs:
    description: MAC addresses for the NICs, in order (overrides the source's); more MACs than NICs add NICs.
    type: list
    elements: str
  vcpus:
    description: vCPUs (default - what the source had).
    type: int
  memory:
    description: Memory in MiB or with a unit (default - what the source had).
    type: raw
  disk_bus:
    description: Bus of the disks (default - what virt-v2v chose, V(virtio) when it could install the driver).
    type: str
    choices: [virtio, sata, ide, scsi]
  nic_model:
    description: NIC model (default - what virt-v2v chose).
    type: str
    choices: [virtio, e1000e, e1000, rtl8139]
  state:
    description: V(running) starts the domain after defining it.
    type: str
    choices: [present, running]
    default: present
  wait_for:
    description: With O(state=running), wait for the guest agent and/or an IP address.
    type: list
    elements: str
    choices: [agent, ip]
  wait_timeout:
    description: Seconds to wait for O(wait_for).
    type: int
    default: 300
  force:
    description: Convert again over an existing (stopped) domain of that name and its disks.
    type: bool
    default: false
  log_path:
    description: Progress log - one line per phase and virt-v2v's output.
    type: path
attributes:
  check_mode:
    support: full
    description: Checks the input (OVA manifest, image integrity), the output and the names, and returns the
      command it would run; writes nothing.
  diff_mode:
    support: none
    description: No diff is shown; the result describes what was (or would be) done.
  idempotent:
    support: full
    description: An existing domain of that name is reported unchanged (unless O(force)).
notes:
  - The lab tests convert an OVA (OVF + streamOptimized vmdk + SHA256 manifest) of a Debian 12 guest with
    the cloud kernel, and a C(.vmx) of one with the generic kernel that first runs on a SATA disk and an
    e1000 NIC; under software emulation those take about 5 and 8 minutes.
requirements:
  - virt-v2v, nbdkit, libnbd-bin, libguestfs-tools, qemu-utils
"""

EXAMPLES = r"""
- name: Convert a VMware OVA into the default pool, NICs on the lab network
  virtforge.libvirt.v2v:
    name: web1
    src: /srv/export/web1.ova
    pool: default
    network_map:
      - source: VM Network
        network: default
    state: running
    wait_for: [agent]
    log_path: /var/log/virtforge/v2v-web1.log
  async: 7200
  poll: 30

- name: A VMware VM from its .vmx (its disk files beside it), its NIC on a host bridge
  virtforge.libvirt.v2v:
    name: legacy1
    src: /srv/export/legacy1/legacy1.vmx
    directory: /var/lib/libvirt/images
    network_map:
      - source: VM Network
        bridge: br0
  async: 7200
  poll: 30

- name: A Hyper-V disk
  virtforge.libvirt.v2v:
    name: app2
    src: /srv/export/app2.vhdx
    directory: /var/lib/libvirt/images
    default_network: default

- name: A Xen guest of another libvirt host
  virtforge.libvirt.v2v:
    name: db3
    src_uri: xen+ssh://root@xen1.example.com/
    src_name: db3
    pool: default
    default_network: default

- name: Only convert the disk format (a guest virt-v2v cannot inspect)
  virtforge.libvirt.v2v:
    name: appliance
    src: /srv/export/appliance.vmdk
    inspect: false
    disk_bus: sata
    nic_model: e1000
    pool: default
    default_network: default
"""

RETURN = r"""
name:
  description: The domain's name.
  returned: always
  type: str
input:
  description: The kind of input (disk, ova, vmx, libvirt).
  returned: always
  type: str
inspect:
  description: Whether virt-v2v inspected and fixed up the guest.
  returned: always
  type: bool
disks:
  description: Paths of the converted disks (planned ones in check mode, where known).
  returned: always
  type: list
  elements: str
manifest:
  description: The OVA manifest check (ovf, manifest, files with algorithm and digest).
  returned: for an OVA with verify_manifest
  type: dict
vmx_disks:
  description: The hard disks of a C(.vmx) input that virt-v2v reads (C(slot) such as C(sata0:0), C(path),
    C(file_size) in bytes, C(format), C(virtual_size)), each checked with C(qemu-img check) before virt-v2v
    starts.
  returned: for a .vmx input
  type: list
  elements: dict
domain:
  description: The domain engine's result for the new domain (name, uuid, type, state, agent...).
  returned: when converted
  type: dict
removed_devices:
  description: What was taken out of virt-v2v's XML because this host cannot provide it.
  returned: always
  type: list
  elements: str
v2v_phases:
  description: virt-v2v's own phases with start and duration in seconds.
  returned: when converted with virt-v2v
  type: list
  elements: dict
command:
  description: The conversion command that was run.
  returned: when converted
  type: list
  elements: str
planned_command:
  description: The conversion command a real run would run.
  returned: in check mode
  type: list
  elements: str
timing:
  description: Seconds per phase of the module (manifest, virt-v2v or copy, define) and in total.
  returned: always
  type: dict
notes:
  description: What the user should know (for example that inspect was off).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.virtforge.libvirt.plugins.module_utils import _libvirt
from ansible_collections.virtforge.libvirt.plugins.module_utils._convert import v2v
from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import fail_from_exception
from ansible_collections.virtforge.libvirt.plugins.module_utils._run import Runner


def main():
    argument_spec = dict(_libvirt.CONNECTION_ARGSPEC)
    argument_spec.update(v2v.ARGUMENT_SPEC)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_one_of=[["src", "src_uri"]])
    _libvirt.check_libraries(module)
    conns = []

    def connect():
        if not conns:
            conns.append(_libvirt.module_connection(module))
        return conns[0]

    try:
        result = v2v.run_module(module, Runner(module), connect)
    except Exception as exc:  # pylint: disable=broad-except
        fail_from_exception(module, exc)
    finally:
        for conn in conns:
            conn.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
