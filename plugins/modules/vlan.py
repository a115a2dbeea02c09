#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vlan
short_description: 802.1Q VLAN interfaces on a hypervisor host, applied safely with automatic rollback
description:
  - Creates, updates or removes a VLAN interface on a NIC, bond or bridge, with its IP configuration.
  - Works through NetworkManager, ifupdown or iproute2 (runtime only, also inside network namespaces).
  - Every change is applied with a rollback armed beforehand and is verified afterwards; see O(rollback_timeout).
  - The kernel cannot change a VLAN's id or parent in place; the iproute2 provider replaces the link.
version_added: 0.1.0
author:
  - virtforge.libvirt contributors (@virtforge)
options:
  id:
    description:
      - VLAN id, 1-4094 (0 and 4095 are reserved by 802.1Q). Required with O(state=present).
    type: int
  parent:
    description:
      - The interface carrying the VLAN (NIC, bond or bridge); it must exist. Required with O(state=present).
    type: str
extends_documentation_fragment:
  - virtforge.libvirt.hostnet
"""

EXAMPLES = r"""
- name: VLAN 100 on a bond, with an address
  virtforge.libvirt.vlan:
    name: bond0.100
    parent: bond0
    id: 100
    ip:
      method: static
      addresses: [198.51.100.5/24]

- name: Storage VLAN on a bridge, DHCP (persistent providers)
  virtforge.libvirt.vlan:
    name: vlan200
    parent: br0
    id: 200
    ip:
      method: dhcp
"""

RETURN = r"""
changes:
  description: What changed (or would change in check mode), one entry per setting.
  returned: always
  type: list
  elements: dict
  sample: [{"path": "stp", "action": "update", "before": true, "after": false}]
commands:
  description: The commands and file writes of the change.
  returned: always
  type: list
  elements: str
rollback_commands:
  description: The steps the rollback would run (armed while the change was applied).
  returned: when something changed outside check mode
  type: list
  elements: str
provider:
  description: The provider used.
  returned: always
  type: str
state:
  description: The interface's configuration after the run (canonical model).
  returned: always
  type: dict
verify:
  description: Connectivity verification (target, method, result, attempts).
  returned: when something changed outside check mode
  type: dict
rollback:
  description: The rollback of this run (armed, timeout, status disarmed / rolled-back, step results).
  returned: when something changed outside check mode
  type: dict
stale_rollbacks:
  description: Rollbacks earlier runs left behind and what was done with them (restored, discarded, reported, waited).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.virtforge.libvirt.plugins.module_utils._hostnet import manager


def main():
    module = AnsibleModule(argument_spec=manager.argument_spec("vlan"), supports_check_mode=True)
    manager.main_for(module, "vlan")


if __name__ == "__main__":
    main()
