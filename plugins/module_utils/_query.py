# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bulk query of libvirt domains, shared by ``domain_info`` and the ``libvirt`` inventory plugin.

The number of libvirt calls (each one a round trip to libvirtd) does not grow with the number
of domains wherever libvirt offers a bulk call:

=====================================================  ===========================================
what                                                   libvirt calls
=====================================================  ===========================================
list, uuid, id                                         ``listAllDomains`` x1
autostart, persistent                                  ``listAllDomains(AUTOSTART|PERSISTENT)`` x2
state, vCPUs, memory (and disks/NICs without details)  ``domainListGetStats`` x1 (skipped if no match)
``details``: tags, disks, interfaces, MACs, type       ``XMLDesc`` x1 **per selected domain**
``tags`` filter with ``details: false``                ``metadata`` x1 per domain left by the other filters
ip source ``lease`` (with details)                     ``listAllNetworks`` x1 + ``DHCPLeases`` x1 per
                                                       active network
ip source ``lease`` (without details)                  ``interfaceAddresses`` x1 per active domain
ip source ``agent``                                    ``interfaceAddresses`` x1 per running domain
                                                       (with details: only those with an agent channel)
ip source ``arp``                                      ``interfaceAddresses`` x1 per running domain
=====================================================  ===========================================

``name()``, ``UUIDString()`` and ``ID()`` of a domain object are read from the object itself,
not from libvirtd. tests/unit/plugins/module_utils/test_query.py counts the calls.
"""

from __future__ import annotations

import fnmatch
import ipaddress

from ._errors import VirtforgeError
from ._libvirt import METADATA_NS, libvirt
from ._validate import xml_size_to_bytes

try:
    from lxml import etree
except ImportError:  # pragma: no cover - reported by _libvirt.check_libraries
    etree = None

MIB = 1024 * 1024

# libvirt's virDomainState, in the vocabulary of the domain module's ``state`` option.
STATE_NAMES = {
    0: "unknown",        # VIR_DOMAIN_NOSTATE
    1: "running",        # VIR_DOMAIN_RUNNING
    2: "running",        # VIR_DOMAIN_BLOCKED (running, waiting for a resource)
    3: "paused",         # VIR_DOMAIN_PAUSED
    4: "shutting_down",  # VIR_DOMAIN_SHUTDOWN (being shut down)
    5: "stopped",        # VIR_DOMAIN_SHUTOFF
    6: "crashed",        # VIR_DOMAIN_CRASHED
    7: "suspended",      # VIR_DOMAIN_PMSUSPENDED (suspended by the guest's power management)
}
STATE_CHOICES = ["running", "paused", "stopped", "shutting_down", "crashed", "suspended", "unknown"]
IP_SOURCES = ["lease", "agent", "arp"]
DEFAULT_IP_SOURCES = ["lease"]

AGENT_CHANNEL = "org.qemu.guest_agent.0"

# interfaceAddresses() source flags (VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_*).
_SRC_FLAGS = {"lease": 0, "agent": 1, "arp": 2}

# Errors that mean "this guest has no answer for this source", not "something is broken".
_QUIET_IP_ERRORS = (
    "VIR_ERR_AGENT_UNRESPONSIVE", "VIR_ERR_AGENT_UNSYNCED", "VIR_ERR_ARGUMENT_UNSUPPORTED",
    "VIR_ERR_OPERATION_INVALID", "VIR_ERR_OPERATION_TIMEOUT", "VIR_ERR_NO_DOMAIN",
)


def _codes(*names):
    return {getattr(libvirt, name) for name in names if libvirt is not None and hasattr(libvirt, name)}


def _error_code(exc):
    try:
        return exc.get_error_code()
    except AttributeError:  # pragma: no cover - not a libvirtError
        return None


def _libvirt_error():
    return libvirt.libvirtError if libvirt is not None else Exception


def is_pattern(name):
    return any(char in name for char in "*?[")


def as_list(value):
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


class QueryResult(object):
    """``domains``: list of dicts sorted by name; ``missing``: names/patterns that matched
    nothing; ``warnings``: problems that did not stop the query (an IP source failing...)."""

    def __init__(self, domains, missing, warnings):
        self.domains = domains
        self.missing = missing
        self.warnings = warnings


class DomainQuery(object):
    """One query over one connection. Build it, then call :meth:`run` once."""

    def __init__(self, conn, names=None, states=None, tags=None, details=True, ip_sources=None):
        self.conn = conn
        self.names = [str(n) for n in as_list(names)]
        self.states = as_list(states)
        self.tags = [str(t) for t in as_list(tags)]
        self.details = bool(details)
        self.ip_sources = DEFAULT_IP_SOURCES if ip_sources is None else as_list(ip_sources)
        self.warnings = []
        self._validate()

    # -- input -----------------------------------------------------------------------------
    def _validate(self):
        for index, name in enumerate(self.names):
            if not name:
                raise VirtforgeError("must not be empty", option="name[%d]" % index)
        for index, state in enumerate(self.states):
            if state not in STATE_CHOICES:
                raise VirtforgeError("unknown state %r" % (state,), option="state[%d]" % index,
                                     fix="Use one of %s" % ", ".join(STATE_CHOICES))
        for index, tag in enumerate(self.tags):
            if not tag:
                raise VirtforgeError("must not be empty", option="tags[%d]" % index)
        seen = []
        for index, source in enumerate(self.ip_sources):
            if source not in IP_SOURCES:
                raise VirtforgeError("unknown IP source %r" % (source,), option="ip_sources[%d]" % index,
                                     fix="Use lease, agent or arp")
            if source not in seen:
                seen.append(source)
        self.ip_sources = seen

    def _match_names(self, domains):
        """Keep the domains named (exactly or by glob); report names/patterns that matched nothing."""
        if not self.names:
            return list(domains), []
        by_name = {}
        for dom in domains:
            by_name.setdefault(dom.name(), dom)
        selected, missing = {}, []
        for name in self.names:
            if is_pattern(name):
                hits = [n for n in by_name if fnmatch.fnmatchcase(n, name)]
            else:
                hits = [name] if name in by_name else []
            if not hits:
                missing.append(name)
            for hit in hits:
                selected[hit] = by_name[hit]
        return [selected[n] for n in sorted(selected)], missing

    # -- the query -------------------------------------------------------------------------
    def run(self):
        """Query ``self.conn``; may be called again (e.g. on another connection)."""
        self.warnings = []
        conn = self.conn
        all_domains = conn.listAllDomains(0)
        selected, missing = self._match_names(all_domains)
        if not selected:
            return QueryResult([], missing, self.warnings)
        autostart = {d.UUIDString() for d in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_AUTOSTART)}
        persistent = {d.UUIDString() for d in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_PERSISTENT)}
        stats = self._stats(selected)

        records = []
        for dom in selected:
            uuid = dom.UUIDString()
            record = _base_record(dom, stats.get(uuid, {}))
            record["autostart"] = uuid in autostart
            record["persistent"] = uuid in persistent
            if self.states and record["state"] not in self.states:
                continue
            records.append((dom, record))

        kept = []
        for dom, record in records:
            if self.details:
                root = self._xml(dom)
                if root is None:  # the domain went away in the meantime
                    continue
                _merge_xml(record, root)
            elif self.tags:
                tags = self._tags_from_metadata(dom)
                if tags is None:
                    continue
                record["tags"] = tags
            if self.tags and not set(self.tags).issubset(record["tags"] or ()):
                continue
            kept.append((dom, record))

        self._ip_addresses(kept)
        domains = [record for _dom, record in kept]
        domains.sort(key=lambda r: r["name"])
        return QueryResult(domains, missing, self.warnings)

    def _stats(self, domains):
        groups = libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_BALLOON | libvirt.VIR_DOMAIN_STATS_VCPU
        if not self.details:
            groups |= libvirt.VIR_DOMAIN_STATS_BLOCK | libvirt.VIR_DOMAIN_STATS_INTERFACE
        nowait = getattr(libvirt, "VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT", 0)
        try:
            result = self.conn.domainListGetStats(domains, groups, nowait)
        except _libvirt_error() as exc:
            if not nowait or _error_code(exc) not in _codes("VIR_ERR_INVALID_ARG", "VIR_ERR_NO_SUPPORT"):
                raise
            result = self.conn.domainListGetStats(domains, groups, 0)
        return {dom.UUIDString(): values for dom, values in result}

    def _xml(self, dom):
        try:
            return _parse(dom.XMLDesc(0))
        except _libvirt_error() as exc:
            if _error_code(exc) in _codes("VIR_ERR_NO_DOMAIN"):
                return None
            raise

    def _tags_from_metadata(self, dom):
        try:
            text = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NS, 0)
        except _libvirt_error() as exc:
            code = _error_code(exc)
            if code in _codes("VIR_ERR_NO_DOMAIN_METADATA"):
                return []
            if code in _codes("VIR_ERR_NO_DOMAIN"):
                return None
            raise
        return sorted({t.text.strip() for t in _parse(text).iter("tag", "{%s}tag" % METADATA_NS)
                       if t.text and t.text.strip()})

    # -- guest IP addresses ----------------------------------------------------------------
    def _ip_addresses(self, kept):
        for _dom, record in kept:
            record["ip_addresses"] = []
        if not kept:
            return
        for source in self.ip_sources:
            if source == "lease":
                self._leases(kept)
            else:
                self._per_domain(kept, source)

    def _add(self, record, entry):
        if entry is None:
            return
        if any(e["address"] == entry["address"] for e in record["ip_addresses"]):
            return
        record["ip_addresses"].append(entry)

    def _leases(self, kept):
        active = [(dom, rec) for dom, rec in kept if rec["active"]]
        if not active:
            return
        if not self.details:
            self._per_domain(active, "lease")
            return
        leases, unsupported = {}, False
        for net in self.conn.listAllNetworks(libvirt.VIR_CONNECT_LIST_NETWORKS_ACTIVE):
            try:
                entries = net.DHCPLeases()
            except _libvirt_error() as exc:
                if _error_code(exc) in _codes("VIR_ERR_NO_SUPPORT"):
                    unsupported = True
                    continue
                self.warnings.append("cannot read the DHCP leases of network %s: %s" % (net.name(), exc))
                continue
            for lease in entries or ():
                mac = (lease.get("mac") or "").lower()
                leases.setdefault(mac, []).append((net.name(), lease))
        # A MAC can hold several leases (a guest that changed its DHCP client ID, a rebuilt guest
        # that reuses a MAC): the newest, i.e. the one that expires last, comes first.
        for entries in leases.values():
            entries.sort(key=lambda item: item[1].get("expirytime") or 0, reverse=True)
        if unsupported:
            # This driver cannot list a network's leases: ask per domain instead.
            self._per_domain(active, "lease")
        for _dom, record in active:
            for nic in record["interfaces"]:
                for network, lease in leases.get(nic.get("mac") or "", ()):
                    self._add(record, ip_entry(lease.get("ipaddr"), lease.get("prefix"), nic.get("mac"),
                                               nic.get("target"), network, "lease", lease.get("hostname")))

    def _per_domain(self, kept, source):
        failed = []
        for dom, record in kept:
            if source == "lease":
                if not record["active"]:
                    continue
            elif record["state"] != "running":
                continue
            if source == "agent" and record.get("guest_agent") is False:
                continue
            try:
                found = dom.interfaceAddresses(_SRC_FLAGS[source], 0)
            except _libvirt_error() as exc:
                if _error_code(exc) not in _codes(*_QUIET_IP_ERRORS):
                    failed.append("%s: %s" % (record["name"], exc))
                continue
            networks = {nic["mac"]: nic for nic in record["interfaces"] if nic.get("mac")}
            for ifname, info in sorted((found or {}).items()):
                mac = (info.get("hwaddr") or "").lower() or None
                nic = networks.get(mac, {})
                for addr in info.get("addrs") or ():
                    self._add(record, ip_entry(addr.get("addr"), addr.get("prefix"), mac,
                                               ifname, nic.get("network"), source))
        if failed:
            self.warnings.append("IP source %s failed for %s" % (source, "; ".join(failed)))


def query_domains(conn, names=None, states=None, tags=None, details=True, ip_sources=None):
    """Run one :class:`DomainQuery`; returns a :class:`QueryResult`."""
    return DomainQuery(conn, names=names, states=states, tags=tags, details=details,
                       ip_sources=ip_sources).run()


# -- building one domain's record ------------------------------------------------------------
def _parse(text):
    if isinstance(text, str):
        text = text.encode("utf-8")
    return etree.fromstring(text, etree.XMLParser(resolve_entities=False, no_network=True))


def _mib(value):
    return None if value is None else value // MIB


def _base_record(dom, stats):
    dom_id = dom.ID()
    state = STATE_NAMES.get(stats.get("state.state"), "unknown")
    maximum = stats.get("balloon.maximum")
    current = stats.get("balloon.current")
    record = dict(
        name=dom.name(),
        uuid=dom.UUIDString(),
        id=dom_id if dom_id is not None and dom_id >= 0 else None,
        state=state,
        active=dom_id is not None and dom_id >= 0,
        autostart=None,
        persistent=None,
        vcpus=stats.get("vcpu.current"),
        max_vcpus=stats.get("vcpu.maximum"),
        memory=None,
        memory_bytes=None if current is None else current * 1024,
        max_memory=None,
        max_memory_bytes=None if maximum is None else maximum * 1024,
        domain_type=None,
        title=None,
        description=None,
        guest_agent=None,
        tags=None,
        disks=[],
        interfaces=[],
        hostdevs=None,
        migratable=None,
        migration_blockers=None,
        ip_addresses=[],
    )
    for index in range(stats.get("block.count", 0)):
        record["disks"].append(_disk(dev=stats.get("block.%d.name" % index),
                                     path=stats.get("block.%d.path" % index)))
    for index in range(stats.get("net.count", 0)):
        record["interfaces"].append(_nic(target=stats.get("net.%d.name" % index)))
    _mib_keys(record)
    return record


def _mib_keys(record):
    record["memory"] = _mib(record["memory_bytes"])
    record["max_memory"] = _mib(record["max_memory_bytes"])


def _disk(dev=None, path=None, pool=None, volume=None, format=None, bus=None, device=None, type=None,
          readonly=None):
    return dict(dev=dev, path=path, pool=pool, volume=volume, format=format, bus=bus, device=device, type=type,
                readonly=readonly)


def _nic(mac=None, type=None, network=None, bridge=None, direct=None, model=None, target=None):
    return dict(mac=mac, type=type, network=network, bridge=bridge, direct=direct, model=model, target=target)


def _size(node):
    if node is None or not (node.text or "").strip():
        return None
    return xml_size_to_bytes(node.text.strip(), node.get("unit"))


def _merge_xml(record, root):
    """Fill a record from the domain XML; the bulk statistics win where both have a value."""
    record["domain_type"] = root.get("type")
    record["title"] = root.findtext("title")
    record["description"] = root.findtext("description")
    if record["max_memory_bytes"] is None:
        record["max_memory_bytes"] = _size(root.find("memory"))
    if record["memory_bytes"] is None:
        record["memory_bytes"] = _size(root.find("currentMemory")) or record["max_memory_bytes"]
    _mib_keys(record)
    vcpu = root.find("vcpu")
    if vcpu is not None and (vcpu.text or "").strip().isdigit():
        if record["max_vcpus"] is None:
            record["max_vcpus"] = int(vcpu.text.strip())
        if record["vcpus"] is None:
            current = vcpu.get("current")
            record["vcpus"] = int(current) if current and current.isdigit() else int(vcpu.text.strip())
    instance = root.find("metadata/{%s}instance" % METADATA_NS)
    record["tags"] = [] if instance is None else sorted({
        t.text.strip() for t in instance.iterfind("{%s}tag" % METADATA_NS) if t.text and t.text.strip()})
    record["guest_agent"] = any(
        t.get("name") == AGENT_CHANNEL for t in root.iterfind("devices/channel/target"))

    disks = []
    for disk in root.iterfind("devices/disk"):
        target = disk.find("target")
        driver = disk.find("driver")
        src = disk.find("source")
        src_attr = {} if src is None else src.attrib
        disks.append(_disk(
            dev=None if target is None else target.get("dev"),
            path=src_attr.get("file") or src_attr.get("dev") or src_attr.get("dir") or src_attr.get("name"),
            bus=None if target is None else target.get("bus"),
            device=disk.get("device", "disk"),
            type=disk.get("type"),
            format=None if driver is None else driver.get("type"),
            pool=src_attr.get("pool"),
            volume=src_attr.get("volume"),
            readonly=disk.find("readonly") is not None,
        ))
    record["disks"] = disks

    nics = []
    for nic in root.iterfind("devices/interface"):
        mac = nic.find("mac")
        model = nic.find("model")
        src = nic.find("source")
        target = nic.find("target")
        src_attr = {} if src is None else src.attrib
        kind = nic.get("type")
        nics.append(_nic(
            mac=None if mac is None else (mac.get("address") or "").lower() or None,
            type=kind,
            network=src_attr.get("network") if kind == "network" else None,
            bridge=src_attr.get("bridge") if kind == "bridge" else None,
            direct=src_attr.get("dev") if kind == "direct" else None,
            model=None if model is None else model.get("type"),
            target=None if target is None else target.get("dev"),
        ))
    record["interfaces"] = nics
    _classify(record, root)


def _classify(record, root):
    """Each disk/NIC paravirtual, emulated or pass-through; pass-through pins the domain to its host."""
    virtio_scsi = any(c.get("model") == "virtio-scsi" for c in root.iterfind("devices/controller[@type='scsi']"))
    blockers = []
    for disk in record["disks"]:
        if disk["device"] == "lun":
            disk["io_class"] = "pass-through"
            blockers.append("disk %s is a SCSI LUN passed through (%s)" % (disk["dev"], disk["path"]))
        elif disk["bus"] == "virtio" or (disk["bus"] == "scsi" and virtio_scsi):
            disk["io_class"] = "paravirtual"
        else:
            disk["io_class"] = "emulated"
    for nic in record["interfaces"]:
        if nic["type"] == "hostdev":
            nic["io_class"] = "pass-through"
            blockers.append("interface %s is a PCI device (SR-IOV VF) passed through" % nic["mac"])
        elif nic["model"] == "virtio":
            nic["io_class"] = "paravirtual"
        else:
            nic["io_class"] = "emulated"
    hostdevs = []
    for dev in root.iterfind("devices/hostdev"):
        kind = dev.get("type")
        addr = dev.find("source/address")
        if kind == "pci" and addr is not None:
            widths = (("domain", 4), ("bus", 2), ("slot", 2), ("function", 1))
            ident = "%s:%s:%s.%s" % tuple("%0*x" % (w, int(addr.get(k, "0"), 0)) for k, w in widths)
        elif kind == "mdev" and addr is not None:
            ident = addr.get("uuid")
        elif kind == "usb":
            vendor, product = dev.find("source/vendor"), dev.find("source/product")
            if vendor is not None and product is not None:
                ident = "%s:%s" % (vendor.get("id"), product.get("id"))
            elif addr is not None:
                ident = "bus %s device %s" % (addr.get("bus"), addr.get("device"))
            else:
                ident = None
        else:
            ident = (dev.find("source/adapter").get("name") if dev.find("source/adapter") is not None else None)
        hostdevs.append(dict(type=kind, source=ident, io_class="pass-through"))
        blockers.append("hostdev %s %s is passed through" % (kind, ident))
    record["hostdevs"] = hostdevs
    record["migratable"] = not blockers
    record["migration_blockers"] = blockers


def ip_entry(address, prefix, mac, interface, network, source, hostname=None):
    """One guest address as domain_info and domain report it (None for loopback, link-local, garbage)."""
    if not address:
        return None
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    if parsed.is_loopback or parsed.is_link_local or parsed.is_unspecified:
        return None
    return dict(
        address=str(parsed),
        prefix=prefix,
        family="ipv%d" % parsed.version,
        mac=mac,
        interface=interface,
        network=network,
        source=source,
        hostname=hostname or None,
    )


def first_ip(record, sources=None, network=None, family="ipv4"):
    """The address Ansible should connect to: the first guest IP, optionally limited to some
    sources (in the order given), one libvirt network, and an address family (``any`` for both)."""
    candidates = list(record.get("ip_addresses") or ())
    if network:
        candidates = [c for c in candidates if c.get("network") == network]
    if family and family != "any":
        candidates = [c for c in candidates if c.get("family") == family]
    if sources:
        for source in sources:
            for candidate in candidates:
                if candidate.get("source") == source:
                    return candidate["address"]
        return None
    return candidates[0]["address"] if candidates else None
