# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options, validation and the canonical model of a bridge, bond or VLAN.

The *desired* model is a flat dict of only what the user set, in canonical form
(``{"stp": False, "ports": ["eth0"], "ip.addresses": ["192.0.2.10/24"]}``); providers read the
*current* model into the same keys, so one comparison serves all three providers.
"""

from __future__ import annotations

import ipaddress
import re

from .._errors import VirtforgeError

IFNAME_MAX = 15  # IFNAMSIZ - 1
_IFNAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")

BOND_MODES = ("balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad", "balance-tlb", "balance-alb")
BOND_MODE_ALIASES = {"lacp": "802.3ad"}
LACP_RATES = ("slow", "fast")
XMIT_HASH_POLICIES = ("layer2", "layer2+3", "layer3+4", "encap2+3", "encap3+4", "vlan+srcmac")
# modes where the option means something (kernel bonding documentation)
_PRIMARY_MODES = ("active-backup", "balance-tlb", "balance-alb")
_HASH_MODES = ("balance-xor", "802.3ad", "balance-tlb")
_ARP_MODES = ("balance-rr", "active-backup", "balance-xor", "broadcast")

PROVIDERS = ("auto", "iproute2", "ifupdown", "networkmanager")

COMMON_SPEC = dict(
    name=dict(type="str", required=True),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    mtu=dict(type="int"),
    ip=dict(type="dict", options=dict(
        method=dict(type="str", default="none", choices=["none", "static", "dhcp"]),
        addresses=dict(type="list", elements="str"),
        gateway=dict(type="str"),
        dns=dict(type="list", elements="str"),
    )),
    provider=dict(type="str", default="auto", choices=list(PROVIDERS)),
    netns=dict(type="str"),
    rollback_timeout=dict(type="int", default=60),
    verify=dict(type="bool", default=True),
    verify_target=dict(type="str"),
    verify_port=dict(type="int", default=22),
    verify_method=dict(type="str", default="auto", choices=["auto", "ping", "tcp"]),
    stale_rollback=dict(type="str", default="restore", choices=["restore", "discard"]),
    planned_interfaces=dict(type="list", elements="str", default=[]),
)

KIND_SPECS = dict(
    bridge=dict(
        ports=dict(type="list", elements="str"),
        stp=dict(type="bool", default=False),
        forward_delay=dict(type="int"),
        priority=dict(type="int"),
        vlan_filtering=dict(type="bool"),
    ),
    bond=dict(
        members=dict(type="list", elements="str"),
        mode=dict(type="str"),
        miimon=dict(type="int"),
        arp_interval=dict(type="int"),
        arp_ip_target=dict(type="list", elements="str"),
        lacp_rate=dict(type="str"),
        xmit_hash_policy=dict(type="str"),
        primary=dict(type="str"),
    ),
    vlan=dict(
        id=dict(type="int"),
        parent=dict(type="str"),
    ),
)

# the keys of the canonical model, in the order they are shown and applied
KIND_KEYS = dict(
    bridge=("stp", "forward_delay", "priority", "vlan_filtering", "ports"),
    bond=("mode", "miimon", "arp_interval", "arp_ip_target", "lacp_rate", "xmit_hash_policy", "primary", "members"),
    vlan=("id", "parent"),
)
IP_KEYS = ("ip.method", "ip.addresses", "ip.gateway", "ip.dns")
COMMON_KEYS = ("mtu",)


def argument_spec(kind):
    spec = dict(COMMON_SPEC)
    spec.update(KIND_SPECS[kind])
    return spec


def keys(kind):
    return COMMON_KEYS + KIND_KEYS[kind] + IP_KEYS


def check_ifname(value, option):
    if not isinstance(value, str) or not value:
        raise VirtforgeError("must be a non-empty interface name", option=option)
    if len(value) > IFNAME_MAX:
        raise VirtforgeError("interface name %r is %d characters long, the kernel allows at most %d"
                             % (value, len(value), IFNAME_MAX), option=option,
                             fix="Use a name of at most 15 characters")
    if value in (".", "..") or not _IFNAME_RE.match(value):
        bad = sorted({c for c in value if not re.match(r"[A-Za-z0-9_.-]", c)})
        why = "contains %s" % ", ".join(repr(c) for c in bad) if bad else "is not allowed"
        raise VirtforgeError("interface name %r %s" % (value, why), option=option,
                             fix="Use letters, digits and . _ - only")
    return value


def canonical_bond_mode(value, option="mode"):
    if value is None:
        return None
    text = str(value).strip().lower()
    if text.isdigit() and int(text) < len(BOND_MODES):
        return BOND_MODES[int(text)]
    text = BOND_MODE_ALIASES.get(text, text)
    if text not in BOND_MODES:
        raise VirtforgeError("unknown bond mode %r" % (value,), option=option,
                             fix="Use one of %s (or 0-6)" % ", ".join(BOND_MODES))
    return text


def _range(value, option, low, high, unit=""):
    if value is None:
        return None
    if value < low or value > high:
        raise VirtforgeError("%d%s is out of range, allowed %d-%d%s" % (value, unit, low, high, unit), option=option)
    return value


def _ip_address(value, option):
    try:
        return str(ipaddress.ip_address(str(value).strip()))
    except ValueError:
        raise VirtforgeError("%r is not an IP address" % (value,), option=option) from None


def _ip_interface(value, option):
    text = str(value).strip()
    if "/" not in text:
        raise VirtforgeError("%r has no prefix length" % (value,), option=option,
                             fix="Write the address with its prefix, e.g. 192.0.2.10/24")
    try:
        return str(ipaddress.ip_interface(text))
    except ValueError:
        raise VirtforgeError("%r is not an address with prefix length" % (value,), option=option) from None


def _ip_config(ip, provider):
    """Canonical ``ip.*`` keys, or {} when the user did not ask to manage IP configuration."""
    if ip is None:
        return {}
    method = ip.get("method") or "none"
    addresses = ip.get("addresses")
    gateway = ip.get("gateway")
    dns = ip.get("dns")
    out = {"ip.method": method}
    if method == "static":
        if not addresses:
            raise VirtforgeError("a static configuration needs at least one address", option="ip.addresses")
        canon = [_ip_interface(a, "ip.addresses[%d]" % i) for i, a in enumerate(addresses)]
        out["ip.addresses"] = sorted(set(canon), key=canon.index)
        if gateway:
            gw = _ip_address(gateway, "ip.gateway")
            nets = [ipaddress.ip_interface(a).network for a in canon]
            if not any(ipaddress.ip_address(gw) in net for net in nets):
                raise VirtforgeError("gateway %s is in none of the networks of ip.addresses (%s)"
                                     % (gw, ", ".join(str(n) for n in nets)), option="ip.gateway")
            out["ip.gateway"] = gw
        else:
            out["ip.gateway"] = None
    else:
        for key, value in (("addresses", addresses), ("gateway", gateway)):
            if value:
                raise VirtforgeError("is only allowed with method static (method is %s)" % method,
                                     option="ip.%s" % key)
        if method == "none":
            out["ip.addresses"] = []
            out["ip.gateway"] = None
    if dns is not None:
        if method == "none" and dns:
            raise VirtforgeError("DNS servers need an IP configuration (method is none)", option="ip.dns")
        out["ip.dns"] = [_ip_address(d, "ip.dns[%d]" % i) for i, d in enumerate(dns)]
        if dns and provider == "iproute2":
            raise VirtforgeError("the iproute2 provider configures the kernel only and cannot set DNS servers",
                                 option="ip.dns", fix="Use the ifupdown or networkmanager provider, or drop ip.dns")
    if method == "dhcp" and provider == "iproute2":
        raise VirtforgeError("the iproute2 provider is runtime-only and runs no DHCP client", option="ip.method",
                             fix="Use static addresses, or the ifupdown or networkmanager provider")
    return out


def _member_list(values, option, name):
    if values is None:
        return None
    seen = []
    for i, value in enumerate(values):
        check_ifname(value, "%s[%d]" % (option, i))
        if value == name:
            raise VirtforgeError("%r cannot be a member of itself" % value, option="%s[%d]" % (option, i))
        if value in seen:
            raise VirtforgeError("%r is listed twice" % value, option="%s[%d]" % (option, i))
        seen.append(value)
    return sorted(seen)


def desired(kind, params, provider):
    """Validate the module parameters and return the canonical desired model.

    Everything that can be checked without looking at the system is checked here, so bad input
    fails before anything is read or changed. ``provider`` is the resolved provider name.
    """
    name = check_ifname(params["name"], "name")
    netns = params.get("netns")
    if netns is not None:
        if provider != "iproute2":
            raise VirtforgeError("network namespaces are only supported by the iproute2 provider (got %s)"
                                 % provider, option="netns", fix="Set provider: iproute2, or drop netns")
        if not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$", netns):
            raise VirtforgeError("%r is not a valid network namespace name" % netns, option="netns")
    timeout = params.get("rollback_timeout")
    if timeout is not None and timeout < 5:
        raise VirtforgeError("must be at least 5 seconds, got %d" % timeout, option="rollback_timeout",
                             fix="Leave time to apply and verify the change before the rollback fires")
    _range(params.get("verify_port"), "verify_port", 1, 65535)
    want = dict(name=name, kind=kind, state=params.get("state") or "present", config={})
    if want["state"] == "absent":
        return want
    cfg = want["config"]
    if params.get("mtu") is not None:
        cfg["mtu"] = _range(params["mtu"], "mtu", 68, 65535)
    _KIND_DESIRED[kind](name, params, cfg)
    key = members_key(kind)
    if key and params.get(key) is not None:
        # as given, for error messages that point at the user's own index (cfg holds them sorted)
        want["given_members"] = list(params[key])
    cfg.update(_ip_config(params.get("ip"), provider))
    return want


def _bridge(name, params, cfg):
    stp = bool(params.get("stp"))
    cfg["stp"] = stp
    delay = params.get("forward_delay")
    if delay is not None:
        if stp:
            _range(delay, "forward_delay", 2, 30, " s")
        else:
            # without STP the kernel still accepts 0-30; 0 forwards at once, which VM bridges want
            _range(delay, "forward_delay", 0, 30, " s")
        cfg["forward_delay"] = delay
    if params.get("priority") is not None:
        cfg["priority"] = _range(params["priority"], "priority", 0, 65535)
    if params.get("vlan_filtering") is not None:
        cfg["vlan_filtering"] = bool(params["vlan_filtering"])
    ports = _member_list(params.get("ports"), "ports", name)
    if ports is not None:
        cfg["ports"] = ports


def _bond(name, params, cfg):
    mode = canonical_bond_mode(params.get("mode"))
    effective = mode or "balance-rr"
    if mode is not None:
        cfg["mode"] = mode
    miimon = params.get("miimon")
    arp_interval = params.get("arp_interval")
    targets = params.get("arp_ip_target")
    if miimon is not None:
        if miimon < 0:
            raise VirtforgeError("must be 0 (off) or a positive number of milliseconds, got %d" % miimon,
                                 option="miimon")
        cfg["miimon"] = miimon
    if arp_interval is not None:
        if arp_interval < 0:
            raise VirtforgeError("must be 0 (off) or a positive number of milliseconds, got %d" % arp_interval,
                                 option="arp_interval")
        cfg["arp_interval"] = arp_interval
    if miimon and arp_interval:
        raise VirtforgeError("MII monitoring (miimon) and ARP monitoring (arp_interval) exclude each other",
                             option="arp_interval", fix="Set one of miimon or arp_interval to 0")
    if targets is not None:
        if len(targets) > 16:
            raise VirtforgeError("at most 16 ARP targets are allowed", option="arp_ip_target")
        cfg["arp_ip_target"] = [_ip_address(t, "arp_ip_target[%d]" % i) for i, t in enumerate(targets)]
    if arp_interval and not targets:
        raise VirtforgeError("ARP monitoring needs at least one target", option="arp_ip_target",
                             fix="List the addresses to probe, e.g. the default gateway")
    if arp_interval and effective not in _ARP_MODES:
        raise VirtforgeError("ARP monitoring does not work in mode %s" % effective, option="arp_interval",
                             fix="Use miimon with mode %s" % effective)
    rate = params.get("lacp_rate")
    if rate is not None:
        rate = str(rate).lower()
        rate = {"0": "slow", "1": "fast"}.get(rate, rate)
        if rate not in LACP_RATES:
            raise VirtforgeError("unknown LACP rate %r" % params["lacp_rate"], option="lacp_rate",
                                 fix="Use slow or fast")
        if effective != "802.3ad":
            raise VirtforgeError("only applies to mode 802.3ad (mode is %s)" % effective, option="lacp_rate")
        cfg["lacp_rate"] = rate
    policy = params.get("xmit_hash_policy")
    if policy is not None:
        if policy not in XMIT_HASH_POLICIES:
            raise VirtforgeError("unknown transmit hash policy %r" % policy, option="xmit_hash_policy",
                                 fix="Use one of %s" % ", ".join(XMIT_HASH_POLICIES))
        if effective not in _HASH_MODES:
            raise VirtforgeError("only applies to modes %s (mode is %s)" % (", ".join(_HASH_MODES), effective),
                                 option="xmit_hash_policy")
        cfg["xmit_hash_policy"] = policy
    members = _member_list(params.get("members"), "members", name)
    if members is not None:
        cfg["members"] = members
    primary = params.get("primary")
    if primary is not None:
        check_ifname(primary, "primary")
        if effective not in _PRIMARY_MODES:
            raise VirtforgeError("only applies to modes %s (mode is %s)" % (", ".join(_PRIMARY_MODES), effective),
                                 option="primary")
        if members is None or primary not in members:
            raise VirtforgeError("%r is not one of the bond's members (%s)" % (primary, ", ".join(members or [])),
                                 option="primary", fix="Name one of members as primary")
        cfg["primary"] = primary


def _vlan(name, params, cfg):
    vid = params.get("id")
    if vid is None:
        raise VirtforgeError("a VLAN needs its id (1-4094)", option="id")
    if vid < 1 or vid > 4094:
        raise VirtforgeError("VLAN id %d is reserved or out of range, allowed 1-4094" % vid, option="id")
    parent = params.get("parent")
    if parent is None:
        raise VirtforgeError("a VLAN needs its parent interface (NIC, bond or bridge)", option="parent")
    check_ifname(parent, "parent")
    if parent == name:
        raise VirtforgeError("a VLAN cannot be its own parent", option="parent")
    cfg["id"] = vid
    cfg["parent"] = parent


_KIND_DESIRED = dict(bridge=_bridge, bond=_bond, vlan=_vlan)


def given_members(want):
    """(index in the user's list, name) of the ports or members of a desired model."""
    key = members_key(want["kind"])
    given = want.get("given_members")
    if given is None:
        given = want["config"].get(key) or []
    return list(enumerate(given))


def members_key(kind):
    return {"bridge": "ports", "bond": "members"}.get(kind)


def describe(kind, name, state):
    """Text form of a model for --diff: one ``key: value`` line per key, in a fixed order."""
    if state is None or not state.get("exists", True):
        return ""
    lines = ["%s %s" % (kind, name)]
    cfg = state.get("config", {})
    for key in keys(kind):
        if key in cfg:
            value = cfg[key]
            if isinstance(value, bool):
                value = "yes" if value else "no"
            elif isinstance(value, list):
                value = ", ".join(str(v) for v in value) if value else "(none)"
            elif value is None:
                value = "(none)"
            lines.append("  %s: %s" % (key, value))
    return "\n".join(lines) + "\n"
