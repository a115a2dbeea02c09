# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: libvirt
short_description: libvirt domains of one or more hosts as Ansible hosts
version_added: 1.0.0
description:
  - Reads the domains of one or more libvirt connection URIs with the same bulk query as
    M(virtforge.libvirt.domain_info) and makes each one an inventory host named after the domain.
  - Groups hosts by state (C(state_running), C(state_stopped)...) and by tag (C(tag_web)...), sets
    C(ansible_host) to the guest's first IP address and C(ansible_connection), and exposes everything
    M(virtforge.libvirt.domain_info) returns as host variables under a prefix (C(libvirt_state),
    C(libvirt_ip_addresses)...).
  - The configuration file name must end in C(.libvirt.yml) or C(.libvirt.yaml).
  - Usable as an AWX or Ansible Automation Platform inventory source ("Sourced from a Project"); see the
    collection's C(docs/inventory.md).
author:
  - virtforge.libvirt contributors (@virtforge)
requirements:
  - libvirt-python
  - lxml
extends_documentation_fragment:
  - constructed
  - inventory_cache
options:
  plugin:
    description: Marks the file as a configuration of this plugin.
    required: true
    type: str
    choices: [virtforge.libvirt.libvirt]
  uris:
    description:
      - libvirt connection URIs to read, e.g. V(qemu:///system) or V(qemu+ssh://root@hv1.example.com/system).
    type: list
    elements: str
    default: [qemu:///system]
    env:
      - name: LIBVIRT_DEFAULT_URI
  host_prefix:
    description:
      - Name hosts C(<uri host><host_prefix_separator><domain>) instead of just the domain name, so the same domain
        name on several hypervisors gives distinct hosts. The URI host is V(localhost) for local URIs.
      - Without it, a domain name seen on a second URI is skipped with a warning.
    type: bool
    default: false
  host_prefix_separator:
    description: Separator between the URI host and the domain name when O(host_prefix=true).
    type: str
    default: _
  name:
    description:
      - Only domains with these names; a name containing V(*), V(?) or V([) is a glob pattern.
    type: list
    elements: str
  state:
    description: Only domains in one of these states.
    type: list
    elements: str
    choices: [running, paused, stopped, shutting_down, crashed, suspended, unknown]
  tags:
    description: Only domains that carry all of these tags.
    type: list
    elements: str
  details:
    description:
      - Read each domain's XML (one call per domain) for its tags, disks and interfaces. Without it the tag
        groups are empty and the lease IP source costs one call per running domain. See
        M(virtforge.libvirt.domain_info).
    type: bool
    default: true
  ip_sources:
    description:
      - Where to look for guest IP addresses, in order (see M(virtforge.libvirt.domain_info)).
      - V(agent) opens a read-write connection.
    type: list
    elements: str
    choices: [lease, agent, arp]
    default: [lease]
  ansible_host_sources:
    description:
      - Take C(ansible_host) only from these IP sources, in this order of preference. By default the first
        address found (in O(ip_sources) order) is used.
    type: list
    elements: str
    choices: [lease, agent, arp]
  ansible_host_network:
    description: Take C(ansible_host) only from an address on this libvirt network.
    type: str
  ansible_host_family:
    description: Address family for C(ansible_host).
    type: str
    choices: [ipv4, ipv6, any]
    default: ipv4
  ansible_connection:
    description:
      - Value of C(ansible_connection) for every host. An empty string sets nothing (Ansible's default applies).
    type: str
    default: ssh
  vars_prefix:
    description: Prefix of the host variables holding the domain's information.
    type: str
    default: libvirt_
  state_group_prefix:
    description: Prefix of the groups by state. An empty string disables these groups.
    type: str
    default: state_
  tag_group_prefix:
    description: Prefix of the groups by tag. An empty string disables these groups.
    type: str
    default: tag_
  ignore_unreachable:
    description:
      - Warn and go on when a URI cannot be connected to, instead of failing the whole inventory.
    type: bool
    default: false
"""

EXAMPLES = r"""
# inventory/lab.libvirt.yml -- all domains of the local host
plugin: virtforge.libvirt.libvirt
---
# inventory/prod.libvirt.yml -- two hypervisors, running web servers only, reached by their DHCP lease
plugin: virtforge.libvirt.libvirt
uris:
  - qemu+ssh://root@hv1.example.com/system
  - qemu+ssh://root@hv2.example.com/system
host_prefix: true
state: [running]
tags: [web]
ansible_host_network: default
compose:
  ansible_user: "'debian'"
keyed_groups:
  - key: libvirt_domain_type
    prefix: type
groups:
  big: libvirt_memory >= 4096
---
# with the guest agent as a second IP source, and caching for AWX
plugin: virtforge.libvirt.libvirt
ip_sources: [lease, agent]
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: /tmp/libvirt-inventory
cache_timeout: 300
"""

from urllib.parse import urlsplit

from ansible.errors import AnsibleParserError
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable

from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import VirtforgeError
from ansible_collections.virtforge.libvirt.plugins.module_utils._libvirt import DEFAULT_URI, connect, libvirt
from ansible_collections.virtforge.libvirt.plugins.module_utils._query import DomainQuery, first_ip


def uri_host(uri):
    """The host part of a libvirt URI; ``localhost`` for a local one."""
    try:
        host = urlsplit(uri).hostname
    except ValueError:
        host = None
    return host or "localhost"


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):

    NAME = "virtforge.libvirt.libvirt"

    def verify_file(self, path):
        return super(InventoryModule, self).verify_file(path) and path.endswith((".libvirt.yml", ".libvirt.yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super(InventoryModule, self).parse(inventory, loader, path, cache=cache)
        self._read_config_data(path)
        if libvirt is None:
            raise AnsibleParserError("the virtforge.libvirt.libvirt inventory needs libvirt-python on the controller "
                                     "(pip install libvirt-python)")

        cache_key = self.get_cache_key(path)
        use_cache = self.get_option("cache") and cache
        update_cache = self.get_option("cache") and not cache
        results = None
        if use_cache:
            try:
                results = self._cache[cache_key]
            except KeyError:
                update_cache = True
        if results is None:
            results = self._query()
        if update_cache:
            self._cache[cache_key] = results
        self._populate(results)

    # -- reading libvirt ---------------------------------------------------------------------
    def _query(self):
        """``[{"uri": ..., "domains": [...]}, ...]`` for every URI (plain data: it is cached as JSON)."""
        ip_sources = self.get_option("ip_sources")
        try:
            # the filters are checked once, before any connection: a bad option is never "unreachable"
            query = DomainQuery(None, names=self.get_option("name"), states=self.get_option("state"),
                                tags=self.get_option("tags"), details=self.get_option("details"),
                                ip_sources=ip_sources)
        except VirtforgeError as exc:
            raise AnsibleParserError("virtforge.libvirt.libvirt: %s" % exc.message) from None
        out = []
        for uri in self.get_option("uris") or [DEFAULT_URI]:
            conn = None
            try:
                conn = connect(uri, readonly="agent" not in ip_sources)
                query.conn = conn
                result = query.run()
            except VirtforgeError as exc:
                self._unreachable(uri, exc.message)
                continue
            except libvirt.libvirtError as exc:
                self._unreachable(uri, to_native(exc.get_error_message()))
                continue
            finally:
                query.conn = None
                if conn is not None:
                    try:
                        conn.close()
                    except libvirt.libvirtError:
                        pass
            for warning in result.warnings:
                self.display.warning("%s: %s" % (uri, warning))
            out.append(dict(uri=uri, domains=result.domains))
        return out

    def _unreachable(self, uri, message):
        if self.get_option("ignore_unreachable"):
            self.display.warning("virtforge.libvirt.libvirt: skipping %s: %s" % (uri, message))
            return
        raise AnsibleParserError("virtforge.libvirt.libvirt: %s: %s" % (uri, message))

    # -- building the inventory --------------------------------------------------------------
    def _host_name(self, uri, domain):
        if self.get_option("host_prefix"):
            return "%s%s%s" % (uri_host(uri), self.get_option("host_prefix_separator"), domain["name"])
        return domain["name"]

    def host_vars(self, uri, domain):
        """The variables of one host: the domain_info keys under ``vars_prefix``, plus the connection."""
        prefix = self.get_option("vars_prefix")
        hostvars = dict(("%s%s" % (prefix, key), value) for key, value in domain.items())
        hostvars["%suri" % prefix] = uri
        hostvars["%shypervisor" % prefix] = uri_host(uri)
        address = first_ip(domain, sources=self.get_option("ansible_host_sources"),
                           network=self.get_option("ansible_host_network"),
                           family=self.get_option("ansible_host_family"))
        if address:
            hostvars["ansible_host"] = address
        if self.get_option("ansible_connection"):
            hostvars["ansible_connection"] = self.get_option("ansible_connection")
        return hostvars

    def _populate(self, results):
        strict = self.get_option("strict")
        seen = {}
        for entry in results:
            uri = entry["uri"]
            for domain in entry["domains"]:
                host = self._host_name(uri, domain)
                if host in seen:
                    self.display.warning(
                        "virtforge.libvirt.libvirt: domain %s exists on %s and %s; keeping the first "
                        "(set host_prefix: true to get both)" % (domain["name"], seen[host], uri))
                    continue
                seen[host] = uri
                self.inventory.add_host(host)
                hostvars = self.host_vars(uri, domain)
                for key, value in hostvars.items():
                    self.inventory.set_variable(host, key, value)
                self._add_groups(host, domain)
                self._set_composite_vars(self.get_option("compose"), hostvars, host, strict=strict)
                self._add_host_to_composed_groups(self.get_option("groups"), hostvars, host, strict=strict)
                self._add_host_to_keyed_groups(self.get_option("keyed_groups"), hostvars, host, strict=strict)

    def _add_groups(self, host, domain):
        wanted = []
        if self.get_option("state_group_prefix") and domain.get("state"):
            wanted.append(self.get_option("state_group_prefix") + domain["state"])
        if self.get_option("tag_group_prefix"):
            wanted.extend(self.get_option("tag_group_prefix") + tag for tag in domain.get("tags") or ())
        for name in wanted:
            group = self.inventory.add_group(self._sanitize_group_name(name))
            self.inventory.add_child(group, host)
