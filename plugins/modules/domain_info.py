#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: domain_info
short_description: Information about libvirt domains, read in bulk
version_added: 1.0.0
description:
  - Returns all libvirt domains of a host, or those matching names, glob patterns, states and tags, with their
    state, vCPUs, memory, disks, interfaces, tags, autostart and persistence, and the guest's IP addresses.
  - The number of libvirt calls does not grow with the number of domains for the list, the state, the vCPUs and
    the memory (C(listAllDomains) and C(domainListGetStats)). Reading the tags and devices costs one C(XMLDesc)
    call per domain (O(details)); guest IPs from DHCP leases cost one call per active libvirt network; the
    C(agent) and C(arp) IP sources cost one call per running domain. See the collection's C(docs/inventory.md).
  - The keys of each returned domain are named like the options of M(virtforge.libvirt.domain) where they
    overlap, so a result can be fed back to it.
  - Names that match nothing give an empty list, not an error, unless O(fail_on_missing=true).
author:
  - virtforge.libvirt contributors (@virtforge)
extends_documentation_fragment:
  - virtforge.libvirt.libvirt
  - virtforge.libvirt.libvirt.attributes
attributes:
  check_mode:
    support: full
    description: The module only reads; check mode returns the same result.
  diff_mode:
    support: none
    description: Nothing is changed, so there is nothing to diff.
  idempotent:
    support: full
    description: Never changes anything.
options:
  name:
    description:
      - Names of the domains to return. A name containing V(*), V(?) or V([) is a shell-style glob pattern.
      - When not set, all domains (subject to O(state) and O(tags)).
    type: list
    elements: str
    aliases: [names]
  state:
    description:
      - Return only domains in one of these states.
      - V(stopped) is libvirt's C(shutoff); V(suspended) is C(pmsuspended); V(shutting_down) is C(shutdown).
    type: list
    elements: str
    choices: [running, paused, stopped, shutting_down, crashed, suspended, unknown]
  tags:
    description:
      - Return only domains that carry B(all) of these tags (set by M(virtforge.libvirt.domain)'s C(tags), stored
        in the domain metadata, namespace C(urn:virtforge:libvirt:1)).
      - With O(details=false) the tags of the domains left by the other filters are read with one
        C(virDomainGetMetadata) call each.
    type: list
    elements: str
  details:
    description:
      - Read each selected domain's XML (one C(XMLDesc) call per domain) for its tags, disks, interfaces (MAC,
        model, network), title, description, domain type and guest agent channel.
      - With V(false) only libvirt's bulk calls are made; C(tags) is V(null), C(disks) and C(interfaces) hold only
        what the bulk statistics give (disk C(dev) and C(path), interface C(target)), and the V(lease) IP source
        asks libvirt once per active domain because the MAC addresses are not known.
    type: bool
    default: true
  ip_sources:
    description:
      - Where to look for the guest's IP addresses, in order. Addresses found by an earlier source come first;
        an address is listed once.
      - V(lease) reads the DHCP leases of libvirt's own networks (one call per active network, matched by MAC);
        when a MAC has several leases, the newest comes first.
      - V(agent) asks the QEMU guest agent of each running domain (with O(details), only domains with an agent
        channel); it needs a read-write connection.
      - V(arp) reads the host's ARP table for each running domain.
      - Loopback and link-local addresses are left out. An empty list skips IP addresses.
    type: list
    elements: str
    choices: [lease, agent, arp]
    default: [lease]
  fail_on_missing:
    description:
      - Fail when a name in O(name) matches no domain (a glob pattern that matches nothing counts as missing).
      - By default missing names are only listed in RV(missing).
    type: bool
    default: false
notes:
  - The connection is opened read-only unless V(agent) is in O(ip_sources).
seealso:
  - module: virtforge.libvirt.domain
  - plugin: virtforge.libvirt.libvirt
    plugin_type: inventory
"""

EXAMPLES = r"""
- name: All domains of the host
  virtforge.libvirt.domain_info:
  register: all_domains

- name: The running web servers, with IPs from DHCP leases, then from the guest agent
  virtforge.libvirt.domain_info:
    name: "web-*"
    state: running
    tags: [web]
    ip_sources: [lease, agent]
  register: web

- name: Print name and first IP
  ansible.builtin.debug:
    msg: "{{ item.name }} {{ item.ip_addresses[0].address | default('-') }}"
  loop: "{{ web.domains }}"
  loop_control:
    label: "{{ item.name }}"

- name: Fail if one of these domains does not exist
  virtforge.libvirt.domain_info:
    name: [db1, db2]
    fail_on_missing: true

- name: Only the bulk calls (state, vCPUs, memory), for a host with many domains
  virtforge.libvirt.domain_info:
    details: false
    ip_sources: []
"""

RETURN = r"""
domains:
  description: The domains found, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Domain name.
      type: str
      sample: web1
    uuid:
      description: Domain UUID.
      type: str
    id:
      description: libvirt's ID of the running domain; V(null) when the domain is not active.
      type: int
    state:
      description: V(running), V(paused), V(stopped), V(shutting_down), V(crashed), V(suspended) or V(unknown).
      type: str
      sample: running
    active:
      description: Whether the domain has a running (or paused) QEMU process.
      type: bool
    autostart:
      description: Whether libvirt starts the domain when the host boots.
      type: bool
    persistent:
      description: Whether the domain has a persistent definition (V(false) for transient domains).
      type: bool
    vcpus:
      description: Current number of vCPUs.
      type: int
      sample: 2
    max_vcpus:
      description: Maximum number of vCPUs.
      type: int
    memory:
      description: Current memory in MiB (C(currentMemory), or the balloon's size for a running domain).
      type: int
      sample: 512
    memory_bytes:
      description: RV(domains.memory) in bytes.
      type: int
    max_memory:
      description: Maximum memory in MiB (libvirt's C(memory) element).
      type: int
    max_memory_bytes:
      description: RV(domains.max_memory) in bytes.
      type: int
    domain_type:
      description: V(kvm), V(qemu)... V(null) without O(details).
      type: str
    title:
      description: Short title of the domain, if any.
      type: str
    description:
      description: Description of the domain, if any.
      type: str
    guest_agent:
      description: Whether the domain has a QEMU guest agent channel. V(null) without O(details).
      type: bool
    tags:
      description: The domain's tags, sorted. V(null) without O(details) (unless O(tags) is used).
      type: list
      elements: str
      sample: [prod, web]
    disks:
      description: Disks and CD-ROMs.
      type: list
      elements: dict
      contains:
        dev:
          description: Target device name (V(vda), V(sdb)...).
          type: str
        path:
          description: Source file, block device, directory or network name.
          type: str
        pool:
          description: Storage pool, for a disk of type V(volume).
          type: str
        volume:
          description: Volume name, for a disk of type V(volume).
          type: str
        format:
          description: Image format (driver type), e.g. V(qcow2) or V(raw).
          type: str
        bus:
          description: V(virtio), V(sata), V(scsi), V(ide), V(usb).
          type: str
        device:
          description: V(disk), V(cdrom), V(floppy), V(lun).
          type: str
        type:
          description: Disk type (V(file), V(block), V(volume), V(network), V(dir)).
          type: str
        readonly:
          description: Whether the disk is read-only.
          type: bool
        io_class:
          description:
            - V(paravirtual) (virtio, SCSI on virtio-scsi), V(emulated) (SATA, IDE, USB, other SCSI controllers) or
              V(pass-through) (C(device=lun)). Only with O(details).
          type: str
          sample: paravirtual
    interfaces:
      description: Network interfaces.
      type: list
      elements: dict
      contains:
        mac:
          description: MAC address, lower case.
          type: str
        type:
          description: V(network), V(bridge), V(direct), V(user)...
          type: str
        network:
          description: libvirt network, for type V(network).
          type: str
        bridge:
          description: Host bridge, for type V(bridge).
          type: str
        direct:
          description: Host device, for type V(direct) (macvtap).
          type: str
        model:
          description: NIC model (V(virtio), V(e1000e)...).
          type: str
        target:
          description: Host tap device of a running domain (V(vnet0)...).
          type: str
        io_class:
          description:
            - V(paravirtual) (model virtio), V(emulated) (e1000e, rtl8139...) or V(pass-through)
              (type V(hostdev), an SR-IOV VF). Only with O(details).
          type: str
          sample: paravirtual
    hostdevs:
      description:
        - Host devices passed through (C(<hostdev>)), each with its C(type) (V(pci), V(usb), V(scsi)...), C(source)
          (PCI address C(0000:03:00.0), USB C(vendor:product) or bus/device, SCSI adapter) and C(io_class)
          V(pass-through). V(null) without O(details).
      type: list
      elements: dict
    migratable:
      description:
        - V(false) when pass-through devices pin the domain to its host (see RV(domains.migration_blockers)).
          V(null) without O(details).
      type: bool
    migration_blockers:
      description: Why the domain cannot be migrated, one reason per pass-through device.
      type: list
      elements: str
      sample: ["hostdev pci 0000:03:00.0 is passed through"]
    ip_addresses:
      description: The guest's IP addresses, in the order of O(ip_sources).
      type: list
      elements: dict
      contains:
        address:
          description: The IP address.
          type: str
          sample: 10.251.0.123
        prefix:
          description: Prefix length.
          type: int
        family:
          description: V(ipv4) or V(ipv6).
          type: str
        mac:
          description: MAC address of the interface.
          type: str
        interface:
          description: Guest interface name (agent) or host tap device (lease, ARP).
          type: str
        network:
          description: libvirt network the address belongs to, when known.
          type: str
        source:
          description: V(lease), V(agent) or V(arp).
          type: str
        hostname:
          description: Host name the guest sent with its DHCP request (lease source only).
          type: str
missing:
  description: Names or patterns from O(name) that matched no domain.
  returned: always
  type: list
  elements: str
  sample: [db3]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import VirtforgeError, fail_from_exception
from ansible_collections.virtforge.libvirt.plugins.module_utils._libvirt import (
    CONNECTION_ARGSPEC,
    check_libraries,
    module_connection,
)
from ansible_collections.virtforge.libvirt.plugins.module_utils._query import (
    DEFAULT_IP_SOURCES,
    IP_SOURCES,
    STATE_CHOICES,
    query_domains,
)


def argument_spec():
    spec = dict(CONNECTION_ARGSPEC)
    spec.update(
        name=dict(type="list", elements="str", aliases=["names"]),
        state=dict(type="list", elements="str", choices=STATE_CHOICES),
        tags=dict(type="list", elements="str"),
        details=dict(type="bool", default=True),
        ip_sources=dict(type="list", elements="str", choices=IP_SOURCES, default=list(DEFAULT_IP_SOURCES)),
        fail_on_missing=dict(type="bool", default=False),
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    check_libraries(module)
    params = module.params
    conn = None
    try:
        conn = module_connection(module, readonly="agent" not in params["ip_sources"])
        result = query_domains(conn, names=params["name"], states=params["state"], tags=params["tags"],
                               details=params["details"], ip_sources=params["ip_sources"])
        if result.missing and params["fail_on_missing"]:
            raise VirtforgeError("no domain matches %s" % ", ".join(result.missing), option="name",
                                 fix="Check the names, or set fail_on_missing: false to get an empty list",
                                 missing=result.missing)
    except Exception as exc:  # pylint: disable=broad-except
        fail_from_exception(module, exc, changed=False, domains=[])
    finally:
        if conn is not None:
            conn.close()
    for warning in result.warnings:
        module.warn(warning)
    module.exit_json(changed=False, domains=result.domains, missing=result.missing)


if __name__ == "__main__":
    main()
