#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: qos_hook
short_description: Install the libvirt hook that builds per-application traffic classes when a domain starts
description:
  - Per-application traffic classes of a NIC (M(virtforge.libvirt.domain) C(interfaces[].app_qos)) are tc HTB
    classes on the NIC's host-side tap, which libvirt creates anew each time the domain starts. This module
    installs the libvirt hook (C(/etc/libvirt/hooks/qemu.d/virtforge-qos)) that rebuilds them then, from the
    classes stored in the domain's metadata.
  - The hook only acts on domains that have classes; it never stops a domain from starting (problems are
    written to libvirt's log).
  - The file is written under a temporary name and renamed into place. When the hook is new, libvirt is
    reloaded so that it finds it (C(systemctl reload) where systemd runs, else SIGHUP to the daemon);
    a reload leaves running guests alone.
  - Run it on the libvirt host itself (the module writes local files).
version_added: 0.1.0
author:
  - virtforge.libvirt contributors (@virtforge)
options:
  state:
    description: Whether the hook is installed.
    type: str
    choices: [present, absent]
    default: present
  path:
    description: Where the hook goes; libvirt runs every executable in C(/etc/libvirt/hooks/qemu.d/).
    type: path
    default: /etc/libvirt/hooks/qemu.d/virtforge-qos
  python:
    description: The Python 3 interpreter of the hook's first line (the hook uses the standard library only).
    type: path
    default: /usr/bin/python3
  reload:
    description: Reload libvirt after installing the hook for the first time.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Says whether the hook would be installed, updated or removed.
  diff_mode:
    support: full
    description: Shows the hook before and after.
  idempotent:
    support: full
    description: The same hook text is not written again.
notes:
  - The hook needs C(tc) and C(ip) (iproute2) and the kernel modules sch_htb, sch_ingress, cls_u32,
    act_mirred and ifb. libvirt runs it in the daemon's own network namespace, where the taps are.
seealso:
  - module: virtforge.libvirt.domain
"""

EXAMPLES = r"""
- name: Install the traffic-class hook on a KVM host
  virtforge.libvirt.qos_hook:

- name: Remove it
  virtforge.libvirt.qos_hook:
    state: absent
"""

RETURN = r"""
path:
  description: The hook's path.
  returned: always
  type: str
reloaded:
  description: The daemon that was reloaded (V(libvirtd) or V(virtqemud)), or V(null).
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.virtforge.libvirt.plugins.module_utils import _qos_hook
from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import fail_from_exception


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["present", "absent"], default="present"),
            path=dict(type="path", default=_qos_hook.HOOK_PATH),
            python=dict(type="path", default="/usr/bin/python3"),
            reload=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    try:
        result = _qos_hook.run(module.params, module.check_mode)
    except Exception as exc:
        fail_from_exception(module, exc)
    if not module._diff:
        result.pop("diff")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
