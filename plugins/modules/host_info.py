#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: host_info
short_description: What a hypervisor host can do - CPU virtualization, KVM, IOMMU, NUMA, hugepages, libvirt
description:
  - Reads the facts a host build and VM placement need, from the host's procfs and sysfs and from libvirt.
  - CPU virtualization flags (C(vmx) for Intel VT-x, C(svm) for AMD-V) and whether KVM is usable, which needs
    both the flag and C(/dev/kvm); C(/dev/kvm) alone is not enough (nested or emulated CPUs can have it
    without hardware virtualization).
  - IOMMU (VT-d/AMD-Vi) and its groups (C(/sys/kernel/iommu_groups)), needed for PCI pass-through; nested
    virtualization (the C(kvm_intel)/C(kvm_amd) C(nested) parameter); NUMA nodes; hugepages; memory.
  - libvirt and QEMU versions and the domain capabilities for the domain type the host supports (C(kvm) when
    KVM is usable, else C(qemu)), when libvirt is reachable at O(uri). An unreachable libvirt is reported in
    RV(libvirt), not a failure (the host may not be built yet).
  - Linux bridges and bonds (C(/sys/class/net)).
version_added: 0.1.0
author:
  - virtforge.libvirt contributors (@virtforge)
options: {}
extends_documentation_fragment:
  - virtforge.libvirt.libvirt
attributes:
  check_mode:
    support: full
    description: Reads only; check mode returns the same result.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to show.
  idempotent:
    support: full
    description: Reads only.
"""

EXAMPLES = r"""
- name: Read the host's virtualization facts
  virtforge.libvirt.host_info:
  register: host

- name: Refuse to build a KVM host without hardware virtualization
  ansible.builtin.assert:
    that: host.kvm_usable
    fail_msg: "{{ host.kvm.reason }}"

- name: Show IOMMU groups for PCI pass-through
  ansible.builtin.debug:
    msg: "{{ host.iommu.groups | map(attribute='devices') | list }}"
"""

RETURN = r"""
kvm_usable:
  description: Whether KVM guests can run here (a vmx/svm CPU flag and /dev/kvm).
  returned: always
  type: bool
cpu:
  description:
    - vendor, model, count, virtualization_flags (vmx/svm), hardware_virtualization,
      virtualization (VT-x/AMD-V).
  returned: always
  type: dict
kvm:
  description:
    - usable, device (/dev/kvm exists), module (kvm_intel/kvm_amd), nested (bool or null),
      reason when unusable.
  returned: always
  type: dict
iommu:
  description: enabled, group_count, groups (id, devices as PCI addresses), units, kernel_args.
  returned: always
  type: dict
numa:
  description: node_count and nodes (id, cpus, memory_total, memory_free in bytes).
  returned: always
  type: dict
hugepages:
  description: sizes (size in bytes, total, free) and default_size.
  returned: always
  type: dict
memory:
  description: total, available, free, swap_total, hugepage_size, in bytes.
  returned: always
  type: dict
network:
  description: bridges (name, ports, stp, forward_delay, vlan_filtering, mtu, operstate) and bonds (name, mode,
    members, active_member, miimon, mtu, operstate).
  returned: always
  type: dict
libvirt:
  description:
    - reachable, uri, version, hypervisor, hypervisor_version, qemu_version, domain_type, and domain_capabilities
      (domain, arch, machine, emulator, max_vcpus, firmware, disk_buses, hostdev, hostdev_subsystems, cpu_modes,
      iommu); error when not reachable.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.virtforge.libvirt.plugins.module_utils import _host
from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import fail_from_exception
from ansible_collections.virtforge.libvirt.plugins.module_utils._libvirt import (
    CONNECTION_ARGSPEC,
    DEFAULT_URI,
    check_libraries,
    libvirt,
    module_connection,
)


def main():
    module = AnsibleModule(argument_spec=dict(CONNECTION_ARGSPEC), supports_check_mode=True)
    check_libraries(module, need_libvirt=False)
    connect = (lambda: module_connection(module)) if libvirt is not None else None
    try:
        facts = _host.gather("/", connect, module.params.get("uri") or DEFAULT_URI)
    except Exception as exc:
        fail_from_exception(module, exc)
    module.exit_json(changed=False, **facts)


if __name__ == "__main__":
    main()
