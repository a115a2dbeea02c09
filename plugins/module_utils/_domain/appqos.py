# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-application traffic classes of a NIC (``interfaces[].app_qos``), a field of InterfaceGroup.

libvirt has no element for them, so they live in the domain's metadata (``<vf:qos mac=...>`` in
the collection's ``<vf:instance>``), where the libvirt hook (``_tc.py``, installed by ``qos_hook``)
finds them each time the domain starts. On a running domain they are applied at once with tc in
the network namespace of the domain's QEMU process (where its taps are).
"""

from __future__ import annotations

import os
import re

from .. import _tc
from .._qos_hook import HOOK_PATH
from .._libvirt import METADATA_NS, METADATA_PREFIX, is_local_uri
from .groups import metadata_instance

try:
    from lxml import etree
except ImportError:  # pragma: no cover - reported by _libvirt.check_libraries
    etree = None

QEMU_PID_DIR = "/run/libvirt/qemu"
MAX_CLASSES = 64

APP_QOS_SPEC = dict(type="dict", options=dict(
    link=dict(type="raw"),
    direction=dict(type="str", choices=["both", "inbound", "outbound"], default="both"),
    classes=dict(type="list", elements="dict", options=dict(
        name=dict(type="str", required=True),
        ports=dict(type="list", elements="int", required=True),
        protocol=dict(type="str", choices=["tcp", "udp"], default="tcp"),
        rate=dict(type="raw", required=True),
        ceil=dict(type="raw"),
        priority=dict(type="int", default=4),
    )),
))

# tc's rate units: bit-based are decimal (kbit = 1000 bit/s), *bps are bytes per second.
_RATE_UNITS = {"bit": 1, "kbit": 10 ** 3, "mbit": 10 ** 6, "gbit": 10 ** 9, "tbit": 10 ** 12,
               "bps": 8, "kbps": 8 * 10 ** 3, "mbps": 8 * 10 ** 6, "gbps": 8 * 10 ** 9}
_RATE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


def parse_rate(value, option, ctx):
    """``"100mbit"``, ``"70Mbit"``, ``"12.5MBps"``... -> bits per second; a bare number is kbit/s."""
    if isinstance(value, bool):
        raise ctx.error("%r is not a rate" % (value,), option)
    if isinstance(value, (int, float)):
        bits = int(value * 1000)
    else:
        match = _RATE_RE.match(str(value))
        factor = _RATE_UNITS.get(match.group(2).lower() or "kbit") if match else None
        if factor is None:
            raise ctx.error("%r is not a rate" % (value,), option,
                            fix="Give a number with a tc unit: bit, kbit, mbit, gbit (bits/s) or bps, kbps, mbps "
                                "(bytes/s), e.g. '100mbit'; a bare number is kbit/s")
        bits = int(float(match.group(1)) * factor)
    if bits < 8000:
        raise ctx.error("%r is below the minimum of 8kbit" % (value,), option)
    return bits


def canonical_app_qos(raw, where, kind, bandwidth, ctx):
    """The canonical form compared with the metadata: {} removes the classes, None leaves them alone."""
    if raw is None:
        return None
    classes = raw.get("classes") or []
    if not classes:
        return {}
    opt = where + ".app_qos"
    if kind not in ("network", "bridge"):
        raise ctx.error("per-application classes need a NIC with a host-side tap (network or bridge), not %s"
                        % kind, opt)
    if raw.get("link") is None:
        raise ctx.error("the NIC's total rate is needed to share it between the classes", opt + ".link",
                        fix="Set link, e.g. '1gbit'")
    link = parse_rate(raw["link"], opt + ".link", ctx)
    direction = raw.get("direction") or "both"
    for side in ("inbound", "outbound"):
        if direction in (side, "both") and (bandwidth or {}).get(side):
            raise ctx.error("bandwidth.%s and %s application classes both shape the tap; use one" % (side, side),
                            opt + ".direction",
                            fix="Drop bandwidth.%s (set app_qos.link to the NIC's total instead), or set "
                                "app_qos.direction to the other side" % side)
    if len(classes) > MAX_CLASSES:
        raise ctx.error("%d classes; at most %d" % (len(classes), MAX_CLASSES), opt + ".classes")
    out, names, ports = [], set(), {}
    for i, cls in enumerate(classes):
        at = "%s.classes[%d]" % (opt, i)
        name = cls.get("name") or ""
        if not _NAME_RE.match(name):
            raise ctx.error("%r is not a class name" % name, at + ".name",
                            fix="1-32 letters, digits, '.', '_' or '-'")
        if name in names:
            raise ctx.error("class %r is declared twice" % name, at + ".name")
        names.add(name)
        if not cls.get("ports"):
            raise ctx.error("a class needs at least one port", at + ".ports")
        for port in cls["ports"]:
            if not 1 <= port <= 65535:
                raise ctx.error("%d is not a port (1-65535)" % port, at + ".ports")
            key = (cls.get("protocol") or "tcp", port)
            if key in ports:
                raise ctx.error("%s port %d is already in class %r" % (key[0], port, ports[key]), at + ".ports",
                                fix="A port belongs to one class")
            ports[key] = name
        rate = parse_rate(cls["rate"], at + ".rate", ctx)
        ceil = parse_rate(cls["ceil"], at + ".ceil", ctx) if cls.get("ceil") is not None else link
        if ceil < rate:
            raise ctx.error("ceil is below rate", at + ".ceil", fix="ceil is what the class may borrow up to")
        if ceil > link or rate > link:
            raise ctx.error("above the NIC's link rate (%s)" % raw["link"], at + (".ceil" if ceil > link else ".rate"))
        priority = cls.get("priority", 4)
        if priority is None:
            priority = 4
        if not 0 <= priority <= 7:
            raise ctx.error("%d is out of range 0 (first) to 7 (last)" % priority, at + ".priority")
        out.append(dict(name=name, protocol=cls.get("protocol") or "tcp", ports=sorted(set(cls["ports"])),
                        rate=rate, ceil=ceil, priority=priority))
    total = sum(c["rate"] for c in out)
    if total > link:
        raise ctx.error("the classes reserve %d bit/s, more than the link's %d bit/s" % (total, link),
                        opt + ".classes", fix="Lower the rates (guarantees) or raise link; ceil may exceed a share")
    return dict(link=link, direction=direction, classes=out)


# ------------------------------------------------------------------ metadata
def _qos_node(root, mac):
    instance = metadata_instance(root)
    if instance is None:
        return None
    for node in instance.iterfind("{%s}qos" % METADATA_NS):
        if (node.get("mac") or "").lower() == mac:
            return node
    return None


def read_app_qos(element):
    """The classes stored for the NIC ``element`` ({} when none)."""
    mac = element.find("mac")
    if mac is None:
        return {}
    node = _qos_node(element.getroottree().getroot(), mac.get("address").lower())
    return _tc.qos_from_element(node) if node is not None else {}


def write_app_qos(root, mac, qos):
    old = _qos_node(root, mac)
    if old is not None:
        old.getparent().remove(old)
    if not qos:
        return
    node = etree.SubElement(metadata_instance(root, create=True), "{%s}qos" % METADATA_NS, mac=mac,
                            direction=qos["direction"], link=str(qos["link"]))
    for cls in qos["classes"]:
        etree.SubElement(node, "{%s}class" % METADATA_NS, name=cls["name"], protocol=cls["protocol"],
                         ports=",".join(str(p) for p in cls["ports"]), rate=str(cls["rate"]),
                         ceil=str(cls["ceil"]), priority=str(cls["priority"]))


# ------------------------------------------------------------------ live
def hook_installed():
    return os.path.exists(HOOK_PATH)


def warn_without_hook(ctx, where):
    if getattr(ctx.host, "local_files", False) and not hook_installed():
        ctx.host.warn("%s.app_qos: the classes are kept in the domain's metadata, but the libvirt hook that "
                      "builds them when the domain starts is not installed (%s): run virtforge.libvirt.qos_hook "
                      "once on this host" % (where, HOOK_PATH))


def _netns_prefix(ctx):
    """Run tc where the domain's taps are: the network namespace of its QEMU process."""
    pid_file = os.path.join(QEMU_PID_DIR, "%s.pid" % ctx["name"])
    with open(pid_file) as handle:
        pid = int(handle.read().strip())
    return ["nsenter", "--net=/proc/%d/ns/net" % pid]


def live_taps(target):
    root = etree.fromstring(target.XMLDesc(0).encode())
    return _tc.domain_qos(root)[1]


def apply_live(ctx, taps, changes, runner=None):
    """changes: [(mac, qos or {})]; taps: {mac: tap} of the running domain (read before any detach)."""
    uri = ctx.host.uri
    if not (is_local_uri(uri) and (uri or "qemu").startswith("qemu")):
        ctx.host.warn("app_qos: %s is not this machine's QEMU driver; the classes apply when the domain next "
                      "starts (through the hook installed on that host)" % uri)
        return
    prefix = _netns_prefix(ctx)
    for mac, qos in changes:
        tap = taps.get(mac)
        if tap is None and qos:
            continue
        try:
            _tc.run_steps(_tc.apply_commands(tap, mac, qos), prefix=prefix, runner=runner)
        except _tc.TcError as exc:
            raise ctx.error("tc could not build the classes on %s: %s" % (tap, exc),
                            "interfaces[%s].app_qos" % mac,
                            fix="The host kernel needs sch_htb, sch_ingress, cls_u32, act_mirred and ifb") \
                from None


def push_live_metadata(target, after_root):
    """Give the running domain the metadata of ``after_root`` (libvirt namespaces it itself)."""
    node = metadata_instance(after_root, create=True)

    def plain(src):
        out = etree.Element(etree.QName(src).localname, dict(src.attrib))
        out.text = src.text
        for item in src:
            if isinstance(item.tag, str):
                out.append(plain(item))
        return out

    target.setMetadata(2, etree.tostring(plain(node), encoding="unicode"), METADATA_PREFIX, METADATA_NS, 1)
