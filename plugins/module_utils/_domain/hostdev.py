# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pass-through of host devices: the ``hostdevs`` list (``<hostdev mode='subsystem'>``).

One item passes one host device through, named by exactly one of

* ``pci``: a PCI function (``0000:03:00.1``, or ``03:00.1`` for domain 0000) through VFIO, managed by
  libvirt by default (libvirt binds it to vfio-pci while the guest runs and gives it back after);
* ``usb``: a USB device by ``vendor``/``product`` id, or by ``bus``/``device`` number;
* ``mdev``: a mediated device (a vGPU, an s390 subchannel or crypto queue) by its UUID.

A PCI device is refused unless its whole IOMMU group can be given to a guest (:meth:`HostdevGroup.check_host`):
the group is the unit of DMA isolation, so every *other* member must be bound to vfio-pci, pci-stub or no
driver, or be a PCI bridge, or be passed through to the same domain. The check reads sysfs below
``ctx.host.sysfs_root`` ("/"; a fixture tree in unit tests) with the same readers as ``host_info``
(:func:`_host.iommu_groups`, :func:`_host.pci_device`), and runs only when the libvirt connection is this
machine's QEMU/KVM; otherwise it is skipped with a warning, as it is for an item with ``iommu_check: false``
(a domain defined before its host has the hardware).
"""

from __future__ import annotations

import re

from .._host import PCI_FORM, SAFE_DRIVERS, iommu_groups, is_pci_bridge, parse_pci_address, pci_device
from .devices import DeviceGroup

try:
    from lxml import etree
except ImportError:  # pragma: no cover - reported by _libvirt.check_libraries
    etree = None

SOURCES = ("pci", "usb", "mdev")
MDEV_MODELS = ["vfio-pci", "vfio-ccw", "vfio-ap"]
#: drivers that leave an IOMMU group member harmless to the host while another member is in a guest
#: only these kinds are attached to / detached from a running guest (libvirt hot-plugs PCI and USB hostdevs)
HOTPLUG_TYPES = ("pci", "usb")

_USB_ID_RE = re.compile(r"^0x[0-9a-f]{4}$")
_USB_ADDR_RE = re.compile(r"^bus(\d+)\.device(\d+)$")
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

WITHOUT_CHECK = "; to define the domain before this host has the hardware, set iommu_check: false on the item"


def _number(text):
    """An XML number as libvirt reads it (0x.. hex, else decimal); None when missing or malformed."""
    if text is None:
        return None
    text = text.strip().lower()
    try:
        return int(text, 16) if text.startswith("0x") else int(text, 10)
    except ValueError:
        return None


def read_pci_address(address):
    """``<address domain= bus= slot= function=>`` -> ``0000:03:00.1``; None when malformed."""
    parts = [_number(address.get(k, "0")) for k in ("domain", "bus", "slot", "function")]
    return None if None in parts else "%04x:%02x:%02x.%x" % tuple(parts)


class HostdevGroup(DeviceGroup):
    """PCI (VFIO), USB and mediated host devices, keyed by their host-side source."""

    name = "hostdevs"
    option = "hostdevs"
    tag = "hostdev"
    hotplug = True
    item_spec = dict(
        pci=dict(type="str"),
        usb=dict(type="dict", options=dict(vendor=dict(type="str"), product=dict(type="str"),
                                           bus=dict(type="int"), device=dict(type="int"))),
        mdev=dict(type="str"),
        model=dict(type="str", choices=MDEV_MODELS),
        managed=dict(type="bool"),
        iommu_check=dict(type="bool"),
    )

    # ------------------------------------------------------------------ identity
    def item_key(self, item):
        """``0000:03:00.1``, ``usb:046d:c52b``, ``usb:bus1.device4``, ``mdev:<uuid>``."""
        if item["type"] == "pci":
            return item["source"]
        return "%s:%s" % (item["type"], item["source"])

    def hotpluggable(self, item):
        return (item or {}).get("type") in HOTPLUG_TYPES

    def needs_pci_slot(self, item):
        return (item or {}).get("type") != "usb"

    def elements(self, root):
        """Only the subsystem pass-through this group manages (SCSI hostdevs and others are left alone)."""
        return [e for e in super().elements(root) if e.get("mode", "subsystem") == "subsystem"
                and e.get("type") in SOURCES]

    # ------------------------------------------------------------------- desired
    def desired_item(self, item, index, ctx):
        where = "hostdevs[%d]" % index
        given = [k for k in SOURCES if item.get(k) is not None]
        if not given:
            raise ctx.error("a host device needs one of pci, usb or mdev", where,
                            fix="e.g. pci: '0000:03:00.1', usb: {vendor: '0x046d', product: '0xc52b'}, or mdev: UUID")
        if len(given) > 1:
            raise ctx.error("give only one of pci, usb, mdev (%s given)" % " and ".join(given),
                            "%s.%s" % (where, given[1]), fix="One item passes one device through; list one item each")
        kind = given[0]
        if item.get("model") is not None and kind != "mdev":
            raise ctx.error("model is only for mdev (the mediated device's VFIO API)", where + ".model")
        if item.get("iommu_check") is not None and kind != "pci":
            raise ctx.error("iommu_check is only for pci (USB and mediated devices have no IOMMU group of their own)",
                            where + ".iommu_check")
        if kind == "mdev":
            if item.get("managed") is not None:
                raise ctx.error("a mediated device is not bound by libvirt: managed is only for pci and usb",
                                where + ".managed")
            return self._desired_mdev(item, where, ctx)
        if kind == "pci":
            address = parse_pci_address(item["pci"])
            if address is None:
                raise ctx.error("%r is not a PCI address" % item["pci"], where + ".pci", fix="Use " + PCI_FORM)
            source = address
        else:
            source = self._usb_source(item["usb"], where + ".usb", ctx)
        return dict(type=kind, source=source, managed=item.get("managed") is not False)

    @staticmethod
    def _usb_source(usb, where, ctx):
        ids = [k for k in ("vendor", "product") if usb.get(k) is not None]
        place = [k for k in ("bus", "device") if usb.get(k) is not None]
        if ids and place:
            raise ctx.error("give vendor and product, or bus and device, not both", "%s.%s" % (where, place[0]),
                            fix="vendor/product finds the device on any port; bus/device changes when it is re-plugged")
        if ids:
            if len(ids) == 1:
                missing = "product" if ids[0] == "vendor" else "vendor"
                raise ctx.error("vendor and product go together", "%s.%s" % (where, missing))
            values = []
            for key in ("vendor", "product"):
                value = str(usb[key]).strip().lower()
                if not _USB_ID_RE.match(value):
                    hint = (" (an unquoted 0x%04x in YAML is the number %d: quote it)"
                            % (int(value), int(value)) if value.isdigit() and int(value) < 0x10000 else "")
                    raise ctx.error("%r is not a USB %s id%s" % (usb[key], key, hint), "%s.%s" % (where, key),
                                    fix="Use 0x and 4 hex digits, as `lsusb` shows them: ID 046d:c52b is vendor "
                                        "'0x046d', product '0xc52b'")
                values.append(value[2:])
            return "%s:%s" % tuple(values)
        if place:
            if len(place) == 1:
                missing = "device" if place[0] == "bus" else "bus"
                raise ctx.error("bus and device go together", "%s.%s" % (where, missing))
            if usb["bus"] < 1:
                raise ctx.error("USB bus numbers start at 1 (%d given)" % usb["bus"], where + ".bus",
                                fix="Use the numbers `lsusb` prints: Bus 001 Device 004 is bus 1, device 4")
            if not 1 <= usb["device"] <= 127:
                raise ctx.error("a USB device number is 1..127 (%d given)" % usb["device"], where + ".device",
                                fix="Use the numbers `lsusb` prints: Bus 001 Device 004 is bus 1, device 4")
            return "bus%d.device%d" % (usb["bus"], usb["device"])
        raise ctx.error("usb needs vendor and product, or bus and device", where,
                        fix="e.g. usb: {vendor: '0x046d', product: '0xc52b'}")

    @staticmethod
    def _desired_mdev(item, where, ctx):
        uuid = str(item["mdev"]).strip().lower()
        if not _UUID_RE.match(uuid):
            raise ctx.error("%r is not the UUID of a mediated device" % item["mdev"], where + ".mdev",
                            fix="Use the UUID the mdev was created with (ls /sys/bus/mdev/devices), e.g. "
                                "4b20d080-1b54-4048-85b3-a6a62d165c01")
        return dict(type="mdev", source=uuid, model=item.get("model") or "vfio-pci")

    # -------------------------------------------------------------- host checks
    def check_host(self, items, ctx):
        """The IOMMU group check of every PCI item, against the whole list (a group may be passed whole)."""
        listed = {item["source"] for _where, _raw, item in items if item["type"] == "pci"}
        for where, raw, item in items:
            if item["type"] != "pci":
                continue
            option = ctx.opt(where + ".pci")
            if raw.get("iommu_check") is False:
                ctx.host.warn("%s: iommu_check is false: %s was not checked against this host's IOMMU groups; "
                              "the domain is defined, but starts only where the device exists and its whole IOMMU "
                              "group can be assigned" % (option, item["source"]))
                continue
            if not getattr(ctx.host, "local_files", False):
                ctx.host.warn("%s: the IOMMU group check of %s was skipped: the libvirt URI %s is not this "
                              "machine's QEMU/KVM, so this machine's sysfs says nothing about that host"
                              % (option, item["source"], getattr(ctx.host, "uri", None)))
                continue
            self._check_iommu_group(item, where, listed, ctx)

    @staticmethod
    def _check_iommu_group(item, where, listed, ctx):
        root = getattr(ctx.host, "sysfs_root", None) or "/"
        address = item["source"]
        device = pci_device(root, address)
        if device is None:
            raise ctx.error("PCI device %s does not exist on this host (no /sys/bus/pci/devices/%s)"
                            % (address, address), where + ".pci",
                            fix="Check the address with `lspci -D`" + WITHOUT_CHECK)
        groups = iommu_groups(root)
        if not groups or device["iommu_group"] is None:
            why = ("the IOMMU is off on this host (no /sys/kernel/iommu_groups)" if not groups
                   else "the IOMMU does not cover it (no iommu_group in sysfs)")
            raise ctx.error("%s cannot be passed through with VFIO: %s" % (address, why), where + ".pci",
                            fix="Turn VT-d (Intel) or AMD-Vi (AMD) on in the firmware and boot the kernel with "
                                "intel_iommu=on (Intel) or amd_iommu=on (AMD)" + WITHOUT_CHECK)
        if is_pci_bridge(device):
            raise ctx.error("%s is a PCI bridge: VFIO passes endpoints through, not bridges" % address, where + ".pci",
                            fix="Pass the devices behind the bridge instead")
        if not item["managed"] and device["driver"] != "vfio-pci":
            raise ctx.error("with managed: false libvirt does not rebind %s, so it must already be bound to "
                            "vfio-pci; it is bound to %s" % (address, device["driver"] or "no driver"),
                            where + ".managed",
                            fix="Bind it (virtforge.libvirt.vfio_bind with addresses: [%s]), or use managed: true"
                                % address)
        group = device["iommu_group"]
        offending = []
        for member in groups.get(group, []):
            if member == address or member in listed:
                continue
            info = pci_device(root, member)
            if info is None:
                offending.append("%s (not a PCI device: its driver cannot be told)" % member)
            elif info["driver"] is not None and info["driver"] not in SAFE_DRIVERS and not is_pci_bridge(info):
                offending.append("%s (driver %s)" % (member, info["driver"]))
        if offending:
            raise ctx.error(
                "%s is in IOMMU group %s, which a guest can only be given whole, and other members of it are in use "
                "by the host: %s" % (address, group, ", ".join(offending)), where + ".pci",
                fix="Bind them to vfio-pci (virtforge.libvirt.vfio_bind with addresses: [%s]), or pass the whole "
                    "group to this domain (list every member in hostdevs); PCI bridges and members on pci-stub or "
                    "on no driver may stay" % offending[0].split(" ")[0])

    # ------------------------------------------------------------------ read / write
    def read_element(self, element, ctx):
        kind = element.get("type")
        out = dict(type=kind, source=None)
        if kind == "mdev":
            out["source"] = element.xpath("string(source/address/@uuid)").lower() or None
            out["model"] = element.get("model")
            return out
        out["managed"] = element.get("managed") == "yes"
        address = element.find("source/address")
        if kind == "pci" and address is not None:
            out["source"] = read_pci_address(address)
        elif kind == "usb":
            vendor, product = (_number(element.xpath("string(source/%s/@id)" % k) or None)
                               for k in ("vendor", "product"))
            if vendor is not None and product is not None:
                out["source"] = "%04x:%04x" % (vendor, product)
            elif address is not None and _number(address.get("bus")) is not None:
                out["source"] = "bus%d.device%d" % (_number(address.get("bus")), _number(address.get("device")) or 0)
        return out

    def write_item(self, root, element, item, ctx):
        if element is None:
            element = self.new_element(root, dict(mode="subsystem", type=item["type"]))
            if item["type"] == "pci":
                etree.SubElement(element, "driver", name="vfio")
            self._write_source(etree.SubElement(element, "source"), item)
        if item["type"] == "mdev":
            element.set("model", item["model"])
        else:
            element.set("managed", "yes" if item["managed"] else "no")
        return element

    @staticmethod
    def _write_source(source, item):
        if item["type"] == "pci":
            domain, bus, rest = item["source"].split(":")
            slot, function = rest.split(".")
            etree.SubElement(source, "address", domain="0x" + domain, bus="0x" + bus, slot="0x" + slot,
                             function="0x" + function)
        elif item["type"] == "mdev":
            etree.SubElement(source, "address", uuid=item["source"])
        else:
            match = _USB_ADDR_RE.match(item["source"])
            if match:
                etree.SubElement(source, "address", bus=match.group(1), device=match.group(2))
            else:
                vendor, product = item["source"].split(":")
                etree.SubElement(source, "vendor", id="0x" + vendor)
                etree.SubElement(source, "product", id="0x" + product)
