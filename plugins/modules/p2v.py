#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: p2v
short_description: Convert a physical machine into a KVM domain, live over SSH or offline from its disk
version_added: 0.1.0
description:
  - P2V, offline - the physical machine's disk is attached to the conversion host (a block device, for
    example the disk pulled from the machine or an iSCSI/USB attachment), or a raw image of it was taken.
    The disk is converted with the same engine as M(virtforge.libvirt.v2v) (C(virt-v2v -i disk) with
    inspection and virtio/initramfs/bootloader fix-up, or with O(inspect=false) a C(qemu-img) copy that is
    then verified with C(qemu-img compare)), and a domain is defined with the source's MAC addresses
    (O(macs)) and the given CPUs and memory.
  - The source is only read. A block device that is mounted, held (device-mapper, RAID, LVM), used as swap,
    a disk of a libvirt domain or open exclusively is refused, because reading it while it changes does not
    give a consistent image - unless O(allow_in_use=true), which makes a crash-consistent copy and says so.
  - P2V, live (O(ssh)) - the running Linux machine is read over SSH. One session gathers its CPU count,
    memory, disks and the MACs of its physical NICs; a second one freezes the filesystems of the disk being
    copied (C(fsfreeze), deepest first, with a watchdog that thaws them after O(freeze_timeout) seconds if the
    session dies), streams the disk with C(dd) while C(sha256sum) digests the same bytes, and thaws them.
    The conversion host writes the stream sparse-aware (zero blocks become holes) into a temporary raw file
    inside the output directory and accepts it only when size and sha256 match; that file is then converted
    like an offline disk and removed. O(consistency=crash) skips the freeze (a crash-consistent copy, noted).
  - While frozen, writes on the source wait (reads go on) for as long as the copy takes; use
    O(consistency=crash) on machines that must keep writing. Nothing on the source is written.
  - Live, the domain gets the machine's CPU count, memory (rounded up to 128 MiB) and MACs unless O(vcpus),
    O(memory) or O(macs) are given. The source needs a POSIX shell, bash, coreutils and util-linux, and
    root over SSH (reading the disk and freezing need it).
  - The converted disk is as large as the source (the virtual size is the device's size).
author:
  - virtforge.libvirt contributors (@virtforge)
extends_documentation_fragment:
  - virtforge.libvirt.libvirt
options:
  name:
    description: Name of the domain to create; the disk is named C(NAME-sda.qcow2).
    type: str
    required: true
  src:
    description:
      - Offline, the physical disk - a block device such as C(/dev/sdc), or a raw image file of it (required).
      - With O(ssh), the disk of the running machine to copy (C(/dev/sda)); default the disk holding C(/).
    type: path
  ssh:
    description: Read a running machine over SSH (P2V live) instead of a local disk.
    type: dict
    suboptions:
      host:
        description: Address or name of the machine.
        type: str
        required: true
      user:
        description: SSH user; must be root (reading the disk and freezing filesystems need it).
        type: str
        default: root
      port:
        description: SSH port.
        type: int
        default: 22
      private_key:
        description: Private key file to log in with (the agent or ssh's defaults otherwise).
        type: path
      proxy_command:
        description: An ssh C(ProxyCommand), e.g. C(ssh -W %h:%p jumphost) or C(ip netns exec NS nc %h %p).
        type: str
      known_hosts:
        description: Known-hosts file to check the machine's host key against.
        type: path
      host_key_checking:
        description: ssh's C(StrictHostKeyChecking) - V(yes) (the key must be known), V(accept-new), V(no).
        type: str
        choices: ['yes', accept-new, 'no']
        default: 'yes'
      connect_timeout:
        description: Seconds to wait for the SSH connection.
        type: int
        default: 30
  consistency:
    description:
      - With O(ssh), how the disk is read while the machine runs - V(freeze) its mounted filesystems during
        the copy (consistent), or V(crash) (no freeze; like pulling the plug).
    type: str
    choices: [freeze, crash]
    default: freeze
  freeze_timeout:
    description: With O(ssh), seconds after which the source thaws its filesystems itself if the copy hangs.
    type: int
    default: 7200
  allow_in_use:
    description: Read a block device even while it is in use (a crash-consistent copy; a warning says so).
    type: bool
    default: false
  pool:
    description: libvirt storage pool (directory-backed) for the converted disk.
    type: str
  directory:
    description: Directory for the converted disk (instead of O(pool)).
    type: path
  format:
    description: Format of the converted disk.
    type: str
    choices: [qcow2, raw]
    default: qcow2
  inspect:
    description: Use virt-v2v (inspection and fix-up). V(false) copies the disk with qemu-img only and verifies it.
    type: bool
    default: true
  network_map:
    description: Where the NICs virt-v2v describes go, by source network name.
    type: list
    elements: dict
    default: []
    suboptions:
      source:
        description: Network name in virt-v2v's description of the source.
        type: str
        required: true
      network:
        description: libvirt network on this host.
        type: str
      bridge:
        description: Host bridge on this host.
        type: str
  default_network:
    description: libvirt network for the NICs.
    type: str
  keep_macs:
    description: Keep MAC addresses virt-v2v found (O(macs) takes precedence).
    type: bool
    default: true
  macs:
    description:
      - The physical machine's MAC addresses, in order; the domain gets one NIC per MAC.
      - Default with O(ssh) - the MACs of the machine's physical NICs, in the order of their names.
    type: list
    elements: str
  vcpus:
    description: vCPUs of the domain. Default - the machine's count with O(ssh), else 1.
    type: int
  memory:
    description: Memory in MiB or with a unit. Default - the machine's (rounded up to 128 MiB) with O(ssh), else 1024.
    type: raw
  disk_bus:
    description: Disk bus (default - what virt-v2v chose; V(virtio) with O(inspect=false)).
    type: str
    choices: [virtio, sata, ide, scsi]
  nic_model:
    description: NIC model (default - what virt-v2v chose; V(virtio) with O(inspect=false)).
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
    description: Convert again over an existing (stopped) domain of that name and its disk.
    type: bool
    default: false
  log_path:
    description: Progress log - one line per phase and the conversion tool's output.
    type: path
attributes:
  check_mode:
    support: full
    description: Checks the source (use, size) and the output, returns the planned command; writes nothing.
  diff_mode:
    support: none
    description: No diff is shown; the result describes what was (or would be) done.
  idempotent:
    support: full
    description: An existing domain of that name is reported unchanged (unless O(force)).
requirements:
  - virt-v2v, nbdkit, libnbd-bin, libguestfs-tools, qemu-utils
"""

EXAMPLES = r"""
- name: Convert a running server over SSH, its filesystems frozen while its disk is copied
  virtforge.libvirt.p2v:
    name: web01
    ssh:
      host: web01.example.com
      private_key: /root/.ssh/p2v_ed25519
      known_hosts: /root/.ssh/known_hosts
    pool: default
    default_network: default
    state: running
    wait_for: [agent]
    log_path: /var/log/virtforge/p2v-web01.log
  async: 7200
  poll: 30

- name: Convert the disk of a retired server, attached to this host as /dev/sdc
  virtforge.libvirt.p2v:
    name: legacy-db
    src: /dev/sdc
    pool: default
    default_network: default
    macs: ["00:25:90:aa:bb:01"]
    vcpus: 4
    memory: 8GiB
    state: running
    log_path: /var/log/virtforge/p2v-legacy-db.log
  async: 7200
  poll: 30
"""

RETURN = r"""
name:
  description: The domain's name.
  returned: always
  type: str
disks:
  description: Path of the converted disk.
  returned: always
  type: list
  elements: str
source_size:
  description: Size of the source disk in bytes (the converted disk's virtual size).
  returned: always
  type: int
source:
  description:
    - With O(ssh), what was read - host, device, size, cpus, memory_mib, nics (name, mac), consistency, frozen
      (mount points frozen during the copy); after a copy also copied_bytes, allocated_bytes (of the sparse
      copy), copy_seconds and sha256 (verified against the source's). Null when the domain existed already.
  returned: with ssh
  type: dict
verified:
  description: Whether the copy was compared with the source (O(inspect=false)).
  returned: when converted
  type: bool
domain:
  description: The domain engine's result for the new domain.
  returned: when converted
  type: dict
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
  description: Seconds per phase and in total.
  returned: always
  type: dict
notes:
  description: What the user should know (inspect off, crash-consistent read).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.virtforge.libvirt.plugins.module_utils import _libvirt
from ansible_collections.virtforge.libvirt.plugins.module_utils._convert import p2v
from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import fail_from_exception
from ansible_collections.virtforge.libvirt.plugins.module_utils._run import Runner


def main():
    argument_spec = dict(_libvirt.CONNECTION_ARGSPEC)
    argument_spec.update(p2v.ARGUMENT_SPEC)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    _libvirt.check_libraries(module)
    conns = []

    def connect():
        if not conns:
            conns.append(_libvirt.module_connection(module))
        return conns[0]

    try:
        result = p2v.run_module(module, Runner(module), connect)
    except Exception as exc:  # pylint: disable=broad-except
        fail_from_exception(module, exc)
    finally:
        for conn in conns:
            conn.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
