#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: bridge
short_description: Linux bridges for virtual machines, applied safely with automatic rollback
description:
  - Creates, updates or removes a Linux bridge on a hypervisor host, with its ports, STP settings,
    VLAN filtering, MTU and IP configuration.
  - Works through NetworkManager, ifupdown or iproute2 (runtime only, also inside network namespaces).
  - Every change is applied with a rollback armed beforehand and is verified afterwards; see O(rollback_timeout).
version_added: 0.1.0
author:
  - virtforge.libvirt contributors (@virtforge)
options:
  ports:
    description:
      - The bridge's ports (NICs, bonds, VLANs), the complete list. Ports not listed are released.
      - Not changed when not set.
    type: list
    elements: str
  stp:
    description:
      - Spanning Tree Protocol. Off by default, because a VM bridge normally has one uplink, and with STP on every new
        port (each guest's tap device as it starts or migrates in) stays in listening/learning for twice the
        forward delay (30 s by default) before it forwards, so guests lose their first DHCP and ARP packets.
        Turn it on only when the bridge joins loops of switches.
    type: bool
    default: false
  forward_delay:
    description:
      - Forward delay in seconds; 2-30 with STP on (IEEE 802.1D limits), 0-30 with STP off.
    type: int
  priority:
    description:
      - Bridge priority for the STP root election (0-65535, lower wins).
    type: int
  vlan_filtering:
    description:
      - VLAN-aware bridge (802.1Q filtering on ports).
    type: bool
extends_documentation_fragment:
  - virtforge.libvirt.hostnet
"""

EXAMPLES = r"""
- name: VM bridge on the first NIC, address on the bridge, persistent through the system's own tool
  virtforge.libvirt.bridge:
    name: br0
    ports: [eno1]
    ip:
      method: static
      addresses: [192.0.2.10/24]
      gateway: 192.0.2.1
      dns: [192.0.2.53]

- name: VLAN-aware bridge on a bond, no address, jumbo frames
  virtforge.libvirt.bridge:
    name: brvm
    ports: [bond0]
    vlan_filtering: true
    mtu: 9000

- name: A bridge inside a network namespace (runtime only), verified against a peer
  virtforge.libvirt.bridge:
    name: br-test
    netns: lab
    ports: [veth0]
    ip: {method: static, addresses: [198.51.100.1/24]}
    verify_target: 198.51.100.2
    rollback_timeout: 30

- name: Remove a bridge (its ports stay, released)
  virtforge.libvirt.bridge:
    name: br-old
    state: absent
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
    module = AnsibleModule(argument_spec=manager.argument_spec("bridge"), supports_check_mode=True)
    manager.main_for(module, "bridge")


if __name__ == "__main__":
    main()
