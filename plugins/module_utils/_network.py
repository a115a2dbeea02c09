# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""libvirt virtual networks, declarative, on the XML engine.

DHCP ranges and static DHCP hosts of an active network are changed live with
``virNetworkUpdate`` (dnsmasq is reloaded by libvirt; guests stay connected). Everything else
is redefined and takes effect after a restart, done only with ``allow_restart: true``.
libvirt 9.0 does not reconnect running guests' tap devices to the bridge it recreates on a
restart (measured: the taps stay detached and the network's port list is empty), so after a
restart the module re-attaches them (``ip link set TAP master BRIDGE``, inside libvirtd's
network namespace when it runs in another one).
"""

from __future__ import annotations

import ipaddress
import os
import re

from ._engine import Change, DocumentSpec, OptionGroup, child, parse_xml, remove
from ._errors import VirtforgeError
from ._libvirt import is_local_uri, libvirt
from ._pool import LIFECYCLE_ARGSPEC, NameGroup, ObjectManager, inactive_xml
from ._validate import check_name

try:
    from lxml import etree
except ImportError:  # pragma: no cover - reported by _libvirt.check_libraries
    etree = None

FORWARD_MODES = ("nat", "route", "open", "bridge", "hostdev", "none")
BRIDGE_NAME_MAX = 15  # IFNAMSIZ - 1
_BRIDGE_RE = re.compile(r"^[A-Za-z0-9_.:-]+$")
_MAC_RE = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")


def check_bridge_name(value, option="bridge"):
    if value is None:
        return None
    if len(value) > BRIDGE_NAME_MAX:
        raise VirtforgeError("%r is %d characters long; Linux interface names have at most %d"
                             % (value, len(value), BRIDGE_NAME_MAX), option=option)
    if value in (".", "..") or not _BRIDGE_RE.match(value):
        raise VirtforgeError("%r is not a valid interface name" % value, option=option,
                             fix="Use letters, digits and . _ - : only")
    return value


class ForwardGroup(OptionGroup):
    """<forward mode>; with mode hostdev, the SR-IOV physical function whose VFs form the pool (<pf dev>)."""

    name = "forward"
    argument_spec = dict(forward=dict(type="str", choices=list(FORWARD_MODES)), pf=dict(type="str"))

    def desired(self, params, ctx):
        out = dict(mode=params["forward"]) if params.get("forward") else {}
        if params.get("pf"):
            out["pf"] = check_bridge_name(params["pf"], option="pf")
        return out

    def current(self, root, ctx):
        node = root.find("forward")
        out = dict(mode="none" if node is None else node.get("mode") or "nat", pf=None)
        if node is not None and node.find("pf") is not None:
            out["pf"] = node.find("pf").get("dev")
        return out

    def write(self, root, desired, ctx):
        node = root.find("forward")
        if desired["mode"] == "none":
            remove(node)
            return
        if node is None:
            node = child(root, "forward", create=True)
            name = root.find("name")
            # after <name>/<uuid>, where libvirt writes it
            anchor = root.find("uuid") if root.find("uuid") is not None else name
            if anchor is not None:
                anchor.addnext(node)
        mode = desired.get("mode", node.get("mode"))
        if node.get("mode") != mode:
            for sub in list(node):
                if sub.tag in ("nat", "pf", "address", "interface"):
                    remove(sub)
        node.set("mode", mode)
        if mode == "hostdev":
            node.set("managed", "yes")  # libvirt binds each VF to vfio-pci when a guest takes it
        if "pf" in desired:
            remove(node.find("pf"))
            etree.SubElement(node, "pf", dev=desired["pf"])


class BridgeGroup(OptionGroup):
    name = "bridge"
    argument_spec = dict(bridge=dict(type="str"), stp=dict(type="bool"), delay=dict(type="int"))

    def desired(self, params, ctx):
        out = {}
        if params.get("bridge") is not None:
            out["name"] = check_bridge_name(params["bridge"])
        if params.get("stp") is not None:
            out["stp"] = params["stp"]
        if params.get("delay") is not None:
            if params["delay"] < 0:
                raise VirtforgeError("must be 0 or more, got %d" % params["delay"], option="delay")
            out["delay"] = params["delay"]
        return out

    def current(self, root, ctx):
        node = root.find("bridge")
        if node is None:
            return dict(name=None, stp=None, delay=None)
        return dict(name=node.get("name"), stp=node.get("stp", "on") == "on",
                    delay=int(node.get("delay", "0")))

    def write(self, root, desired, ctx):
        node = child(root, "bridge", create=True)
        if "name" in desired:
            node.set("name", desired["name"])
        if "stp" in desired:
            node.set("stp", "on" if desired["stp"] else "off")
        if "delay" in desired:
            node.set("delay", str(desired["delay"]))


class MtuGroup(OptionGroup):
    name = "mtu"
    argument_spec = dict(mtu=dict(type="int"))

    def desired(self, params, ctx):
        if params.get("mtu") is None:
            return {}
        if not 68 <= params["mtu"] <= 65535:
            raise VirtforgeError("must be between 68 and 65535, got %d" % params["mtu"], option="mtu")
        return dict(size=params["mtu"])

    def current(self, root, ctx):
        node = root.find("mtu")
        return dict(size=int(node.get("size")) if node is not None and node.get("size") else None)

    def write(self, root, desired, ctx):
        child(root, "mtu", create=True).set("size", str(desired["size"]))


class DomainNameGroup(OptionGroup):
    name = "domain"
    argument_spec = dict(domain_name=dict(type="str"))

    def desired(self, params, ctx):
        if params.get("domain_name") is None:
            return {}
        if not re.match(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$", params["domain_name"]):
            raise VirtforgeError("%r is not a DNS domain name" % params["domain_name"], option="domain_name")
        return dict(name=params["domain_name"])

    def current(self, root, ctx):
        node = root.find("domain")
        return dict(name=node.get("name") if node is not None else None)

    def write(self, root, desired, ctx):
        child(root, "domain", create=True).set("name", desired["name"])


def _ip_family(address):
    return "ipv6" if ":" in (address or "") else "ipv4"


def _find_ip(root, family):
    for index, node in enumerate(root.iterfind("ip")):
        if (node.get("family") or _ip_family(node.get("address"))) == family:
            return index, node
    return None, None


def _host_key(host):
    return host.get("mac") or host.get("name") or host.get("ip")


def _hosts_sorted(hosts):
    return sorted(hosts, key=lambda h: str(_host_key(h)))


class IpGroup(OptionGroup):
    """One <ip> element (IPv4 unless the address is IPv6): address, prefix, DHCP ranges and hosts."""

    name = "ip"
    argument_spec = dict(
        ip=dict(type="dict", options=dict(
            address=dict(type="str", required=True),
            prefix=dict(type="int"),
            netmask=dict(type="str"),
            dhcp_ranges=dict(type="list", elements="dict", options=dict(
                start=dict(type="str", required=True), end=dict(type="str", required=True))),
            dhcp_hosts=dict(type="list", elements="dict", options=dict(
                mac=dict(type="str"), name=dict(type="str"), ip=dict(type="str", required=True))),
        ), mutually_exclusive=[("prefix", "netmask")]),
        purge_dhcp_hosts=dict(type="bool", default=False),
    )
    live_keys = frozenset(["dhcp_ranges", "dhcp_hosts"])

    def desired(self, params, ctx):
        ip = params.get("ip")
        if not ip:
            return {}
        try:
            address = ipaddress.ip_address(ip["address"])
        except ValueError:
            raise VirtforgeError("%r is not an IP address" % ip["address"], option="ip.address") from None
        ctx["ip_family"] = "ipv6" if address.version == 6 else "ipv4"
        if ip.get("netmask"):
            try:
                prefix = ipaddress.ip_network("0.0.0.0/%s" % ip["netmask"]).prefixlen
            except ValueError:
                raise VirtforgeError("%r is not a netmask" % ip["netmask"], option="ip.netmask") from None
        elif ip.get("prefix") is not None:
            prefix = ip["prefix"]
        else:
            raise VirtforgeError("give the subnet size", option="ip.prefix", fix="Set prefix (e.g. 24) or netmask")
        if not 1 <= prefix <= address.max_prefixlen - 1:
            raise VirtforgeError("%d is not a usable prefix for %s" % (prefix, address), option="ip.prefix")
        net = ipaddress.ip_network("%s/%d" % (address, prefix), strict=False)
        if address in (net.network_address, net.broadcast_address) and address.version == 4:
            raise VirtforgeError("%s is the network or broadcast address of %s" % (address, net),
                                 option="ip.address")
        out = dict(address=str(address), prefix=prefix)

        def inside(value, option):
            try:
                addr = ipaddress.ip_address(value)
            except ValueError:
                raise VirtforgeError("%r is not an IP address" % value, option=option) from None
            if addr not in net or addr in (net.network_address, net.broadcast_address):
                raise VirtforgeError("%s is outside the usable addresses of %s" % (addr, net), option=option,
                                     fix="Give addresses inside ip.address/prefix")
            return addr

        if ip.get("dhcp_ranges") is not None:
            ranges = []
            for i, rng in enumerate(ip["dhcp_ranges"]):
                start = inside(rng["start"], "ip.dhcp_ranges[%d].start" % i)
                end = inside(rng["end"], "ip.dhcp_ranges[%d].end" % i)
                if start > end:
                    raise VirtforgeError("start %s is after end %s" % (start, end), option="ip.dhcp_ranges[%d]" % i)
                if start <= address <= end:
                    raise VirtforgeError("the range %s-%s contains the network's own address %s"
                                         % (start, end, address), option="ip.dhcp_ranges[%d]" % i)
                ranges.append(dict(start=str(start), end=str(end)))
            out["dhcp_ranges"] = sorted(ranges, key=lambda r: ipaddress.ip_address(r["start"]))
        if ip.get("dhcp_hosts") is not None:
            hosts = []
            seen = set()
            for i, host in enumerate(ip["dhcp_hosts"]):
                entry = dict(ip=str(inside(host["ip"], "ip.dhcp_hosts[%d].ip" % i)))
                if host.get("mac"):
                    mac = host["mac"].lower()
                    if not _MAC_RE.match(mac):
                        raise VirtforgeError("%r is not a MAC address" % host["mac"],
                                             option="ip.dhcp_hosts[%d].mac" % i)
                    entry["mac"] = mac
                if host.get("name"):
                    entry["name"] = host["name"]
                if address.version == 4 and "mac" not in entry and "name" not in entry:
                    raise VirtforgeError("give mac or name", option="ip.dhcp_hosts[%d]" % i)
                key = _host_key(entry)
                if key in seen:
                    raise VirtforgeError("%s is listed twice" % key, option="ip.dhcp_hosts[%d]" % i)
                seen.add(key)
                hosts.append(entry)
            out["dhcp_hosts"] = hosts
            out["purge_hosts"] = bool(params.get("purge_dhcp_hosts"))
        return out

    def current(self, root, ctx):
        _index, node = _find_ip(root, ctx.get("ip_family", "ipv4"))
        out = dict(address=None, prefix=None, dhcp_ranges=[], dhcp_hosts=[])
        if node is None:
            return out
        out["address"] = node.get("address")
        if node.get("prefix"):
            out["prefix"] = int(node.get("prefix"))
        elif node.get("netmask"):
            out["prefix"] = ipaddress.ip_network("0.0.0.0/%s" % node.get("netmask")).prefixlen
        elif out["address"]:
            out["prefix"] = {"ipv4": 24, "ipv6": 64}[ctx.get("ip_family", "ipv4")]
        if out["address"]:
            out["address"] = str(ipaddress.ip_address(out["address"]))
        out["dhcp_ranges"] = sorted(
            (dict(start=str(ipaddress.ip_address(r.get("start"))), end=str(ipaddress.ip_address(r.get("end"))))
             for r in node.iterfind("dhcp/range")), key=lambda r: ipaddress.ip_address(r["start"]))
        hosts = []
        for h in node.iterfind("dhcp/host"):
            entry = {k: h.get(k) for k in ("mac", "name", "ip") if h.get(k)}
            if "mac" in entry:
                entry["mac"] = entry["mac"].lower()
            hosts.append(entry)
        out["dhcp_hosts"] = hosts
        return out

    @staticmethod
    def effective_hosts(desired, current_hosts):
        """The complete host list after the run: listed hosts replace theirs; others kept unless purged."""
        if desired.get("purge_hosts"):
            return list(desired["dhcp_hosts"])
        listed = {_host_key(h): h for h in desired["dhcp_hosts"]}
        out = [listed.pop(_host_key(h), h) for h in current_hosts]
        out.extend(h for h in desired["dhcp_hosts"] if _host_key(h) in listed)
        return out

    def compare(self, desired, current, ctx):
        running = ctx.get("running")
        changes = []
        readdress = False
        for key in ("address", "prefix"):
            if desired[key] != current.get(key):
                readdress = True
                changes.append(Change("ip.%s" % key, current.get(key), desired[key], group=self.name, key=key,
                                      live=False if running else None))
        live = (not readdress) if running else None
        if "dhcp_ranges" in desired and desired["dhcp_ranges"] != current["dhcp_ranges"]:
            changes.append(Change("ip.dhcp_ranges", current["dhcp_ranges"], desired["dhcp_ranges"],
                                  group=self.name, key="dhcp_ranges", live=live))
        if "dhcp_hosts" in desired:
            after = self.effective_hosts(desired, current["dhcp_hosts"])
            if _hosts_sorted(after) != _hosts_sorted(current["dhcp_hosts"]):
                changes.append(Change("ip.dhcp_hosts", current["dhcp_hosts"], after, group=self.name,
                                      key="dhcp_hosts", live=live))
        return changes

    def write(self, root, desired, ctx):
        family = ctx.get("ip_family", "ipv4")
        _index, node = _find_ip(root, family)
        if node is None:
            node = child(root, "ip", create=True, address=desired["address"])
            if family == "ipv6":
                node.set("family", "ipv6")
        node.set("address", desired["address"])
        if "netmask" in node.attrib:
            del node.attrib["netmask"]
        node.set("prefix", str(desired["prefix"]))
        if "dhcp_ranges" not in desired and "dhcp_hosts" not in desired:
            return
        current_hosts = [{k: h.get(k).lower() if k == "mac" else h.get(k) for k in ("mac", "name", "ip") if h.get(k)}
                         for h in node.iterfind("dhcp/host")]
        dhcp = child(node, "dhcp", create=True)
        ranges = [dict(r.attrib) for r in dhcp.iterfind("range")]
        if "dhcp_ranges" in desired:
            ranges = desired["dhcp_ranges"]
        hosts = self.effective_hosts(desired, current_hosts) if "dhcp_hosts" in desired else current_hosts
        rest = [n for n in dhcp if n.tag not in ("range", "host")]
        for n in list(dhcp):
            dhcp.remove(n)
        for rng in ranges:
            child(dhcp, "range", create=True, start=rng["start"], end=rng["end"])
            dhcp[-1].attrib.update({k: v for k, v in rng.items() if k not in ("start", "end")})
        for host in hosts:
            h = parse_xml("<host/>")
            for k in ("mac", "name", "ip"):
                if host.get(k):
                    h.set(k, host[k])
            dhcp.append(h)
        for n in rest:
            dhcp.append(n)
        if not len(dhcp):
            remove(dhcp)

    def apply_live(self, target, changes, desired, ctx):
        root = parse_xml(target.XMLDesc(0))
        index, _node = _find_ip(root, ctx.get("ip_family", "ipv4"))
        flags = libvirt.VIR_NETWORK_UPDATE_AFFECT_LIVE
        for change in changes:
            if change.key == "dhcp_ranges":
                before = [(r["start"], r["end"]) for r in change.before]
                after = [(r["start"], r["end"]) for r in change.after]
                for start, end in before:
                    if (start, end) not in after:
                        target.update(libvirt.VIR_NETWORK_UPDATE_COMMAND_DELETE,
                                      libvirt.VIR_NETWORK_SECTION_IP_DHCP_RANGE, index,
                                      "<range start='%s' end='%s'/>" % (start, end), flags)
                for start, end in after:
                    if (start, end) not in before:
                        target.update(libvirt.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST,
                                      libvirt.VIR_NETWORK_SECTION_IP_DHCP_RANGE, index,
                                      "<range start='%s' end='%s'/>" % (start, end), flags)
            elif change.key == "dhcp_hosts":
                before = {_host_key(h): h for h in change.before}
                after = {_host_key(h): h for h in change.after}
                for key, host in before.items():
                    if key not in after:
                        self._update_host(target, libvirt.VIR_NETWORK_UPDATE_COMMAND_DELETE, index, host, flags)
                for key, host in after.items():
                    if key not in before:
                        self._update_host(target, libvirt.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST, index, host, flags)
                    elif before[key] != host:
                        self._update_host(target, libvirt.VIR_NETWORK_UPDATE_COMMAND_MODIFY, index, host, flags)

    @staticmethod
    def _update_host(target, command, index, host, flags):
        node = parse_xml("<host/>")
        for k in ("mac", "name", "ip"):
            if host.get(k):
                node.set(k, host[k])
        from ._engine import to_xml  # pylint: disable=import-outside-toplevel

        target.update(command, libvirt.VIR_NETWORK_SECTION_IP_DHCP_HOST, index, to_xml(node).strip(), flags)


class NetworkSpec(DocumentSpec):
    kind = "network"
    root_tag = "network"
    groups = (NameGroup(), ForwardGroup(), BridgeGroup(), MtuGroup(), DomainNameGroup(), IpGroup())

    def validate(self, params, exists):
        check_name(params["name"], option="name", kind="network name")
        if params.get("pf") and params.get("forward") not in ("hostdev", None):
            raise VirtforgeError("pf goes with forward: hostdev (a pool of SR-IOV VFs)", option="pf")
        if params.get("forward") == "hostdev":
            if not params.get("pf") and not exists:
                raise VirtforgeError("required with forward: hostdev (the SR-IOV physical function, e.g. enp3s0f0)",
                                     option="pf")
            for key in ("ip", "bridge", "stp", "delay", "domain_name", "mtu"):
                if params.get(key) is not None:
                    raise VirtforgeError("not supported with forward: hostdev (guests get VFs of %s directly)"
                                         % (params.get("pf") or "the PF"), option=key)
        if params.get("forward") == "bridge":
            if not params.get("bridge") and not exists:
                raise VirtforgeError("required with forward: bridge (the existing host bridge to use)",
                                     option="bridge")
            if params.get("ip"):
                raise VirtforgeError("a network with forward: bridge has no addresses of its own; remove ip",
                                     option="ip")
            for key in ("stp", "delay", "domain_name"):
                if params.get(key) is not None:
                    raise VirtforgeError("not supported with forward: bridge", option=key)


NETWORK_ARGSPEC = dict(LIFECYCLE_ARGSPEC, **NetworkSpec().argument_spec())


def libvirtd_netns_pid():
    """pid of the local libvirt network daemon when it runs in another network namespace, else None."""
    try:
        mine = os.readlink("/proc/self/ns/net")
    except OSError:
        return None
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % entry) as handle:
                comm = handle.read().strip()
            if comm in ("libvirtd", "virtnetworkd"):
                theirs = os.readlink("/proc/%s/ns/net" % entry)
                return int(entry) if theirs != mine else None
        except OSError:
            continue
    return None


class NetworkManager(ObjectManager):
    spec = NetworkSpec()
    kind = "network"

    def __init__(self, module, conn, runner=None):
        super().__init__(module, conn)
        self.runner = runner

    def lookup(self, name):
        try:
            return self.conn.networkLookupByName(name)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_NETWORK:
                return None
            raise

    def current_xml(self, obj):
        return inactive_xml(obj, libvirt.VIR_NETWORK_XML_INACTIVE)

    def live_xml(self, obj):
        return obj.XMLDesc(0)

    def define(self, xml):
        return self.conn.networkDefineXML(xml)

    def after_restart(self, obj, plan, result):
        """Re-attach running guests' taps to the bridge libvirt recreated (libvirt 9.0 does not)."""
        name = self.params["name"]
        result["reconnected"] = []
        taps = []
        for dom in self.conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
            root = parse_xml(dom.XMLDesc(0))
            for iface in root.iterfind("devices/interface"):
                src = iface.find("source")
                tgt = iface.find("target")
                if src is None or tgt is None or src.get("network") != name or not tgt.get("dev"):
                    continue
                mac = iface.find("mac")
                taps.append((dom.name(), mac.get("address") if mac is not None else None, tgt.get("dev")))
        if not taps:
            return
        if not is_local_uri(self.params.get("uri")) or self.runner is None:
            self.warnings.append(
                "network %s was restarted: running guests (%s) lost their connection; reconnect their interfaces "
                "on the host (ip link set TAP master %s)" % (name, ", ".join(t[0] for t in taps), obj.bridgeName()))
            return
        bridge = obj.bridgeName()
        prefix = []
        pid = libvirtd_netns_pid()
        if pid is not None:
            prefix = [self.runner.which("nsenter"), "--net=/proc/%d/ns/net" % pid]
        ip_tool = self.runner.which("ip")
        for dom_name, mac, tap in taps:
            self.runner.run(prefix + [ip_tool, "link", "set", "dev", tap, "master", bridge],
                            what="reconnecting %s (%s) to %s" % (tap, dom_name, bridge))
            result["reconnected"].append(dict(domain=dom_name, mac=mac, tap=tap, bridge=bridge))


def run_network(module, conn, runner):
    manager = NetworkManager(module, conn, runner)
    result = manager.run()
    for warning in manager.warnings:
        module.warn(warning)
    return result
