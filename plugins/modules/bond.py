#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: bond
short_description: Bonded NICs (link aggregation) on a hypervisor host, applied safely with automatic rollback
description:
  - Creates, updates or removes a Linux bond with its members, mode, link monitoring and IP configuration.
  - Works through NetworkManager, ifupdown (with ifenslave) or iproute2 (runtime only).
  - Every change is applied with a rollback armed beforehand and is verified afterwards; see O(rollback_timeout).
  - Validation happens before anything changes; a member already enslaved to another bond or bridge is refused.
  - With the NetworkManager provider on Debian, a bond is refused while the ifenslave package is installed, because
    NetworkManager's dispatcher runs its post-down hook, which releases the bond's ports behind NetworkManager's
    back (the ports flap); purge ifenslave (a plain remove leaves the hook) or use O(provider=ifupdown).
version_added: 0.1.0
author:
  - virtforge.libvirt contributors (@virtforge)
options:
  members:
    description:
      - The bond's member NICs, the complete list. Members not listed are released. Not changed when not set.
    type: list
    elements: str
  mode:
    description:
      - Bonding mode, one of V(balance-rr), V(active-backup), V(balance-xor), V(broadcast), V(802.3ad),
        V(balance-tlb), V(balance-alb); the numbers V(0)-V(6) are accepted and canonicalised to these names.
      - When not set, an existing bond keeps its mode and a new one gets the kernel default V(balance-rr).
      - V(active-backup) needs no switch support and is the usual choice for a management uplink;
        V(802.3ad) (LACP) needs a switch configured for it.
    type: str
  miimon:
    description:
      - MII link monitoring interval in milliseconds (0 turns it off). Excludes O(arp_interval).
    type: int
  arp_interval:
    description:
      - ARP monitoring interval in milliseconds (0 turns it off); needs O(arp_ip_target). Not with
        V(802.3ad), V(balance-tlb) or V(balance-alb).
    type: int
  arp_ip_target:
    description:
      - Addresses probed by ARP monitoring (at most 16).
    type: list
    elements: str
  lacp_rate:
    description:
      - LACPDU rate for V(802.3ad) only, V(slow) (every 30 s) or V(fast) (every second).
    type: str
  xmit_hash_policy:
    description:
      - Transmit hash policy for V(balance-xor), V(802.3ad) and V(balance-tlb), one of V(layer2), V(layer2+3),
        V(layer3+4), V(encap2+3), V(encap3+4), V(vlan+srcmac).
    type: str
  primary:
    description:
      - Preferred member for V(active-backup), V(balance-tlb) and V(balance-alb); must be one of O(members).
    type: str
extends_documentation_fragment:
  - virtforge.libvirt.hostnet
"""

EXAMPLES = r"""
- name: Active-backup bond of two NICs, no address (a bridge goes on top)
  virtforge.libvirt.bond:
    name: bond0
    members: [eno1, eno2]
    mode: active-backup
    miimon: 100
    primary: eno1

- name: LACP bond with a layer3+4 hash, fast LACPDUs, jumbo frames
  virtforge.libvirt.bond:
    name: bond1
    members: [ens1f0, ens1f1]
    mode: 802.3ad
    lacp_rate: fast
    xmit_hash_policy: layer3+4
    miimon: 100
    mtu: 9000

- name: Management bond with an address, verified against the gateway, 90 s to roll back
  virtforge.libvirt.bond:
    name: bond0
    members: [eno1, eno2]
    mode: 1
    miimon: 100
    ip:
      method: static
      addresses: [192.0.2.20/24]
      gateway: 192.0.2.1
    verify_target: 192.0.2.1
    rollback_timeout: 90
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
    module = AnsibleModule(argument_spec=manager.argument_spec("bond"), supports_check_mode=True)
    manager.main_for(module, "bond")


if __name__ == "__main__":
    main()
