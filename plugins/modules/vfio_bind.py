#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vfio_bind
short_description: Bind host PCI devices to vfio-pci for pass-through, now and at every boot
description:
  - Hands PCI devices over to C(vfio-pci), the driver that lets QEMU give a device to a guest (PCI pass-through,
    SR-IOV virtual functions). Devices are named by PCI address (O(addresses)) or by vendor:device id (O(ids),
    every device with that id).
  - B(Now) (O(runtime)) - the device's C(driver_override) is set to C(vfio-pci), it is unbound from its current
    driver and probed again, and the result is read back. A device that does not end up on vfio-pci is given
    back to its driver and the task fails.
  - B(At boot) (O(persistent)) - one udev rules file (O(rules_file)) holds a line per address or id. On the
    device's C(add) event the line sets the override, unbinds the driver that took the device first (the
    initramfs may have loaded it) and probes again, then loads vfio-pci. Because binding is by override, two
    identical NICs can go one to the host and one to vfio-pci, which the C(vfio-pci.ids=) kernel argument
    cannot do.
  - B(Refused), nothing changed, with the reason - a bridge (host, ISA or PCI-to-PCI); a controller with a disk
    the host uses (mounted, swap, held by LVM, md or dm-multipath), even with O(force); a NIC the host uses (up,
    or a port of a bond or bridge) unless O(force); a device whose IOMMU group holds other devices a host driver
    still drives (a guest gets a whole group, so list them too; bridges and devices on no driver, vfio-pci or
    pci-stub may stay); binding now while the IOMMU is off.
  - O(state=absent) reverses both - the device's line leaves the rules file, the override is cleared and the
    host's own driver probes the device again.
  - Run it on the host itself (it writes sysfs and C(/etc)). libvirt's C(managed) hostdevs rebind by themselves
    when a guest starts; this module is for devices the host must never touch (a second GPU, a NIC reserved
    for one guest, an HBA) and for C(managed=no).
version_added: 0.1.0
author:
  - virtforge.libvirt contributors (@virtforge)
options:
  addresses:
    description:
      - PCI addresses, C(domain:bus:slot.function) as C(lspci -D) prints them (V(0000:03:00.1); V(03:00.1) means
        domain 0000).
    type: list
    elements: str
    default: []
  ids:
    description:
      - vendor:device ids as C(lspci -nn) prints them in brackets (V(8086:10d3)); every device with the id is
        meant, also ones that appear later (the boot-time line matches by id).
    type: list
    elements: str
    default: []
  state:
    description: V(present) binds to vfio-pci, V(absent) gives the devices back to the host's drivers.
    type: str
    choices: [present, absent]
    default: present
  runtime:
    description:
      - Rebind now. With V(false) only the boot-time binding is written (for a host whose IOMMU is turned on by a
        reboot still to come, or a device not yet installed).
    type: bool
    default: true
  persistent:
    description: Keep the binding across reboots (the line in O(rules_file)).
    type: bool
    default: true
  force:
    description:
      - Take a NIC the host uses (up, or a port of a bond or bridge). Its traffic stops. A disk the host uses is
        refused even then.
    type: bool
    default: false
  rules_file:
    description: The udev rules file the module owns (one file for all devices it binds).
    type: path
    default: /etc/udev/rules.d/85-virtforge-vfio.rules
attributes:
  check_mode:
    support: full
    description: Reads sysfs, refuses what it would refuse, and reports each device's planned action.
  diff_mode:
    support: full
    description: The rules file and each device's driver, before and after.
  idempotent:
    support: full
    description: A device already on vfio-pci with its line in place is left alone.
notes:
  - Needs the IOMMU on (VT-d or AMD-Vi in the firmware, and for Intel the kernel argument C(intel_iommu=on));
    M(virtforge.libvirt.kernel_args) writes it, M(virtforge.libvirt.host_info) reports C(iommu.enabled),
    the groups and the arguments this host's firmware needs.
  - A device that the firmware or the console uses (the boot GPU under efifb) may not let go at runtime; bind
    it at boot only (O(runtime=false)) and reboot.
seealso:
  - module: virtforge.libvirt.kernel_args
  - module: virtforge.libvirt.host_info
  - module: virtforge.libvirt.domain
  - name: Kernel VFIO documentation
    description: How vfio-pci, IOMMU groups and driver_override work.
    link: https://docs.kernel.org/driver-api/vfio.html
"""

EXAMPLES = r"""
- name: Reserve a NIC and a GPU (with its audio function, same IOMMU group) for guests
  virtforge.libvirt.vfio_bind:
    addresses: ["0000:03:00.0", "0000:81:00.0", "0000:81:00.1"]

- name: Every Intel 82574L on the host goes to vfio-pci, at boot only (the IOMMU comes on with the next reboot)
  virtforge.libvirt.vfio_bind:
    ids: ["8086:10d3"]
    runtime: false

- name: Give the NIC back to the host
  virtforge.libvirt.vfio_bind:
    addresses: ["0000:03:00.0"]
    state: absent
"""

RETURN = r"""
devices:
  description: Each device meant (ids resolved to addresses).
  returned: always
  type: list
  elements: dict
  contains:
    address: {description: PCI address., type: str, sample: "0000:03:00.0"}
    id: {description: vendor:device id., type: str, sample: "8086:10d3"}
    class_code: {description: PCI class code., type: int, sample: 131072}
    driver_before: {description: Its driver before the run (V(null) - none)., type: str, sample: e1000e}
    driver: {description: Its driver after the run (in check mode - the one planned)., type: str, sample: vfio-pci}
    action: {description: "V(bind), V(release) or V(null) - nothing to do now.", type: str, sample: bind}
    iommu_group: {description: Its IOMMU group (V(null) - IOMMU off)., type: str, sample: "12"}
    group_devices: {description: Every device of that group., type: list, elements: str, sample: ["0000:03:00.0"]}
    vfio_device: {description: The group's VFIO character device QEMU opens., type: str, sample: /dev/vfio/12}
    interfaces: {description: Its network interfaces (before binding)., type: list, elements: str, sample: [enp3s0]}
rules_file:
  description: The udev rules file and whether it changed.
  returned: always
  type: dict
  sample: {path: /etc/udev/rules.d/85-virtforge-vfio.rules, changed: true}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.virtforge.libvirt.plugins.module_utils import _vfio
from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import VirtforgeError, fail_from_exception
from ansible_collections.virtforge.libvirt.plugins.module_utils._run import Runner

_SHOWN = ("address", "id", "class_code", "driver_before", "driver", "action", "iommu_group", "group_devices",
          "vfio_device", "interfaces")


def main():
    module = AnsibleModule(
        argument_spec=dict(
            addresses=dict(type="list", elements="str", default=[]),
            ids=dict(type="list", elements="str", default=[]),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            runtime=dict(type="bool", default=True),
            persistent=dict(type="bool", default=True),
            force=dict(type="bool", default=False),
            rules_file=dict(type="path", default=_vfio.RULES_FILE),
        ),
        supports_check_mode=True,
    )
    try:
        result = _vfio.plan(module.params)
        if result["errors"]:
            raise VirtforgeError("refused, nothing changed: " + "; ".join(result["errors"]), "addresses",
                                 refusals=result["errors"])
        changed = result["rules"]["changed"] or any(d["action"] for d in result["devices"])
        diff = dict(before_header="drivers and %s" % result["rules"]["path"],
                    after_header="drivers and %s" % result["rules"]["path"],
                    before="".join("%s %s\n" % (d["address"], d["driver_before"]) for d in result["devices"])
                    + result["rules"]["before"])
        if changed and not module.check_mode:
            _vfio.apply(result, Runner(module))
        elif module.check_mode:
            for device in result["devices"]:
                if device["action"]:
                    device["driver"] = _vfio.VFIO_DRIVER if device["action"] == "bind" else "(host driver)"
        diff["after"] = ("".join("%s %s\n" % (d["address"], d["driver"]) for d in result["devices"])
                         + result["rules"]["after"])
    except Exception as exc:
        fail_from_exception(module, exc)
    out = dict(changed=changed,
               devices=[{k: d.get(k) for k in _SHOWN} for d in result["devices"]],
               rules_file=dict(path=result["rules"]["path"], changed=result["rules"]["changed"]))
    if module._diff:
        out["diff"] = diff
    module.exit_json(**out)


if __name__ == "__main__":
    main()
