# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The NetworkManager provider: connection profiles through ``nmcli`` (argument lists).

The bridge, bond or VLAN is the connection named like the interface; a NIC port is a connection
``<name>-port-<nic>``; a port that is itself a connection of this collection (a bond under a
bridge) is modified to name its controller. NetworkManager stores the profiles itself.
"""

from __future__ import annotations

import ipaddress
import os

from .._errors import VirtforgeError
from .provider import Provider

_YESNO = {True: "yes", False: "no"}
_BRIDGE_PROPS = dict(stp="bridge.stp", forward_delay="bridge.forward-delay", priority="bridge.priority",
                     vlan_filtering="bridge.vlan-filtering")
_BOND_OPTS = ("mode", "miimon", "arp_interval", "arp_ip_target", "lacp_rate", "xmit_hash_policy", "primary")
_READ_PROPS = ("connection.type", "802-3-ethernet.mtu", "bridge.stp", "bridge.forward-delay", "bridge.priority",
               "bridge.vlan-filtering", "bond.options", "vlan.parent", "vlan.id", "ipv4.method", "ipv4.addresses",
               "ipv4.gateway", "ipv4.dns", "ipv6.method", "ipv6.addresses", "ipv6.gateway", "ipv6.dns")
_NM_TYPE = dict(bridge="bridge", bond="bond", vlan="vlan")
# Debian: NetworkManager's dispatcher runs ifupdown's hooks, and ifenslave's post-down hook releases the
# interface from its bond (and deletes a bond) on every "down" event, also for bonds NetworkManager manages
_IFUPDOWN_DISPATCHER = "etc/NetworkManager/dispatcher.d/01-ifupdown"
_IFENSLAVE_HOOK = "etc/network/if-post-down.d/ifenslave"


def port_connection(name, port):
    return "%s-port-%s" % (name, port)


def bond_options(cfg):
    opts = []
    for key in _BOND_OPTS:
        value = cfg.get(key)
        if value is None or (key == "arp_ip_target" and not value):
            continue
        opts.append("%s=%s" % (key, " ".join(value) if isinstance(value, list) else value))
    return ",".join(opts)


def properties(kind, cfg, keys=None):
    """nmcli property/value pairs (in a fixed order) for the canonical ``cfg``, limited to ``keys``."""
    want = set(cfg) if keys is None else set(keys)
    props = []
    if "mtu" in want and cfg.get("mtu") is not None:
        props.append(("802-3-ethernet.mtu", str(cfg["mtu"])))
    if kind == "bridge":
        for key, prop in _BRIDGE_PROPS.items():
            if key in want and cfg.get(key) is not None:
                value = cfg[key]
                props.append((prop, _YESNO[value] if isinstance(value, bool) else str(value)))
    elif kind == "bond" and want & set(_BOND_OPTS):
        props.append(("bond.options", bond_options(cfg)))
    elif kind == "vlan":
        if "parent" in want:
            props.append(("vlan.parent", cfg["parent"]))
        if "id" in want:
            props.append(("vlan.id", str(cfg["id"])))
    if want & {"ip.method", "ip.addresses", "ip.gateway", "ip.dns"} and "ip.method" in cfg:
        method = cfg["ip.method"]
        addrs = cfg.get("ip.addresses") or []
        v4 = [a for a in addrs if ipaddress.ip_interface(a).version == 4]
        v6 = [a for a in addrs if ipaddress.ip_interface(a).version == 6]
        gateway = cfg.get("ip.gateway") or ""
        dns = cfg.get("ip.dns") or []
        if method == "dhcp":
            props += [("ipv4.method", "auto"), ("ipv4.addresses", ""), ("ipv4.gateway", ""),
                      ("ipv6.method", "auto")]
        elif method == "static":
            props += [("ipv4.method", "manual" if v4 else "disabled"), ("ipv4.addresses", ", ".join(v4)),
                      ("ipv4.gateway", gateway if gateway and ":" not in gateway else ""),
                      ("ipv6.method", "manual" if v6 else "disabled"), ("ipv6.addresses", ", ".join(v6)),
                      ("ipv6.gateway", gateway if ":" in gateway else "")]
        else:
            props += [("ipv4.method", "disabled"), ("ipv4.addresses", ""), ("ipv4.gateway", ""),
                      ("ipv6.method", "disabled"), ("ipv6.addresses", ""), ("ipv6.gateway", "")]
        if "ip.dns" in cfg:
            props += [("ipv4.dns", ",".join(d for d in dns if ":" not in d)),
                      ("ipv6.dns", ",".join(d for d in dns if ":" in d))]
    return props


def parse_properties(kind, values):
    """Canonical config from ``nmcli -t -f ... connection show`` values ({prop: value})."""
    cfg = {}
    mtu = values.get("802-3-ethernet.mtu", "auto")
    cfg["mtu"] = int(mtu) if mtu.isdigit() and int(mtu) else None
    if kind == "bridge":
        cfg["stp"] = values.get("bridge.stp") == "yes"
        for key in ("forward_delay", "priority"):
            value = values.get(_BRIDGE_PROPS[key], "")
            cfg[key] = int(value) if value.isdigit() else None
        cfg["vlan_filtering"] = values.get("bridge.vlan-filtering") == "yes"
    elif kind == "bond":
        for item in filter(None, values.get("bond.options", "").split(",")):
            key, _sep, value = item.partition("=")
            if key in ("miimon", "arp_interval"):
                cfg[key] = int(value)
            elif key == "arp_ip_target":
                cfg[key] = value.split()
            elif key in _BOND_OPTS:
                cfg[key] = value
    elif kind == "vlan":
        cfg["parent"] = values.get("vlan.parent") or None
        cfg["id"] = int(values["vlan.id"]) if values.get("vlan.id", "").isdigit() else None
    addrs = [a.strip() for prop in ("ipv4.addresses", "ipv6.addresses")
             for a in values.get(prop, "").split(",") if a.strip()]
    v4method = values.get("ipv4.method", "disabled")
    cfg["ip.method"] = "dhcp" if v4method == "auto" else "static" if addrs else "none"
    cfg["ip.addresses"] = [str(ipaddress.ip_interface(a)) for a in addrs]
    cfg["ip.gateway"] = values.get("ipv4.gateway") or values.get("ipv6.gateway") or None
    dns = [d.strip() for prop in ("ipv4.dns", "ipv6.dns") for d in values.get(prop, "").split(",") if d.strip()]
    cfg["ip.dns"] = dns
    return cfg


class NetworkManagerProvider(Provider):
    name = "networkmanager"
    persistent = True

    @classmethod
    def detect(cls, runner, root="/"):
        if not runner.which("nmcli", required=False):
            return False
        rc, out, _err = runner.run(["nmcli", "-t", "-f", "RUNNING", "general"], check=False)
        return rc == 0 and out.strip() == "running"

    def _show(self, conn, fields):
        rc, out, _err = self.runner.run(["nmcli", "-t", "-f", ",".join(fields), "connection", "show", conn],
                                        check=False)
        if rc != 0:
            return None
        values = {}
        for line in out.splitlines():
            prop, _sep, value = line.partition(":")
            values[prop] = value.replace("\\:", ":")
        return values

    def connections(self):
        rc, out, _err = self.runner.run(["nmcli", "-t", "-f", "NAME", "connection", "show"], check=False)
        return [line.replace("\\:", ":") for line in out.splitlines()] if rc == 0 else []

    def read(self, name, kind):
        values = self._show(name, _READ_PROPS)
        if values is None:
            return dict(exists=False, kind=kind, config={}, active=False)
        nm_type = values.get("connection.type", "")
        found = {"bridge": "bridge", "bond": "bond", "vlan": "vlan"}.get(nm_type, nm_type)
        cfg = parse_properties(kind, values)
        names = self.connections()
        prefix = port_connection(name, "")
        ports = [c[len(prefix):] for c in names if c.startswith(prefix)]
        for conn in names:
            if conn in ports or conn.startswith(prefix) or conn == name:
                continue
            master = self._show(conn, ("connection.master",))
            if master and master.get("connection.master") == name:
                ports.append(conn)
        key = {"bridge": "ports", "bond": "members"}.get(kind)
        if key:
            cfg[key] = sorted(ports)
        state = self._show(name, ("GENERAL.STATE",)) or {}
        return dict(exists=True, kind=found, config=cfg, active=state.get("GENERAL.STATE") == "activated",
                    connections=names)

    def check_system(self, want, current):
        if want["kind"] != "bond" or want["state"] == "absent":
            return
        dispatcher = os.path.join(self.root, _IFUPDOWN_DISPATCHER)
        hook = os.path.join(self.root, _IFENSLAVE_HOOK)
        if os.access(dispatcher, os.X_OK) and os.access(hook, os.X_OK):
            raise VirtforgeError(
                "NetworkManager's dispatcher runs ifupdown's hooks (/%s), and /%s (package ifenslave) releases "
                "a port from its bond, and deletes the bond, on each of their 'down' events, also when "
                "NetworkManager manages the bond: NetworkManager attaches the port again, the late hook releases "
                "it again, and the bond's ports flap without end" % (_IFUPDOWN_DISPATCHER, _IFENSLAVE_HOOK),
                option="provider",
                fix="Purge the ifenslave package (apt-get purge ifenslave; NetworkManager does not use it, and a "
                    "plain remove leaves the hook behind, it is a configuration file), or configure the bonds "
                    "of this host with provider: ifupdown")

    def _port_steps(self, name, kind, old, new, connections):
        """Steps that make ``new`` the ports (they come up with the controller: autoconnect-slaves)."""
        steps = []
        for port in sorted(set(old) - set(new)):
            if port in connections:
                # a released port keeps no IP configuration (NetworkManager would give it its defaults: DHCP)
                steps.append({"argv": ["nmcli", "connection", "modify", port, "connection.master", "",
                                       "connection.slave-type", "", "ipv4.method", "disabled",
                                       "ipv6.method", "disabled"]})
            else:
                steps.append({"argv": ["nmcli", "connection", "delete", port_connection(name, port)]})
        for port in new:
            if port in old:
                continue
            if port in connections:  # a bond or VLAN profile of its own
                steps.append({"argv": ["nmcli", "connection", "modify", port, "connection.master", name,
                                       "connection.slave-type", kind]})
            else:
                steps.append({"argv": ["nmcli", "connection", "add", "type", "ethernet",
                                       "con-name", port_connection(name, port), "ifname", port,
                                       "connection.master", name, "connection.slave-type", kind,
                                       "connection.autoconnect", "yes"]})
        return steps

    def apply_steps(self, want, current, changes):
        name, kind = want["name"], want["kind"]
        key = {"bridge": "ports", "bond": "members"}.get(kind)
        connections = current.get("connections")
        if connections is None:
            connections = self.connections()
        have = dict(current.get("config") or {}) if current.get("exists") else {}
        steps = []
        if want["state"] == "absent":
            if not current.get("exists"):
                return []
            if key:
                steps += self._port_steps(name, kind, have.get(key) or [], [], connections)
            steps.append({"argv": ["nmcli", "connection", "delete", name]})
            return steps
        cfg = want["config"]
        changed = {c.key for c in changes}
        if not current.get("exists"):
            argv = ["nmcli", "connection", "add", "type", _NM_TYPE[kind], "con-name", name, "ifname", name,
                    "connection.autoconnect", "yes"]
            if key:
                # bringing the controller up brings its ports up too, also a port whose device has another
                # connection active, and a bond that became a bridge's port joins it
                argv += ["connection.autoconnect-slaves", "yes"]
            full = dict(cfg)
            if "ip.method" not in full:
                full["ip.method"] = "none"
            for prop, value in properties(kind, full):
                argv += [prop, value]
            steps.append({"argv": argv})
        else:
            props = properties(kind, dict(have, **cfg), changed)
            if props:
                argv = ["nmcli", "connection", "modify", name]
                for prop, value in props:
                    argv += [prop, value]
                steps.append({"argv": argv})
        if key and cfg.get(key) is not None:
            steps += self._port_steps(name, kind, have.get(key) or [], cfg[key], connections)
        steps.append({"argv": ["nmcli", "connection", "up", name]})
        return steps
