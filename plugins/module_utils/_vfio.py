# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Binding host PCI devices to vfio-pci, now and at every boot.

One run: resolve the devices asked for (PCI addresses, vendor:device ids), read each from sysfs, refuse
what must not be taken from the host (a bridge, a NIC or disk the host uses, a device whose IOMMU group
other host drivers share), plan, and - outside check mode - apply:

* now: ``driver_override`` = vfio-pci, unbind from the current driver, ``drivers_probe``; read back;
* at boot: one udev rules file (``RULES_FILE``) with a line per address or id. On the device's ``add``
  event the line sets the override, unbinds whatever driver took the device first (the initramfs may
  have loaded it) and probes again, then loads vfio-pci. The kernel binds by override, so two identical
  NICs can go one to the host and one to vfio-pci, which ``vfio-pci.ids=`` cannot do.

Unbinding (state absent) reverses both: the override is cleared and the host's driver probes the device.
Every path is read relative to ``root`` so unit tests run on fake sysfs trees.
"""

from __future__ import annotations

import glob
import os
import re

from ._errors import VirtforgeError
from ._host import PCI_FORM, SAFE_DRIVERS, _link_name, _path, is_pci_bridge, parse_pci_address, read_text
from ._image.common import atomic_write_text

VFIO_DRIVER = "vfio-pci"
RULES_FILE = "/etc/udev/rules.d/85-virtforge-vfio.rules"
RULES_HEADER = ("# Managed by virtforge.libvirt vfio_bind: PCI devices bound to vfio-pci at boot.\n"
                "# One line per device (by address) or per vendor:device id; changes here are overwritten.\n")
_ID_RE = re.compile(r"^([0-9a-f]{4}):([0-9a-f]{4})$")
_RULE_ADDRESS_RE = re.compile(r'KERNEL=="([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7])"')
_RULE_ID_RE = re.compile(r'ATTR\{vendor\}=="0x([0-9a-f]{4})", ATTR\{device\}=="0x([0-9a-f]{4})"')
#: what the udev line does once it matched (unbind: the driver that took the device first lets it go)
_RULE_ACTIONS = ('ATTR{driver_override}="vfio-pci", ATTR{driver/unbind}="$kernel", '
                 'ATTR{subsystem/drivers_probe}="$kernel", RUN{builtin}+="kmod load vfio-pci"')
IFF_UP = 0x1


def parse_id(text):
    """``8086:10D3`` -> ``8086:10d3``; None when malformed."""
    match = _ID_RE.match(str(text).strip().lower())
    return "%s:%s" % match.groups() if match else None


def rule_line(address=None, pci_id=None):
    if address:
        match = 'ACTION=="add", SUBSYSTEM=="pci", KERNEL=="%s", ' % address
    else:
        vendor, device = pci_id.split(":")
        match = 'ACTION=="add", SUBSYSTEM=="pci", ATTR{vendor}=="0x%s", ATTR{device}=="0x%s", ' % (vendor, device)
    return match + _RULE_ACTIONS


def render_rules(addresses, ids):
    lines = [rule_line(address=a) for a in sorted(addresses)] + [rule_line(pci_id=i) for i in sorted(ids)]
    return RULES_HEADER + "".join(line + "\n" for line in lines) if lines else ""


def parse_rules(text):
    """(addresses, ids) the rules file binds; lines it did not write are ignored."""
    addresses, ids = set(), set()
    for line in (text or "").splitlines():
        if line.startswith("#") or _RULE_ACTIONS not in line:
            continue
        match = _RULE_ADDRESS_RE.search(line)
        if match:
            addresses.add(match.group(1))
            continue
        match = _RULE_ID_RE.search(line)
        if match:
            ids.add("%s:%s" % match.groups())
    return addresses, ids


class Sysfs(object):
    """The PCI, net and block views of sysfs under ``root``, and the writes that rebind a device."""

    def __init__(self, root="/"):
        self.root = root

    def path(self, rel):
        return _path(self.root, rel)

    def addresses(self):
        return sorted(os.path.basename(p) for p in glob.glob(self.path("/sys/bus/pci/devices/*")))

    def device(self, address):
        rel = "/sys/bus/pci/devices/%s" % address
        if not os.path.isdir(self.path(rel)):
            return None

        def hex_attr(name):
            text = read_text(self.root, "%s/%s" % (rel, name))
            try:
                return int(text, 16) if text else None
            except ValueError:
                return None

        vendor, device, klass = hex_attr("vendor"), hex_attr("device"), hex_attr("class")
        override = read_text(self.root, rel + "/driver_override")
        group = _link_name(self.root, rel + "/iommu_group")
        members = sorted(os.listdir(self.path("/sys/kernel/iommu_groups/%s/devices" % group))) \
            if group is not None and os.path.isdir(self.path("/sys/kernel/iommu_groups/%s/devices" % group)) else []
        return dict(address=address,
                    id="%04x:%04x" % (vendor, device) if vendor is not None and device is not None else None,
                    class_code=klass, driver=_link_name(self.root, rel + "/driver"),
                    driver_override=None if override in (None, "", "(null)") else override,
                    iommu_group=group, group_devices=members,
                    interfaces=self._below(rel, "net"), block_devices=self._below(rel, "block"))

    def _below(self, rel, klass):
        """Names in /sys/class/<klass> whose device lives below the PCI device ``rel`` (a virtio NIC is
        below virtioN/net, a SCSI disk below hostN/target.../block, an NVMe namespace below nvme/nvmeN).
        The class links are resolved one by one: sysfs has link cycles no recursive walk may follow."""
        top = os.path.realpath(self.path(rel)) + os.sep
        out = []
        for link in glob.glob(self.path("/sys/class/%s/*" % klass)):
            if os.path.realpath(link).startswith(top):
                out.append(os.path.basename(link))
        return sorted(out)

    def interface_in_use(self, name):
        """Why the host uses NIC ``name`` (administratively up, a port of a bond or bridge), or None."""
        rel = "/sys/class/net/%s" % name
        master = _link_name(self.root, rel + "/master")
        if master:
            return "%s is a port of %s" % (name, master)
        try:
            flags = int(read_text(self.root, rel + "/flags") or "0", 16)
        except ValueError:
            flags = 0
        if flags & IFF_UP:
            return "%s is up" % name
        return None

    def block_in_use(self, name):
        """Why the host uses disk ``name`` or one of its partitions (mounted, swap, held by LVM/md/dm)."""
        parts = [name] + sorted(os.path.basename(os.path.dirname(p))
                                for p in glob.glob(self.path("/sys/block/%s/*/partition" % name)))
        mounts = read_text(self.root, "/proc/mounts") or ""
        swaps = read_text(self.root, "/proc/swaps") or ""
        for part in parts:
            node = "/dev/" + part
            if any(line.split()[:1] == [node] for line in mounts.splitlines()):
                return "%s is mounted" % node
            if any(line.split()[:1] == [node] for line in swaps.splitlines()):
                return "%s is swap" % node
            holders = glob.glob(self.path("/sys/class/block/%s/holders/*" % part))
            if holders:
                return "%s is held by %s" % (node, ", ".join(sorted(os.path.basename(h) for h in holders)))
        return None

    def iommu_enabled(self):
        return bool(glob.glob(self.path("/sys/kernel/iommu_groups/*")))

    def vfio_loaded(self):
        return os.path.isdir(self.path("/sys/bus/pci/drivers/%s" % VFIO_DRIVER))

    def write(self, rel, value):
        with open(self.path(rel), "w") as handle:
            handle.write(value)

    def bind(self, address, driver):
        """Override, unbind from the current driver, probe; the override decides which driver takes it."""
        rel = "/sys/bus/pci/devices/%s" % address
        self.write(rel + "/driver_override", driver)
        if _link_name(self.root, rel + "/driver") is not None:
            self.write(rel + "/driver/unbind", address)
        self.write("/sys/bus/pci/drivers_probe", address)

    def release(self, address):
        """Clear the override, unbind from vfio-pci, probe: the host's own driver takes the device back."""
        rel = "/sys/bus/pci/devices/%s" % address
        self.write(rel + "/driver_override", "\n")
        if _link_name(self.root, rel + "/driver") is not None:
            self.write(rel + "/driver/unbind", address)
        self.write("/sys/bus/pci/drivers_probe", address)


def _requested(params):
    addresses, ids = [], []
    for index, text in enumerate(params.get("addresses") or []):
        address = parse_pci_address(text)
        if address is None:
            raise VirtforgeError("%r is not a PCI address" % (text,), "addresses[%d]" % index, fix="Use " + PCI_FORM)
        addresses.append(address)
    for index, text in enumerate(params.get("ids") or []):
        pci_id = parse_id(text)
        if pci_id is None:
            raise VirtforgeError("%r is not a vendor:device id" % (text,), "ids[%d]" % index,
                                 fix="Use four hex digits each, as `lspci -nn` prints them in brackets, "
                                     "e.g. 8086:10d3")
        ids.append(pci_id)
    if not addresses and not ids:
        raise VirtforgeError("no device given", "addresses", fix="Give addresses, ids or both")
    return sorted(set(addresses)), sorted(set(ids))


def _refusals(sysfs, info, wanted, force, devices):
    """Reasons ``info`` must not be taken from the host (empty: it may); ``devices``: every PCI device, read once."""
    address = info["address"]
    if is_pci_bridge(info) or (info["class_code"] is not None and info["class_code"] >> 16 == 0x06):
        return ["%s is a bridge (class 0x%06x): VFIO passes endpoints, not bridges; give the devices behind it"
                % (address, info["class_code"])]
    out = []
    whys = []
    for disk in info["block_devices"]:  # disks and their partitions: one reason once
        why = sysfs.block_in_use(disk)
        if why and why not in whys:
            whys.append(why)
    for why in whys:
        out.append("%s holds a disk the host uses: %s (force does not override this; stop using it first)"
                   % (address, why))
    if not force:
        for nic in info["interfaces"]:
            why = sysfs.interface_in_use(nic)
            if why:
                out.append("%s is a NIC the host uses: %s (take it down, or set force: true to cut it)"
                           % (address, why))
    others = []
    for member in info["group_devices"]:
        if member == address or member in wanted:
            continue
        other = devices.get(member)
        if other is None or is_pci_bridge(other) or other["driver"] in SAFE_DRIVERS + (None,):
            continue
        others.append("%s (driver %s)" % (member, other["driver"]))
    if others:
        out.append("%s is in IOMMU group %s with devices the host still drives: %s; a guest gets a whole group, "
                   "so list them too" % (address, info["iommu_group"], ", ".join(others)))
    return out


def plan(params, root="/"):
    """What to do: {devices: [...], rules: {path, before, after}, errors: [...]}; nothing is written."""
    sysfs = Sysfs(root)
    addresses, ids = _requested(params)
    present = params.get("state", "present") == "present"
    runtime = params.get("runtime", True)
    persistent = params.get("persistent", True)
    all_devices = {a: sysfs.device(a) for a in sysfs.addresses()}
    targets = []
    for index, address in enumerate(addresses):
        if address not in all_devices:
            if present and runtime:
                raise VirtforgeError("no PCI device %s on this host" % address, "addresses[%d]" % index,
                                     fix="Check the address with `lspci -D`, or set runtime: false to write "
                                         "only the boot-time binding")
            continue
        targets.append(address)
    for index, pci_id in enumerate(ids):
        matches = [a for a, d in all_devices.items() if d and d["id"] == pci_id]
        if not matches and present and runtime:
            raise VirtforgeError("no PCI device with id %s on this host" % pci_id, "ids[%d]" % index,
                                 fix="Check the id with `lspci -nn`, or set runtime: false to write only the "
                                     "boot-time binding")
        targets.extend(matches)
    targets = sorted(set(targets))

    devices, errors = [], []
    if runtime and present and targets and not sysfs.iommu_enabled():
        raise VirtforgeError(
            "the IOMMU is off on this host (no /sys/kernel/iommu_groups): vfio-pci cannot take a device",
            "runtime", fix="Turn VT-d/AMD-Vi on in the firmware and boot with the IOMMU on (virtforge.libvirt."
                           "kernel_args with intel_iommu=on iommu=pt, or host_build_iommu_kernel_args), or set "
                           "runtime: false to write only the boot-time binding")
    for address in targets:
        info = all_devices[address]
        bound = info["driver"] == VFIO_DRIVER
        if present:
            action = None if bound or not runtime else "bind"
            if action:
                errors.extend(_refusals(sysfs, info, targets, params.get("force", False), all_devices))
        else:
            action = "release" if runtime and (bound or info["driver_override"] == VFIO_DRIVER) else None
        devices.append(dict(info, driver_before=info["driver"], action=action,
                            vfio_device=("/dev/vfio/%s" % info["iommu_group"]) if info["iommu_group"] else None))

    rules_path = params.get("rules_file") or RULES_FILE
    before_text = read_text(root, rules_path)
    before_text = "" if before_text is None else before_text + "\n"
    have_addresses, have_ids = parse_rules(before_text)
    if persistent:
        want_addresses = have_addresses | set(addresses) if present else have_addresses - set(addresses)
        want_ids = have_ids | set(ids) if present else have_ids - set(ids)
    else:
        want_addresses, want_ids = have_addresses, have_ids
    if (want_addresses, want_ids) == (have_addresses, have_ids):
        after_text = before_text
    else:
        after_text = render_rules(want_addresses, want_ids)
    return dict(devices=devices, errors=errors,
                rules=dict(path=rules_path, before=before_text, after=after_text,
                           changed=after_text != before_text))


def _release_quietly(sysfs, address):
    try:
        sysfs.release(address)
    except OSError:
        pass


def apply(result, runner, root="/"):
    """Carry out ``plan``'s result: the rules file first (a crash later still binds at boot), then sysfs."""
    sysfs = Sysfs(root)
    rules = result["rules"]
    if rules["changed"]:
        path = _path(root, rules["path"])
        if rules["after"]:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            atomic_write_text(path, rules["after"], 0o644)
        elif os.path.exists(path):
            os.unlink(path)
    work = [d for d in result["devices"] if d["action"]]
    if any(d["action"] == "bind" for d in work) and not sysfs.vfio_loaded():
        runner.run([runner.which("modprobe"), VFIO_DRIVER], what="modprobe vfio-pci")
    for device in work:
        address = device["address"]
        try:
            if device["action"] == "bind":
                sysfs.bind(address, VFIO_DRIVER)
            else:
                sysfs.release(address)
        except OSError as exc:
            if device["action"] == "bind":
                _release_quietly(sysfs, address)
            raise VirtforgeError("%s: writing sysfs failed: %s" % (address, exc), "addresses",
                                 fix="See the kernel log (dmesg) for the driver's reason") from exc
        after = sysfs.device(address)
        device["driver"] = after["driver"] if after else None
        if device["action"] == "bind" and device["driver"] != VFIO_DRIVER:
            _release_quietly(sysfs, address)  # not half-done: the host's driver gets it back
            raise VirtforgeError("%s did not bind to vfio-pci (driver now %s)" % (address, device["driver"]),
                                 "addresses", fix="See the kernel log (dmesg): vfio-pci refuses devices outside "
                                                  "an IOMMU group")
    udevadm = runner.which("udevadm", required=False) if rules["changed"] else None
    if udevadm:
        runner.run([udevadm, "control", "--reload"], check=False)
    return result
