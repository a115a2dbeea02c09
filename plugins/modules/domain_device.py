#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: domain_device
short_description: Attach, update or detach devices of an existing libvirt domain, live or in its definition
version_added: 0.1.0
description:
  - Manages one device (O(device)) or a list (O(devices)) of an existing domain (disks, network
    interfaces, controllers, RNGs, watchdogs, host devices passed through), each item naming its C(kind).
  - Each kind is the same option group the M(virtforge.libvirt.domain) module uses for its lists, so an item
    takes exactly the options of one item of that module's O(virtforge.libvirt.domain#module:disks) or
    O(virtforge.libvirt.domain#module:interfaces), is validated and canonicalised the same way, and is found again
    by the same identity. Unlike there, the identity must be given, so that a second run finds the device
    again - a disk's C(dev) (target name such as V(vdb)), an interface's C(mac).
  - Idempotent. Only what an item sets is compared with the device that has its identity. A device of the
    domain that is not listed is never touched.
  - Every item is validated, and all plans are made, before anything is changed; check mode stops after the plans,
    diff mode shows the persistent definition (and the live XML) before and after.
  - Detaching from a running guest is a request the guest must honour (ACPI hot-unplug); the module waits up to
    O(detach_timeout) seconds for the device to leave the live XML.
author:
  - virtforge.libvirt contributors (@virtforge)
extends_documentation_fragment:
  - virtforge.libvirt.libvirt
  - virtforge.libvirt.libvirt.attributes
attributes:
  idempotent:
    support: full
    description: A second run with the same options reports no change.
options:
  name:
    description: Name of the existing domain.
    type: str
    required: true
  devices:
    description:
      - The devices. Each item is a dictionary with C(kind) and the options of that kind.
      - C(kind=disk) takes the options of an item of the domain module's O(virtforge.libvirt.domain#module:disks)
        (C(dev) required, C(path) or C(pool) and C(volume), C(bus), C(format), C(device), C(readonly), C(cache),
        C(io), C(discard)). Disks on the V(virtio), V(scsi) and V(usb) buses can be hot-plugged.
      - C(kind=interface) takes the options of an item of O(virtforge.libvirt.domain#module:interfaces)
        (C(mac) required, C(network), C(bridge), C(direct) or C(type=user), C(model), C(bandwidth), C(app_qos)).
        Interfaces can be
        hot-plugged. A MAC address used by another domain on the same host is refused.
      - C(kind=controller) (identity C(type) and C(index), default 0), C(kind=rng) (identity C(backend)) and
        C(kind=watchdog) (identity C(model)) take the options of the domain module's
        O(virtforge.libvirt.domain#module:controllers), O(virtforge.libvirt.domain#module:rngs) and
        O(virtforge.libvirt.domain#module:watchdogs) items. SCSI controllers and RNGs can be hot-plugged.
      - C(kind=hostdev) takes the options of an item of O(virtforge.libvirt.domain#module:hostdevs) (exactly one of
        C(pci), C(usb) or C(mdev), which is also its identity; C(managed), C(model), C(iommu_check)). PCI and USB
        devices can be hot-plugged. A PCI device goes through the same IOMMU group check as there (on a local
        QEMU/KVM connection); members of one IOMMU group listed in the same task count as passed through together.
      - With O(state=absent) only the identity (C(dev), C(mac)) and C(kind) are needed; the other options must
        still be valid.
    type: list
    elements: dict
  device:
    description: One device, as one item of O(devices). Give O(device) or O(devices).
    type: dict
  state:
    description:
      - V(present) the devices exist with the options given (attached, or updated in place).
      - V(absent) the devices with these identities are detached. Their disk images are never deleted.
    type: str
    choices: [present, absent]
    default: present
  target:
    description:
      - Where the change is made.
      - V(config) the persistent definition only (effective at the next start).
      - V(live) the running guest only (lost at its next start); the domain must be running and every change
        must be possible live, otherwise the task fails before anything is changed.
      - V(both) the definition and the running guest; the domain must be running. A change that cannot be made
        live is made in the definition and reported with RV(restart_required=true).
      - V(auto) the definition always; the running guest too when the domain runs (hot-plug where the kind supports
        it, otherwise RV(restart_required=true)).
    type: str
    choices: [auto, live, config, both]
    default: auto
  detach_timeout:
    description: Seconds to wait for a running guest to release a detached device.
    type: int
    default: 30
notes:
  - Disk images are not created here; use M(virtforge.libvirt.volume) or C(qemu-img) first.
seealso:
  - module: virtforge.libvirt.domain
"""

EXAMPLES = r"""
- name: Hot-plug a data disk and a second NIC into a running VM (and keep them in its definition)
  virtforge.libvirt.domain_device:
    name: db1
    devices:
      - kind: disk
        dev: vdb
        pool: default
        volume: db1-data.qcow2
      - kind: interface
        mac: 52:54:00:10:00:02
        network: backend
        model: virtio

- name: Add an emulated NIC to the definition only (takes effect at the next start)
  virtforge.libvirt.domain_device:
    name: legacy1
    target: config
    device:
      kind: interface
      mac: 52:54:00:10:00:03
      bridge: br0
      model: e1000e

- name: Hot-plug a USB security key and a VFIO NIC function into a running VM (and keep them in its definition)
  virtforge.libvirt.domain_device:
    name: build1
    devices:
      - kind: hostdev
        usb: {vendor: "0x1050", product: "0x0407"}
      - kind: hostdev
        pci: "0000:04:00.1"

- name: Unplug the USB key again
  virtforge.libvirt.domain_device:
    name: build1
    state: absent
    device:
      kind: hostdev
      usb: {vendor: "0x1050", product: "0x0407"}

- name: Detach the data disk from the running VM and from its definition
  virtforge.libvirt.domain_device:
    name: db1
    state: absent
    device:
      kind: disk
      dev: vdb
"""

RETURN = r"""
changes:
  description: What was (or, in check mode, would be) changed, per scope.
  returned: always
  type: list
  elements: dict
  sample:
    - {path: "disks[vdb]", action: add, scope: config, device: "devices[0]", before: null, after: {dev: vdb}}
    - {path: "disks[vdb]", action: add, scope: live, live: true, device: "devices[0]", before: null, after: {dev: vdb}}
restart_required:
  description: Whether a change is in the definition but could not be made to the running guest.
  returned: always
  type: bool
running:
  description: Whether the domain was running when the task started.
  returned: always
  type: bool
scopes:
  description: The scopes planned, V(config) and/or V(live).
  returned: always
  type: list
  elements: str
  sample: [config, live]
timing:
  description: Seconds spent planning and applying each scope.
  returned: always
  type: dict
  sample: {plan: 0.02, apply_config: 0.01, apply_live: 0.4}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.virtforge.libvirt.plugins.module_utils._domain.device import argument_spec, run_module
from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import fail_from_exception
from ansible_collections.virtforge.libvirt.plugins.module_utils._libvirt import check_libraries


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           mutually_exclusive=[("device", "devices")],
                           required_one_of=[("device", "devices")])
    check_libraries(module)
    try:
        result = run_module(module)
    except Exception as exc:  # pylint: disable=broad-except
        fail_from_exception(module, exc)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
