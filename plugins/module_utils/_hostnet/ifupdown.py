# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ifupdown provider: Debian's /etc/network/interfaces.d, one file per interface.

The collection owns only the files it writes (``interfaces.d/virtforge-<name>``, with a header
saying so) and never edits /etc/network/interfaces or any other file. Changes are brought up with
the system's own tools: ``ifreload -a`` with ifupdown2, ``ifdown``/``ifup`` with classic ifupdown.
"""

from __future__ import annotations

import ipaddress
import os
import re

from .._errors import VirtforgeError
from . import model
from .provider import Provider

HEADER = "# Managed by virtforge.libvirt: %s %s. Changes made here are overwritten.\n"
_HEADER_RE = re.compile(r"^# Managed by virtforge\.libvirt: (\w+) (\S+)\.")

_BOOL = {True: "on", False: "off"}
_YESNO = {True: "yes", False: "no"}
# model key -> (option, render, parse)
_OPTIONS = dict(
    bridge=[
        ("ports", "bridge-ports", lambda v: " ".join(v) if v else "none",
         lambda v: [] if v == "none" else sorted(v.split())),
        ("stp", "bridge-stp", lambda v: _BOOL[v], lambda v: v in ("on", "yes")),
        ("forward_delay", "bridge-fd", str, int),
        ("priority", "bridge-bridgeprio", str, int),
        ("vlan_filtering", "bridge-vlan-aware", lambda v: _YESNO[v], lambda v: v in ("on", "yes")),
    ],
    bond=[
        ("members", "bond-slaves", lambda v: " ".join(v) if v else "none",
         lambda v: [] if v == "none" else sorted(v.split())),
        ("mode", "bond-mode", str, str),
        ("miimon", "bond-miimon", str, int),
        ("arp_interval", "bond-arp-interval", str, int),
        ("arp_ip_target", "bond-arp-ip-target", " ".join, str.split),
        ("lacp_rate", "bond-lacp-rate", str, str),
        ("xmit_hash_policy", "bond-xmit-hash-policy", str, str),
        ("primary", "bond-primary", str, str),
    ],
    vlan=[
        ("parent", "vlan-raw-device", str, str),
        ("id", "vlan-id", str, int),
    ],
)


def file_name(name):
    return "virtforge-%s" % name.replace(".", "_")


def render(name, kind, cfg):
    """The interfaces(5) file of one interface from its full canonical config."""
    lines = [HEADER % (kind, name), "auto %s\n" % name]
    method = cfg.get("ip.method") or "none"
    addresses = cfg.get("ip.addresses") or []
    gateway = cfg.get("ip.gateway")
    families = []
    if method == "static":
        v4 = [a for a in addresses if ipaddress.ip_interface(a).version == 4]
        v6 = [a for a in addresses if ipaddress.ip_interface(a).version == 6]
        if v4 or not v6:
            families.append(("inet", "static", v4))
        if v6:
            families.append(("inet6", "static", v6))
    elif method == "dhcp":
        families.append(("inet", "dhcp", []))
    else:
        families.append(("inet", "manual", []))
    for index, (family, how, addrs) in enumerate(families):
        lines.append("iface %s %s %s\n" % (name, family, how))
        for addr in addrs:
            lines.append("    address %s\n" % addr)
        if gateway and ipaddress.ip_address(gateway).version == (4 if family == "inet" else 6):
            lines.append("    gateway %s\n" % gateway)
        if index:
            continue
        if cfg.get("ip.dns"):
            lines.append("    dns-nameservers %s\n" % " ".join(cfg["ip.dns"]))
        if cfg.get("mtu") is not None:
            lines.append("    mtu %d\n" % cfg["mtu"])
        for key, option, out, _parse in _OPTIONS[kind]:
            if cfg.get(key) is None or (key == "arp_ip_target" and not cfg[key]):
                continue
            lines.append("    %s %s\n" % (option, out(cfg[key])))
    return "".join(lines)


def parse(text):
    """(kind, name, config) of a file this provider wrote; None when it is not one of ours."""
    match = _HEADER_RE.match(text or "")
    if not match:
        return None
    kind, name = match.group(1), match.group(2)
    cfg = {}
    addresses, method = [], "none"
    parsers = {option: (key, parse_value) for key, option, _out, parse_value in _OPTIONS.get(kind, [])}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = line.split(None, 1)
        head, rest = words[0], words[1] if len(words) > 1 else ""
        if head == "iface":
            how = rest.split()[-1]
            if how in ("static", "dhcp") and method != "static":
                method = how
        elif head == "address":
            addresses.append(str(ipaddress.ip_interface(rest.strip())))
        elif head == "gateway":
            cfg["ip.gateway"] = rest.strip()
        elif head == "dns-nameservers":
            cfg["ip.dns"] = rest.split()
        elif head == "mtu":
            cfg["mtu"] = int(rest)
        elif head in parsers:
            key, parse_value = parsers[head]
            cfg[key] = parse_value(rest.strip())
    cfg["ip.method"] = method
    cfg["ip.addresses"] = addresses
    cfg.setdefault("ip.gateway", None)
    if kind == "bridge":
        cfg.setdefault("stp", False)
    return kind, name, cfg


class IfupdownProvider(Provider):
    name = "ifupdown"
    persistent = True

    def __init__(self, runner, netns=None, root="/", flavor=None):
        super().__init__(runner, netns=netns, root=root)
        self._flavor = flavor

    @classmethod
    def detect(cls, runner, root="/"):
        return os.path.exists(os.path.join(root, "etc/network/interfaces"))

    @property
    def flavor(self):
        """``ifupdown2`` when ifreload exists, else classic ``ifupdown``."""
        if self._flavor is None:
            self._flavor = "ifupdown2" if self.runner.which("ifreload", required=False) else "ifupdown"
        return self._flavor

    def path(self, name):
        return os.path.join(self.root, "etc/network/interfaces.d", file_name(name))

    def _read_file(self, path):
        try:
            with open(path) as handle:
                return handle.read()
        except FileNotFoundError:
            return None

    def read(self, name, kind):
        text = self._read_file(self.path(name))
        parsed = parse(text) if text is not None else None
        if parsed is None:
            return dict(exists=False, kind=kind, config={}, active=False, file=None)
        found_kind, found_name, cfg = parsed
        info = self.link(name)
        return dict(exists=True, kind=found_kind, config=cfg, file=text,
                    active=info is not None and "UP" in (info.get("flags") or []))

    def foreign_stanzas(self):
        """{interface: file} for iface stanzas in files this provider does not own."""
        out = {}
        main = os.path.join(self.root, "etc/network/interfaces")
        files = [main]
        directory = os.path.join(self.root, "etc/network/interfaces.d")
        if os.path.isdir(directory):
            files += [os.path.join(directory, f) for f in sorted(os.listdir(directory))]
        for path in files:
            text = self._read_file(path) or ""
            if _HEADER_RE.match(text):
                continue
            for line in text.splitlines():
                words = line.split()
                if len(words) >= 2 and words[0] in ("iface", "auto", "allow-hotplug"):
                    for ifname in words[1:] if words[0] != "iface" else words[1:2]:
                        out.setdefault(ifname, path)
        return out

    def check_system(self, want, current):
        main = os.path.join(self.root, "etc/network/interfaces")
        text = self._read_file(main) or ""
        if not re.search(r"^\s*(source|source-directory)\s+\S*interfaces\.d", text, re.M):
            raise VirtforgeError("%s does not include /etc/network/interfaces.d, where this provider writes"
                                 % main, option="provider",
                                 fix="Add 'source /etc/network/interfaces.d/*' to it (the Debian default)")
        foreign = self.foreign_stanzas()
        name = want["name"]
        if name in foreign:
            raise VirtforgeError("%s is configured in %s, a file this collection does not own" % (name, foreign[name]),
                                 option="name", fix="Remove its stanza there first, or manage it by hand")
        key = {"bridge": "ports", "bond": "members"}.get(want["kind"])
        for i, member in model.given_members(want):
            if member in foreign:
                raise VirtforgeError("%s has its own configuration in %s; a port must carry none"
                                     % (member, foreign[member]), option="%s[%d]" % (key, i),
                                     fix="Remove its stanza there first (it becomes part of %s)" % name)

    def apply_steps(self, want, current, changes):
        name, kind = want["name"], want["kind"]
        path = self.path(name)
        steps = []
        classic = self.flavor == "ifupdown"
        if want["state"] == "absent":
            if not current.get("exists"):
                return []
            steps.append({"argv": ["ifdown", "--force", name] if classic else ["ifdown", name],
                          "ignore_errors": True})
            steps.append({"remove": path})
            return steps
        cfg = dict(current.get("config") or {}) if current.get("exists") else {}
        cfg.update(want["config"])
        if classic and current.get("exists") and current.get("active"):
            steps.append({"argv": ["ifdown", "--force", name], "ignore_errors": True})
        steps.append({"write": path, "content": render(name, kind, cfg), "mode": 0o644})
        steps.append({"argv": ["ifup", name] if classic else ["ifreload", "-a"]})
        return steps
