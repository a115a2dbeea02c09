#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: network
short_description: Declarative libvirt virtual networks
version_added: 0.1.0
description:
  - Defines, starts, stops, autostarts and removes one libvirt virtual network.
  - Only the options you set are compared with the existing definition; everything else in it is kept.
  - A changed definition of an existing network is applied. DHCP ranges and static DHCP hosts of an
    active network are changed live (C(virNetworkUpdate)); guests stay connected. Any other change is
    redefined at once and takes effect when the network restarts, which the module does only with
    O(allow_restart=true); otherwise it reports RV(restart_required) and a warning.
  - A restart recreates the network's bridge. libvirt 9.0 does not reconnect running guests' interfaces
    to it, so after a restart the module re-attaches them (RV(reconnected)); guests see a short outage.
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
    description: Name of the network.
    type: str
    required: true
  forward:
    description:
      - Forward mode. V(none) is an isolated network (no C(<forward>) element); V(nat) masquerades to the
        host's uplinks; V(route) routes without NAT; V(open) adds no firewall rules; V(bridge) uses an
        existing host bridge given in O(bridge) (no addresses, no DHCP); V(hostdev) is a pool of the SR-IOV
        virtual functions of the physical function O(pf) - each guest NIC on the network gets a VF of its own,
        bound to vfio-pci by libvirt (C(managed)), with the NIC's MAC.
    type: str
    choices: [nat, route, open, bridge, hostdev, none]
  pf:
    description:
      - The SR-IOV physical function (host NIC name, e.g. V(enp3s0f0)) whose VFs form the pool of a
        O(forward=hostdev) network. Its VFs must exist (C(sriov_numvfs)) for the network to start.
    type: str
  bridge:
    description:
      - Name of the bridge (at most 15 characters). libvirt picks C(virbrN) when a new network sets none.
    type: str
  stp:
    description: Spanning tree protocol on the bridge.
    type: bool
  delay:
    description: Bridge forward delay in seconds.
    type: int
  mtu:
    description: MTU of the bridge.
    type: int
  domain_name:
    description: DNS domain of the network's DHCP/DNS server.
    type: str
  ip:
    description:
      - The network's address (IPv4, or IPv6 when the address is one) with DHCP.
    type: dict
    suboptions:
      address:
        description: The host's address on the network, for example V(192.168.100.1).
        type: str
        required: true
      prefix:
        description: Prefix length, for example V(24). Either this or O(ip.netmask).
        type: int
      netmask:
        description: Netmask, for example V(255.255.255.0).
        type: str
      dhcp_ranges:
        description:
          - DHCP ranges; the list replaces the network's ranges. Addresses must be inside the subnet.
          - Changed live on an active network.
        type: list
        elements: dict
        suboptions:
          start:
            description: First address.
            type: str
            required: true
          end:
            description: Last address.
            type: str
            required: true
      dhcp_hosts:
        description:
          - Static DHCP hosts, identified by MAC (or by name when there is no MAC). Hosts not listed are
            kept unless O(purge_dhcp_hosts=true). Changed live on an active network.
        type: list
        elements: dict
        suboptions:
          mac:
            description: MAC address of the guest interface.
            type: str
          name:
            description: Host name handed out.
            type: str
          ip:
            description: Address handed out.
            type: str
            required: true
  purge_dhcp_hosts:
    description: Remove static DHCP hosts not listed in O(ip.dhcp_hosts).
    type: bool
    default: false
  state:
    description:
      - V(present) defines the network (a new network stays inactive; an existing one keeps its state).
      - V(active) defines and starts it; V(inactive) defines and stops it; V(absent) stops and undefines it.
    type: str
    choices: [present, active, inactive, absent]
    default: present
  autostart:
    description: Whether libvirt starts the network when it starts. Not changed when not set.
    type: bool
  allow_restart:
    description:
      - Restart an active network whose definition changed in a way that cannot be applied live.
      - Guests on the network lose connectivity for a moment; their interfaces are re-attached to the new bridge.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: A pool of SR-IOV VFs of enp3s0f0; guests with a NIC on it get a VF each
  virtforge.libvirt.network:
    name: vf-pool
    forward: hostdev
    pf: enp3s0f0
    state: active
    autostart: true

- name: A NAT network with DHCP and two fixed addresses
  virtforge.libvirt.network:
    name: lab
    forward: nat
    bridge: virbr-lab
    stp: true
    delay: 0
    domain_name: lab.internal
    ip:
      address: 192.168.150.1
      prefix: 24
      dhcp_ranges:
        - {start: 192.168.150.100, end: 192.168.150.200}
      dhcp_hosts:
        - {mac: "52:54:00:00:00:11", name: web1, ip: 192.168.150.11}
        - {mac: "52:54:00:00:00:12", name: db1, ip: 192.168.150.12}
    state: active
    autostart: true

- name: An isolated network for a storage backend
  virtforge.libvirt.network:
    name: storage
    forward: none
    bridge: virbr-stor
    mtu: 9000
    ip:
      address: 10.77.0.1
      prefix: 24
    state: active

- name: Guests on an existing host bridge
  virtforge.libvirt.network:
    name: lan
    forward: bridge
    bridge: br0
    state: active

- name: Move the network to another subnet (needs a restart)
  virtforge.libvirt.network:
    name: storage
    ip:
      address: 10.78.0.1
      prefix: 24
    allow_restart: true
    state: active
"""

RETURN = r"""
name:
  description: The network name.
  returned: always
  type: str
active:
  description: Whether the network is active after the run (in check mode, would be).
  returned: always
  type: bool
autostart:
  description: Whether the network starts with libvirt.
  returned: when the network exists
  type: bool
restart_required:
  description: The network is active and its new definition takes effect only after a restart (see O(allow_restart)).
  returned: always
  type: bool
reconnected:
  description: Running guests' interfaces re-attached to the bridge after a restart.
  returned: when the network was restarted
  type: list
  elements: dict
  sample: [{domain: web1, mac: "52:54:00:00:00:11", tap: vnet3, bridge: virbr-lab}]
changes:
  description: What changed, as a list of dicts with path, action, before, after, live (and state steps).
  returned: always
  type: list
  elements: dict
xml:
  description: The network's persistent definition after the run (in check mode, the planned one).
  returned: when the network exists
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import fail_from_exception
from ansible_collections.virtforge.libvirt.plugins.module_utils._libvirt import (
    CONNECTION_ARGSPEC,
    check_libraries,
    module_connection,
)
from ansible_collections.virtforge.libvirt.plugins.module_utils._network import NETWORK_ARGSPEC, run_network
from ansible_collections.virtforge.libvirt.plugins.module_utils._run import Runner


def main():
    module = AnsibleModule(argument_spec=dict(CONNECTION_ARGSPEC, **NETWORK_ARGSPEC), supports_check_mode=True)
    check_libraries(module)
    try:
        conn = module_connection(module)
        try:
            result = run_network(module, conn, Runner(module))
        finally:
            conn.close()
    except Exception as exc:  # pylint: disable=broad-except
        fail_from_exception(module, exc)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
