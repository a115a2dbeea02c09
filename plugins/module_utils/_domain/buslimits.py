# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Free PCI slots of a running domain, checked before devices are hot-plugged into it.

A hot-plugged PCI device needs a free slot the running guest already has: on a q35 machine a free
PCIe root port (libvirt cannot add root ports to a running guest), on i440fx a free slot of the
root bus; PCI bridges add slots on both. Without the check libvirt answers "No more available PCI
slots" after part of a batch is attached; with it, nothing is changed and the error says how to
make room.
"""

from __future__ import annotations

from .._errors import VirtforgeError

ROOT_SLOTS = 32  # slot 0 is the host bridge
BRIDGE_SLOTS = range(1, 32)


def _bus(address):
    return int(address.get("bus", "0"), 16)


def free_pci_slots(root):
    """(free slots for hot-plugged devices, machine kind) of a live domain XML; None when it does not say.

    QEMU's live XML names every PCI controller and address; other drivers (and libvirt's test driver) do
    not, and then nothing is checked.
    """
    machine = root.xpath("string(os/type/@machine)")
    controllers = {}
    for ctl in root.iterfind("devices/controller[@type='pci']"):
        controllers[int(ctl.get("index", "0"))] = ctl.get("model")
    used = {}  # bus -> set of slots
    for address in root.iterfind("devices/*/address[@type='pci']"):
        used.setdefault(_bus(address), set()).add(int(address.get("slot", "0"), 16))
    if not controllers:
        return None, None
    free = 0
    q35 = "q35" in machine or controllers.get(0) == "pcie-root"
    for index, model in controllers.items():
        taken = used.get(index, set())
        if model in ("pcie-root-port", "pcie-switch-downstream-port"):
            free += 0 if taken else 1
        elif model in ("pci-bridge", "pcie-to-pci-bridge"):
            free += len([s for s in BRIDGE_SLOTS if s not in taken])
        elif model == "pci-root" and not q35:
            free += ROOT_SLOTS - len(taken | {0})
    return free, "q35" if q35 else "i440fx"


def check_hotplug_slots(changes, groups, live_root):
    """Refuse a plan that hot-plugs more PCI devices than the running domain has free slots for."""
    adding = [c for c in changes if c.action == "add" and c.live
              and getattr(groups.get(c.group), "needs_pci_slot", lambda item: False)(c.after)]
    if not adding:
        return
    free, kind = free_pci_slots(live_root)
    if free is None or len(adding) <= free:
        return
    where = "PCIe root port(s)" if kind == "q35" else "PCI slot(s)"
    top = max(int(c.get("index", "0")) for c in live_root.iterfind("devices/controller[@type='pci']"))
    fix = ("Give the domain spare root ports - controllers: [{type: pci, index: %d, model: pcie-root-port}] gives "
           "%d more, as libvirt fills the indexes below with root ports (they take effect at the next start) - "
           "or add the device with target: config and restart" % (top + len(adding) - free, len(adding) - free)
           if kind == "q35" else
           "Add a PCI bridge (controllers: [{type: pci, index: 1, model: pci-bridge}], at the next start), or add "
           "the device with target: config and restart")
    raise VirtforgeError("the running domain has %d free %s for hot-plugged devices, and this task adds %d PCI "
                         "device(s); nothing was changed" % (free, where, len(adding)),
                         option=adding[free].path, fix=fix)
