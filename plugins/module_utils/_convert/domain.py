# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Defining a converted guest through the domain engine (the ``domain`` module's manager).

virt-v2v's own XML is the base document (machine type, features, video, RNG...) with what this
host cannot or should not take removed: the domain type (the engine picks ``kvm`` or ``qemu`` from
the host), ``<vsock>`` where the host has no vhost-vsock, SDL graphics (a window on the host's own
desktop, which a libvirt host does not have; virt-v2v writes it for ``-i disk``) replaced by VNC on
the loopback address, and the disks and NICs, which the engine writes from options (converted paths,
network_map, MACs).
"""

from __future__ import annotations

import os

from .._domain.manager import DomainManager
from .._domain.spec import LIFECYCLE_DEFAULTS, module_argument_spec
from .._engine import parse_xml

try:
    from lxml import etree
except ImportError:  # pragma: no cover - reported by _libvirt.check_libraries
    etree = None


class _DomainModule(object):
    """What DomainManager needs of an AnsibleModule, with the domain's own parameters."""

    def __init__(self, module, params):
        self._module = module
        self.params = params
        self.check_mode = module.check_mode
        self._diff = False

    def warn(self, msg):
        self._module.warn(msg)

    def log(self, msg, *args, **kwargs):
        self._module.log(msg)


def base_params(uri):
    params = {k: None for k in module_argument_spec()}
    params.update(LIFECYCLE_DEFAULTS)
    params["uri"] = uri
    return params


def fit_xml(text, vsock_device="/dev/vhost-vsock"):
    """virt-v2v's domain XML fitted to this host; returns (xml, removed, nics, disks) where nics and
    disks are what virt-v2v described (the engine writes them back from options)."""
    root = parse_xml(text)
    removed = []
    if root.get("type"):
        removed.append("domain type %r (the host decides)" % root.get("type"))
        del root.attrib["type"]
    devices = root.find("devices")
    nics, disks = [], []
    if devices is not None:
        for vsock in devices.findall("vsock"):
            if not os.path.exists(vsock_device):
                devices.remove(vsock)
                removed.append("<vsock> (no %s on this host)" % vsock_device)
        for graphics in devices.findall("graphics[@type='sdl']"):
            vnc = etree.Element("graphics", type="vnc", autoport="yes", listen="127.0.0.1")
            etree.SubElement(vnc, "listen", type="address", address="127.0.0.1")
            graphics.addprevious(vnc)
            devices.remove(graphics)
            removed.append("<graphics type='sdl'> (needs a desktop on the host): VNC on 127.0.0.1 instead")
        for nic in devices.findall("interface"):
            mac = nic.find("mac")
            source = nic.find("source")
            model = nic.find("model")
            nics.append(dict(
                type=nic.get("type"),
                source=(source.get("network") or source.get("bridge")) if source is not None else None,
                mac=mac.get("address").lower() if mac is not None and mac.get("address") else None,
                model=model.get("type") if model is not None else None))
            devices.remove(nic)
        for disk in devices.findall("disk"):
            if disk.get("device", "disk") != "disk":
                continue
            target = disk.find("target")
            disks.append(dict(dev=target.get("dev") if target is not None else None,
                              bus=target.get("bus") if target is not None else None))
            devices.remove(disk)
    return etree.tostring(root, encoding="unicode"), removed, nics, disks


def define(module, params):
    """Plan (and unless check mode, apply) the domain; returns the domain module's result."""
    return DomainManager(_DomainModule(module, params)).run()
