# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):

    # Options shared by the host network modules (bridge, bond, vlan).
    DOCUMENTATION = r"""
options:
  name:
    description:
      - Interface name (at most 15 characters; letters, digits, C(.), C(_), C(-)).
    type: str
    required: true
  state:
    description:
      - V(present) creates or updates the interface, V(absent) removes it (its ports are released, not removed).
    type: str
    choices: [present, absent]
    default: present
  mtu:
    description:
      - MTU (68-65535). Not changed when not set.
    type: int
  ip:
    description:
      - IP configuration of the interface. Not managed when not set.
    type: dict
    suboptions:
      method:
        description:
          - V(none) (no address), V(static) (O(ip.addresses)), or V(dhcp).
          - V(dhcp) needs a persistent provider; the iproute2 provider runs no DHCP client.
        type: str
        choices: [none, static, dhcp]
        default: none
      addresses:
        description:
          - Addresses with prefix length (V(192.0.2.10/24), V(2001:db8::10/64)); only with V(static).
        type: list
        elements: str
      gateway:
        description:
          - Default gateway; must be inside one of O(ip.addresses).
        type: str
      dns:
        description:
          - DNS servers (persistent providers only).
        type: list
        elements: str
  provider:
    description:
      - How the configuration is applied.
      - V(auto) picks V(networkmanager) when NetworkManager runs, V(ifupdown) when C(/etc/network/interfaces)
        exists, else V(iproute2) (runtime only). With O(netns) it is V(iproute2).
      - V(networkmanager) writes connection profiles with C(nmcli); V(ifupdown) writes one file per interface
        in C(/etc/network/interfaces.d/) and brings it up with C(ifreload -a) (ifupdown2) or C(ifdown)/C(ifup);
        V(iproute2) changes the running kernel only with C(ip).
    type: str
    choices: [auto, iproute2, ifupdown, networkmanager]
    default: auto
  netns:
    description:
      - Network namespace to work in (C(ip -n NETNS)); iproute2 provider only.
      - Connectivity verification runs inside the namespace too.
    type: str
  rollback_timeout:
    description:
      - Seconds after which a detached watchdog restores the previous configuration unless the change was
        verified and the rollback disarmed. At least 5.
    type: int
    default: 60
  verify:
    description:
      - Verify connectivity to O(verify_target) after the change; roll back at once when it fails.
      - Without a target (none given and no E(SSH_CONNECTION)) verification is skipped and reported so;
        the watchdog is still armed while the change is applied.
    type: bool
    default: true
  verify_target:
    description:
      - Host that must answer after the change. Defaults to the address the controller connected from
        (first field of E(SSH_CONNECTION)).
      - It must answer before the change too, or nothing is changed.
    type: str
  verify_port:
    description:
      - TCP port for O(verify_method=tcp). A refused connection counts as an answer (the host is reachable).
    type: int
    default: 22
  verify_method:
    description:
      - V(ping) (ICMP echo), V(tcp) (a TCP connect), or V(auto) (ping when installed, else tcp).
    type: str
    choices: [auto, ping, tcp]
    default: auto
  stale_rollback:
    description:
      - What to do with a rollback an aborted earlier run left armed and whose watchdog is no longer running
        (state under C(/run/virtforge/hostnet/)).
      - V(restore) applies its saved previous configuration first, V(discard) drops it. Either way it is
        reported in RV(stale_rollbacks). A rollback whose watchdog still runs is waited for.
    type: str
    choices: [restore, discard]
    default: restore
  planned_interfaces:
    description:
      - Interfaces that earlier tasks of the same run create (a bond before the bridge on it, a bridge before
        its VLAN). In check mode those tasks created nothing, so a member, port or parent named here may be
        missing and the plan says it would be used; outside check mode it must exist like any other.
      - The M(virtforge.libvirt.host_build) role passes its bonds and bridges here.
    type: list
    elements: str
    default: []
notes:
  - Every change runs inside a safe apply, see docs/host-networking.md. The rollback restores the
    configuration captured just before the change, with the same provider.
attributes:
  check_mode:
    support: full
    description: Computes the same plan as a real run and stops before arming or applying anything.
  diff_mode:
    support: full
    description: Shows the interface configuration before and after.
  idempotent:
    support: full
    description: A second run with the same options changes nothing.
"""
