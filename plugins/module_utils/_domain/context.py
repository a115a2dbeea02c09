# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-domain planning context and the host facts it caches for a whole batch.

The engine passes ``ctx`` (a dict) to every group hook. :class:`HostCache` holds what is
looked up once per task whatever the number of domains (capabilities, networks, pools,
volumes); :class:`DomainContext` adds what belongs to one domain (name, option prefix for
error messages, running or not, being created or not).
"""

from __future__ import annotations

import os

from .._errors import VirtforgeError
from .._libvirt import choose_domain_type, is_local_uri, libvirt

try:
    from lxml import etree
except ImportError:  # pragma: no cover - reported by _libvirt.check_libraries
    etree = None


class HostCache(object):
    """Facts about the libvirt host, each fetched at most once per task."""

    def __init__(self, conn, uri=None, warn=None, check_mode=False):
        self.conn = conn
        self.uri = uri
        self.warn = warn or (lambda msg: None)
        #: in check mode a missing pool volume is assumed to be made by an earlier task (a clone)
        self.check_mode = check_mode
        self._assumed = {}
        self._caps = None
        self._networks = None
        self._pools = {}
        self._volumes = {}
        self._paths = {}
        self._default_type = None
        #: path -> image format learnt from a pool volume, used when a new disk sets no format
        self.format_hints = {}
        #: whether disk paths can be checked on this machine (local QEMU driver)
        self.local_files = is_local_uri(uri) and (uri or "qemu").startswith("qemu")
        #: where this machine's sysfs is read from when local_files (hostdevs' IOMMU group check)
        self.sysfs_root = "/"

    def capabilities(self):
        if self._caps is None:
            self._caps = etree.fromstring(self.conn.getCapabilities().encode())
        return self._caps

    def default_domain_type(self):
        if self._default_type is None:
            self._default_type = choose_domain_type(self.conn, self.uri, warn=self.warn)
        return self._default_type

    def canonical_machine(self, machine, arch=None):
        """``pc`` -> ``pc-i440fx-7.2``: the name libvirt stores for a machine alias."""
        if not machine:
            return machine
        try:
            caps = self.capabilities()
        except Exception:  # pragma: no cover - drivers without capabilities
            return machine
        for arch_node in caps.iterfind("./guest/arch"):
            if arch and arch_node.get("name") != arch:
                continue
            for node in arch_node.iterfind("machine"):
                if node.text == machine and node.get("canonical"):
                    return node.get("canonical")
        return machine

    def host_cpu_ids(self):
        """Ids of the host's CPUs (from the capabilities' NUMA topology), or None when not reported."""
        ids = [int(n) for n in self.capabilities().xpath("./host/topology/cells/cell/cpus/cpu/@id")]
        return set(ids) or None

    def host_numa_node_ids(self):
        ids = [int(n) for n in self.capabilities().xpath("./host/topology/cells/cell/@id")]
        return set(ids) or None

    def network_names(self):
        if self._networks is None:
            self._networks = {n.name() for n in self.conn.listAllNetworks(0)}
        return self._networks

    def pool(self, name, option):
        if name not in self._pools:
            try:
                self._pools[name] = self.conn.storagePoolLookupByName(name)
            except libvirt.libvirtError:
                raise VirtforgeError("storage pool %r does not exist" % name, option=option,
                                     fix="Create it first (virtforge.libvirt.pool) or fix the name") from None
        return self._pools[name]

    def volume_path(self, pool_name, vol_name, option):
        key = (pool_name, vol_name)
        if key in self._assumed:
            return self._assumed[key]
        if key not in self._volumes:
            pool = self.pool(pool_name, option + ".pool")
            try:
                if not pool.isActive():
                    raise VirtforgeError("storage pool %r is not active" % pool_name, option=option + ".pool",
                                         fix="Start the pool first")
                vol = pool.storageVolLookupByName(vol_name)
            except libvirt.libvirtError:
                try:
                    pool.refresh(0)
                    vol = pool.storageVolLookupByName(vol_name)
                except libvirt.libvirtError:
                    assumed = self._assume_volume(pool, pool_name, vol_name) if self.check_mode else None
                    if assumed:
                        self._assumed[key] = assumed
                        return assumed
                    raise VirtforgeError("volume %r does not exist in pool %r" % (vol_name, pool_name),
                                         option=option + ".volume",
                                         fix="Create it first (virtforge.libvirt.volume) or fix the name") from None
            self._volumes[key] = vol
        return self._volumes[key].path()

    def _assume_volume(self, pool, pool_name, vol_name):
        """Check mode: the path a not-yet-made volume will have in a directory pool, with a warning."""
        try:
            target = etree.fromstring(pool.XMLDesc(0).encode()).findtext("./target/path")
        except libvirt.libvirtError:  # pragma: no cover - raced with a delete
            return None
        if not target:
            return None
        self.warn("volume %r does not exist in pool %r yet; check mode assumes an earlier task creates it"
                  % (vol_name, pool_name))
        return os.path.join(target, vol_name)

    def volume_format(self, pool_name, vol_name):
        vol = self._volumes.get((pool_name, vol_name))
        if vol is None:
            return None
        try:
            node = etree.fromstring(vol.XMLDesc(0).encode()).find("./target/format")
        except libvirt.libvirtError:  # pragma: no cover - raced with a delete
            return None
        return node.get("type") if node is not None else None


class DomainContext(dict):
    """``ctx`` for one domain: a dict (the engine uses ``ctx.get``) with helpers."""

    def __init__(self, host, name, prefix="", running=False, creating=False, domain=None):
        super().__init__(host=host, name=name, prefix=prefix, running=running, creating=creating,
                         domain=domain, conn=host.conn)

    @property
    def host(self):
        return self["host"]

    def opt(self, name):
        """The option name as the user wrote it, e.g. ``domains[2].disks[0].path``."""
        return "%s%s" % (self["prefix"], name)

    def error(self, msg, option, fix=None):
        return VirtforgeError(msg, option=self.opt(option), fix=fix)
