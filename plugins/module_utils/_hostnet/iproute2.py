# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The iproute2 provider: runtime-only configuration with ``ip`` (and ``-n NS`` for namespaces).

Nothing is written to disk: this is the provider for network namespaces, containers and tests.
"""

from __future__ import annotations

import json

from .._errors import VirtforgeError
from .provider import Provider

# model key -> (iproute2 attribute, value renderer)
_BRIDGE_ATTRS = dict(
    stp=("stp_state", lambda v: "1" if v else "0"),
    forward_delay=("forward_delay", lambda v: str(int(v) * 100)),  # centiseconds (USER_HZ)
    priority=("priority", str),
    vlan_filtering=("vlan_filtering", lambda v: "1" if v else "0"),
)
_BOND_ATTRS = dict(
    mode=("mode", str),
    miimon=("miimon", str),
    arp_interval=("arp_interval", str),
    arp_ip_target=("arp_ip_target", ",".join),
    lacp_rate=("lacp_rate", str),
    xmit_hash_policy=("xmit_hash_policy", str),
)
ATTRS = dict(bridge=_BRIDGE_ATTRS, bond=_BOND_ATTRS, vlan={})


class Iproute2Provider(Provider):
    name = "iproute2"
    persistent = False

    @classmethod
    def detect(cls, runner, root="/"):
        return True

    # ---- reading -------------------------------------------------------------------------
    def _json(self, *args):
        rc, out, err = self.runner.run(self.ip(*args), check=False)
        if rc != 0:
            raise VirtforgeError("ip %s failed: %s" % (" ".join(args), (err or out).strip()))
        return json.loads(out or "[]")

    def check_namespace(self):
        if not self.netns:
            return
        rc, _out, err = self.runner.run(self.ip("link", "show", "lo"), check=False)
        if rc != 0:
            raise VirtforgeError("network namespace %r does not exist or cannot be entered (%s)"
                                 % (self.netns, (err or "").strip()), option="netns",
                                 fix="Create it first (ip netns add %s)" % self.netns)

    def ports(self, name):
        return sorted(link["ifname"] for link in self._json("-j", "link", "show", "master", name))

    def read_ip(self, name):
        out = {}
        addresses, dynamic = [], False
        for link in self._json("-j", "addr", "show", "dev", name):
            for addr in link.get("addr_info", []):
                if addr.get("scope") != "global":
                    continue
                addresses.append("%s/%s" % (addr["local"], addr["prefixlen"]))
                dynamic = dynamic or bool(addr.get("dynamic"))
        out["ip.addresses"] = addresses
        out["ip.method"] = "dhcp" if dynamic else ("static" if addresses else "none")
        gateway = None
        for family in ("-4", "-6"):
            for route in self._json(family, "-j", "route", "show", "default", "dev", name):
                if route.get("gateway"):
                    gateway = route["gateway"]
                    break
            if gateway:
                break
        out["ip.gateway"] = gateway
        return out

    def read(self, name, kind):
        self.check_namespace()
        info = self.link(name)
        if info is None:
            return dict(exists=False, kind=kind, config={}, active=False)
        linkinfo = info.get("linkinfo") or {}
        actual = linkinfo.get("info_kind") or "device"
        data = linkinfo.get("info_data") or {}
        cfg = dict(mtu=info.get("mtu"))
        if actual == "bridge":
            cfg.update(stp=bool(data.get("stp_state")), forward_delay=int(round(data.get("forward_delay", 0) / 100.0)),
                       priority=data.get("priority"), vlan_filtering=bool(data.get("vlan_filtering")),
                       ports=self.ports(name))
        elif actual == "bond":
            cfg.update(mode=data.get("mode"), miimon=data.get("miimon"), arp_interval=data.get("arp_interval"),
                       arp_ip_target=list(data.get("arp_ip_target") or []), lacp_rate=data.get("ad_lacp_rate"),
                       xmit_hash_policy=data.get("xmit_hash_policy"), primary=data.get("primary"),
                       members=self.ports(name))
        elif actual == "vlan":
            cfg.update(id=data.get("id"), parent=info.get("link"))
        cfg.update(self.read_ip(name))
        return dict(exists=True, kind=actual, config=cfg, active="UP" in (info.get("flags") or []))

    # ---- rendering -----------------------------------------------------------------------
    def _attrs(self, kind, cfg, keys):
        out = []
        for key, (attr, render) in ATTRS[kind].items():
            if key in keys and cfg.get(key) is not None:
                if key == "arp_ip_target" and not cfg[key]:
                    continue
                out += [attr, render(cfg[key])]
        return out

    def _create(self, name, kind, cfg):
        argv = ["link", "add"]
        if kind == "vlan":
            argv += ["link", cfg["parent"]]
        argv += ["name", name]
        if cfg.get("mtu") is not None:
            argv += ["mtu", str(cfg["mtu"])]
        argv += ["type", kind]
        if kind == "vlan":
            argv += ["id", str(cfg["id"])]
        argv += self._attrs(kind, cfg, set(cfg))
        return {"argv": self.ip(*argv)}

    def apply_steps(self, want, current, changes):
        name, kind = want["name"], want["kind"]
        ip = self.ip
        exists = bool(current.get("exists"))
        if want["state"] == "absent":
            return [{"argv": ip("link", "del", "dev", name)}] if exists else []
        cfg = want["config"]
        changed = {c.key for c in changes}
        have = dict(current.get("config") or {}) if exists else {}
        steps = []
        create = not exists
        if kind == "vlan" and exists and changed & {"id", "parent"}:
            # the kernel cannot change a VLAN's id or parent: replace the link
            steps.append({"argv": ip("link", "del", "dev", name)})
            create, have = True, {}
        if create:
            steps.append(self._create(name, kind, cfg))
        else:
            attr_keys = changed & set(ATTRS[kind])
            if kind == "bond" and "mode" in attr_keys:
                # a bond's mode can only change while it is down and has no members
                steps.append({"argv": ip("link", "set", "dev", name, "down")})
                for member in have.get("members") or []:
                    steps.append({"argv": ip("link", "set", "dev", member, "nomaster")})
                have["members"] = []
            if kind == "bridge" and "stp" in attr_keys and not cfg["stp"]:
                # the kernel checks forward_delay against STP's 2-30 s before it applies stp_state:
                # turn STP off first, then a short forward delay is accepted
                steps.append({"argv": ip("link", "set", "dev", name, "type", "bridge", "stp_state", "0")})
                attr_keys = attr_keys - {"stp"}
            attrs = self._attrs(kind, cfg, attr_keys)
            if attrs:
                steps.append({"argv": ip("link", "set", "dev", name, "type", kind, *attrs)})
            if "mtu" in changed:
                steps.append({"argv": ip("link", "set", "dev", name, "mtu", str(cfg["mtu"]))})
        member_key = {"bridge": "ports", "bond": "members"}.get(kind)
        if member_key and cfg.get(member_key) is not None:
            old = set(have.get(member_key) or [])
            new = cfg[member_key]
            for member in sorted(old - set(new)):
                steps.append({"argv": ip("link", "set", "dev", member, "nomaster")})
            for member in new:
                if member in old:
                    continue
                if kind == "bond":  # the bonding driver takes only links that are down
                    steps.append({"argv": ip("link", "set", "dev", member, "down")})
                steps.append({"argv": ip("link", "set", "dev", member, "master", name)})
                steps.append({"argv": ip("link", "set", "dev", member, "up")})
        if kind == "bond" and cfg.get("primary") is not None and (create or changed & {"primary", "members", "mode"}):
            steps.append({"argv": ip("link", "set", "dev", name, "type", "bond", "primary", cfg["primary"])})
        if want.get("active", True) and (create or not current.get("active") or "mode" in changed):
            steps.append({"argv": ip("link", "set", "dev", name, "up")})
        if "ip.addresses" in cfg and (create or "ip.addresses" in changed):
            old = have.get("ip.addresses") or []
            for addr in cfg["ip.addresses"]:
                if addr not in old:
                    steps.append({"argv": ip("addr", "add", addr, "dev", name)})
            for addr in old:
                if addr not in cfg["ip.addresses"]:
                    steps.append({"argv": ip("addr", "del", addr, "dev", name)})
        if "ip.gateway" in cfg:
            gateway = cfg["ip.gateway"]
            if gateway and (create or changed & {"ip.gateway", "ip.addresses"}):
                steps.append({"argv": ip("route", "replace", "default", "via", gateway, "dev", name)})
            elif not gateway and have.get("ip.gateway") and "ip.gateway" in changed:
                steps.append({"argv": ip("route", "del", "default", "via", have["ip.gateway"], "dev", name),
                              "ignore_errors": True})
        return steps
