#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: kernel_args
short_description: Kernel command-line arguments for the next boot (IOMMU, hugepages, isolated CPUs)
description:
  - Adds or removes kernel arguments through the system's bootloader tools, and says whether the running
    kernel still lacks them (RV(reboot_required)). It never reboots; the M(ansible.builtin.reboot) module
    does, when the play allows it.
  - B(grub) (Debian, Ubuntu) - the arguments go in a file of their own, O(grub_file) in C(/etc/default/grub.d)
    (C(grub-mkconfig) reads it after C(/etc/default/grub), which is never edited), then C(update-grub) runs
    (C(grub-mkconfig -o) or C(grub2-mkconfig -o) where there is no C(update-grub)). An argument
    C(/etc/default/grub) already sets counts as present; one it sets is not removed (a warning says so).
  - B(grubby) (RHEL, Fedora and their rebuilds) - C(grubby --update-kernel=ALL --args) or C(--remove-args),
    which also sets the defaults for kernels installed later.
  - An argument with a value replaces the same name with another value (V(iommu=pt) replaces V(iommu=nopt)).
    With O(state=absent), a bare name removes it with any value.
version_added: 0.1.0
author:
  - virtforge.libvirt contributors (@virtforge)
options:
  args:
    description:
      - Arguments, one per item (V(intel_iommu=on), V(iommu=pt), V(hugepagesz=1G), V(isolcpus=2-7)). Letters,
        digits and the characters C(_.-,:/+=) only - no spaces, quotes or shell syntax.
    type: list
    elements: str
    required: true
  state:
    description: Whether the arguments are on the next boot's command line.
    type: str
    choices: [present, absent]
    default: present
  provider:
    description: V(auto) uses C(grubby) where it is installed, else GRUB's C(update-grub)/C(grub-mkconfig).
    type: str
    choices: [auto, grub, grubby]
    default: auto
  grub_file:
    description: The file of the B(grub) provider; it must end in C(.cfg) and be in C(/etc/default/grub.d).
    type: path
    default: /etc/default/grub.d/90-virtforge.cfg
attributes:
  check_mode:
    support: full
    description: Reports the change and RV(reboot_required) without writing or running the bootloader tools.
  diff_mode:
    support: full
    description: The arguments this module manages, before and after.
  idempotent:
    support: full
    description: Arguments already configured are not written again (and the bootloader is not regenerated).
seealso:
  - module: virtforge.libvirt.vfio_bind
  - module: virtforge.libvirt.host_info
  - module: ansible.builtin.reboot
"""

EXAMPLES = r"""
- name: IOMMU on (Intel VT-d), host devices on identity mappings
  virtforge.libvirt.kernel_args:
    args: [intel_iommu=on, iommu=pt]
  register: iommu_args

- name: Reboot when the running kernel lacks them
  ansible.builtin.reboot:
  when: iommu_args.reboot_required

- name: The arguments host_info suggests for this host's firmware (DMAR - Intel, IVRS - AMD)
  virtforge.libvirt.kernel_args:
    args: "{{ host_facts.iommu.suggested_kernel_args }}"
  when: host_facts.iommu.suggested_kernel_args | length > 0

- name: No more isolated CPUs
  virtforge.libvirt.kernel_args:
    args: [isolcpus]
    state: absent
"""

RETURN = r"""
provider:
  description: The provider used.
  returned: always
  type: str
  sample: grub
args:
  description: The arguments this module manages after the run (B(grubby) - the default kernel's arguments).
  returned: always
  type: list
  elements: str
  sample: [intel_iommu=on, iommu=pt]
configured:
  description: Every argument of the next boot the module knows of (set elsewhere and its own).
  returned: always
  type: list
  elements: str
cmdline:
  description: The running kernel's arguments (C(/proc/cmdline)).
  returned: always
  type: list
  elements: str
reboot_required:
  description: Whether the running kernel lacks an argument asked for (or still has one asked away).
  returned: always
  type: bool
reboot_for:
  description: Those arguments.
  returned: always
  type: list
  elements: str
  sample: [intel_iommu=on]
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.virtforge.libvirt.plugins.module_utils import _kernel_args
from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import (
    VirtforgeError, exit_with_result, fail_from_exception)
from ansible_collections.virtforge.libvirt.plugins.module_utils._run import Runner


def main():
    module = AnsibleModule(
        argument_spec=dict(
            args=dict(type="list", elements="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            provider=dict(type="str", choices=["auto", "grub", "grubby"], default="auto"),
            grub_file=dict(type="path", default=_kernel_args.GRUB_D_FILE),
        ),
        supports_check_mode=True,
    )
    try:
        grub_file = module.params["grub_file"]
        if os.path.dirname(grub_file) != "/etc/default/grub.d" or not grub_file.endswith(".cfg"):
            raise VirtforgeError("%s is not a .cfg file in /etc/default/grub.d" % grub_file, "grub_file",
                                 fix="grub-mkconfig reads only /etc/default/grub.d/*.cfg")
        result = _kernel_args.run(module.params, Runner(module), module.check_mode)
    except Exception as exc:
        fail_from_exception(module, exc)
    exit_with_result(module, result)


if __name__ == "__main__":
    main()
