# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Device option groups: keyed lists of <devices> children on :class:`_engine.ListGroup`.

A device kind is one :class:`DeviceGroup` subclass: its item options (``item_spec``), how
one item becomes canonical (``desired_item``), how one element reads (``read_element``) and
writes (``write_item``), and whether it can be hot-plugged. The ``domain`` module uses the
groups on a list of items; a ``domain_device`` module can use the same group on one item.
Adding a device kind (controllers, rng, tpm, watchdog...) means adding one class here (or in a
module of its own, as hostdev.py does for pass-through) and listing it in spec.DomainSpec.groups
and in device.KINDS.
"""

from __future__ import annotations

import hashlib
import os
import re

from .._engine import ListGroup, path_element, remove, set_text
from .._errors import VirtforgeError
from .._libvirt import libvirt
from . import appqos

try:
    from lxml import etree
except ImportError:  # pragma: no cover - reported by _libvirt.check_libraries
    etree = None

AFFECT_LIVE = 1  # libvirt.VIR_DOMAIN_AFFECT_LIVE


def _devices(root):
    return path_element(root, "devices", create=True)


class DeviceGroup(ListGroup):
    """A list of one kind of device under <devices>, keyed by :meth:`item_key`."""

    #: element tag under <devices>
    tag = None
    #: the option holding the list (``disks``) and its item options
    option = None
    item_spec = {}

    @property
    def argument_spec(self):  # noqa: D401 - the engine reads it as an attribute
        return {
            self.option: dict(type="list", elements="dict", options=self.item_spec),
            "purge_%s" % self.option: dict(type="bool"),
        }

    def desired(self, params, ctx):
        items = self.desired_items(params, ctx)
        if items is None:
            return {}
        return dict(items=items, purge=bool(params.get("purge_%s" % self.option)))

    def desired_items(self, params, ctx):
        raw = params.get(self.option)
        if raw is None:
            return None
        items = [self.desired_item(dict(item), i, ctx) for i, item in enumerate(raw)]
        items = self.finish_items(items, raw, ctx)
        seen = set()
        for i, item in enumerate(items):
            key = self.item_key(item)
            if key in seen:
                raise ctx.error("%r is listed twice" % key, "%s[%d]" % (self.option, i))
            seen.add(key)
        self.check_host([("%s[%d]" % (self.option, i), raw[i], item) for i, item in enumerate(items)], ctx)
        return items

    def desired_item(self, item, index, ctx):
        raise NotImplementedError

    def finish_items(self, items, raw, ctx):
        """Fill in what depends on the whole list (e.g. automatic target names)."""
        return items

    def check_host(self, items, ctx):
        """Checks of the whole list against the host (hostdev: IOMMU groups); nothing by default.

        ``items`` are ``(where, raw item, canonical item)``, ``where`` the option naming the item
        (``hostdevs[0]`` here, ``devices[3]`` in ``domain_device``, which calls this hook too).
        """

    def elements(self, root):
        devices = root.find("devices")
        return [] if devices is None else devices.findall(self.tag)

    def read_element(self, element, ctx):
        raise NotImplementedError

    def read_items(self, root, ctx):
        return [self.read_element(e, ctx) for e in self.elements(root)]

    def find_element(self, root, key, ctx):
        for element in self.elements(root):
            if self.item_key(self.read_element(element, ctx)) == key:
                return element
        return None

    def new_element(self, root, attrs):
        """A new element placed after the last one of its kind (libvirt keeps device order)."""
        devices = _devices(root)
        existing = devices.findall(self.tag)
        element = etree.Element(self.tag, attrs)
        if existing:
            existing[-1].addnext(element)
        else:
            devices.append(element)
        return element

    def hotpluggable(self, item):
        return self.hotplug

    def needs_pci_slot(self, item):
        """Whether the device sits in a PCI slot of its own (what a hot-plug needs a free one for)."""
        return True

    def compare(self, desired, current, ctx):
        changes = super().compare(desired, current, ctx)
        if ctx.get("running"):
            for change in changes:
                if change.action in ("add", "remove"):
                    change.live = self.hotpluggable(change.after or change.before)
        return changes

    def apply_live(self, target, changes, desired, ctx):
        for change in changes:
            if change.action == "add":
                element = self.find_element(ctx["plan_after_root"], change.key, ctx)
                target.attachDeviceFlags(etree.tostring(element, encoding="unicode"), AFFECT_LIVE)
            elif change.action == "remove":
                element = self.find_element(ctx["plan_before_root"], change.key, ctx)
                target.detachDeviceFlags(etree.tostring(element, encoding="unicode"), AFFECT_LIVE)
            else:  # pragma: no cover - compare marks updates live only for live_fields
                element = self.find_element(ctx["plan_after_root"], change.key, ctx)
                target.updateDeviceFlags(etree.tostring(element, encoding="unicode"), AFFECT_LIVE)


IOTUNE_BASE = ("total_bytes_sec", "read_bytes_sec", "write_bytes_sec",
               "total_iops_sec", "read_iops_sec", "write_iops_sec")
IOTUNE_KEYS = IOTUNE_BASE + tuple(k + "_max" for k in IOTUNE_BASE)


def canonical_iotune(raw, where, ctx):
    """{key: int > 0}; total and read/write of the same unit exclude each other; a _max needs its base."""
    if raw is None:
        return None
    out = {}
    for key in IOTUNE_KEYS:
        value = raw.get(key)
        if value is None:
            continue
        if value <= 0:
            raise ctx.error("must be greater than 0 (%d given); leave it out for no limit" % value,
                            "%s.iotune.%s" % (where, key))
        out[key] = value
    for unit in ("bytes_sec", "iops_sec"):
        if "total_" + unit in out:
            for side in ("read_", "write_"):
                if side + unit in out:
                    raise ctx.error("total_%s and %s%s cannot both be set" % (unit, side, unit),
                                    "%s.iotune.%s%s" % (where, side, unit),
                                    fix="Limit the total, or reads and writes separately")
    for key in IOTUNE_BASE:
        top = out.get(key + "_max")
        if top is None:
            continue
        if key not in out:
            raise ctx.error("%s_max (a burst) needs %s" % (key, key), "%s.iotune.%s_max" % (where, key))
        if top < out[key]:
            raise ctx.error("the burst %d is below the sustained %s %d" % (top, key, out[key]),
                            "%s.iotune.%s_max" % (where, key))
    return out


BUS_LIMITS = dict(ide=4, sata=6)


def _lib_version(ctx):
    """libvirt's version on the connection (0 without one, e.g. in unit tests)."""
    conn = getattr(ctx.host, "conn", None)
    if conn is None:
        return 0
    try:
        return conn.getLibVersion()
    except Exception:  # pylint: disable=broad-except  # pragma: no cover - drivers without it
        return 0


def _version_text(number):
    return "%d.%d.%d" % (number // 1000000, number // 1000 % 1000, number % 1000)


_DEV_PREFIX = dict(virtio="vd", sata="sd", scsi="sd", usb="sd", ide="hd")
_HOTPLUG_BUSES = ("virtio", "scsi", "usb")


def _dev_name(prefix, index):
    """vda..vdz, vdaa..: the names libvirt and the kernel use."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(ord("a") + rem) + letters
    return prefix + letters


_SERIAL_RE = re.compile(r"^[A-Za-z0-9_.+ -]{1,36}$")


def canonical_wwn(text):
    """16 hexadecimal digits in lower case (an optional 0x dropped); None when ``text`` is not a WWN."""
    text = str(text).strip().lower()
    if text.startswith("0x"):
        text = text[2:]
    return text if re.match(r"^[0-9a-f]{16}$", text) else None


def detect_format(path):
    """qcow2 when the file says so, raw otherwise (never probe what we cannot read)."""
    try:
        with open(path, "rb") as handle:
            return "qcow2" if handle.read(4) == b"QFI\xfb" else "raw"
    except OSError:
        return "qcow2" if path.endswith(".qcow2") else "raw"


class DiskGroup(DeviceGroup):
    """Disks and CD-ROMs keyed by target dev (vda, sdb...); auto-named per bus when omitted."""

    name = "disks"
    option = "disks"
    tag = "disk"
    item_spec = dict(
        dev=dict(type="str"),
        path=dict(type="path"),
        pool=dict(type="str"),
        volume=dict(type="str"),
        format=dict(type="str", choices=["qcow2", "raw"]),
        bus=dict(type="str", choices=["virtio", "sata", "scsi", "ide", "usb"]),
        device=dict(type="str", choices=["disk", "cdrom", "lun"]),
        sgio=dict(type="str", choices=["filtered", "unfiltered"]),
        reservations=dict(type="bool"),
        readonly=dict(type="bool"),
        cache=dict(type="str", choices=["default", "none", "writethrough", "writeback", "directsync", "unsafe"]),
        io=dict(type="str", choices=["native", "threads", "io_uring"]),
        discard=dict(type="str", choices=["unmap", "ignore"]),
        iotune=dict(type="dict", options={k: dict(type="int") for k in IOTUNE_KEYS}),
        serial=dict(type="str"),
        wwn=dict(type="str"),
        shareable=dict(type="bool"),
    )
    live_fields = frozenset(["iotune"])

    def item_key(self, item):
        return item["dev"]

    def apply_live(self, target, changes, desired, ctx):
        """iotune changes with virDomainSetBlockIoTune; the rest as any device (attach/detach)."""
        rest = []
        for change in changes:
            if change.action == "update" and set(change.after) <= {"iotune"}:
                want = change.after["iotune"]
                target.setBlockIoTune(change.key, {k: int(want.get(k, 0)) for k in IOTUNE_KEYS}, AFFECT_LIVE)
            else:
                rest.append(change)
        if rest:
            super().apply_live(target, rest, desired, ctx)

    def needs_pci_slot(self, item):
        return (item or {}).get("bus") == "virtio"  # SCSI, SATA, IDE and USB disks hang off a controller

    def hotpluggable(self, item):
        return (item or {}).get("bus") in _HOTPLUG_BUSES

    def desired_item(self, item, index, ctx):
        where = "disks[%d]" % index
        device = item.get("device") or "disk"
        bus = item.get("bus") or dict(cdrom="sata", lun="scsi").get(device, "virtio")
        out = dict(dev=item.get("dev"), device=device, bus=bus, path=None, format=item.get("format"),
                   readonly=item.get("readonly"), cache=item.get("cache"),
                   io=item.get("io"), discard=item.get("discard"),
                   iotune=canonical_iotune(item.get("iotune"), where, ctx))
        if out["dev"] is not None and not re.match(r"^[a-z]{2,3}[a-z]+$", out["dev"]):
            raise ctx.error("%r is not a disk target name" % out["dev"], where + ".dev", fix="Use e.g. vda, sdb, hdc")
        if item.get("path") and (item.get("pool") or item.get("volume")):
            raise ctx.error("give either path, or pool and volume", where + ".path")
        if item.get("volume") or item.get("pool"):
            if not (item.get("volume") and item.get("pool")):
                raise ctx.error("volume and pool go together", where + (".pool" if item.get("volume") else ".volume"))
            out["path"] = ctx.host.volume_path(item["pool"], item["volume"], ctx.opt(where))
            if out["format"] is None:
                ctx.host.format_hints[out["path"]] = ctx.host.volume_format(item["pool"], item["volume"])
        elif item.get("path"):
            path = item["path"]
            if not os.path.isabs(path):
                raise ctx.error("%r is not an absolute path" % path, where + ".path")
            if "\n" in path or "\x00" in path:
                raise ctx.error("contains a control character", where + ".path")
            if ctx.host.local_files and device == "disk" and not os.path.exists(path):
                raise ctx.error("%s does not exist" % path, where + ".path",
                                fix="Create the image first (virtforge.libvirt.volume or qemu-img)")
            out["path"] = path
        elif device == "disk":
            raise ctx.error("a disk needs a path, or a pool and a volume", where + ".path")
        self._check_lun(item, out, where, ctx)
        self._check_identity(item, out, where, ctx)
        return out

    @staticmethod
    def _check_identity(item, out, where, ctx):
        """serial, WWN and shareable: what a guest sees of a disk's identity (multipath groups paths by WWN)."""
        serial = item.get("serial")
        if serial is not None and not _SERIAL_RE.match(serial):
            raise ctx.error("%r is not a disk serial (1-36 of letters, digits, space and _ . + -)" % serial,
                            where + ".serial")
        wwn = item.get("wwn")
        if wwn is not None:
            wwn = canonical_wwn(wwn)
            if wwn is None:
                raise ctx.error("%r is not a WWN (16 hexadecimal digits, e.g. 5000c50015ea71ac)" % item["wwn"],
                                where + ".wwn")
            if out["bus"] not in ("scsi", "ide"):
                raise ctx.error("a WWN is only for disks on the scsi or ide bus, not %s" % out["bus"], where + ".wwn",
                                fix="Use bus: scsi (e.g. paths to one LUN for multipath)")
        shareable = item.get("shareable")
        if shareable:
            fmt = out["format"] or (detect_format(out["path"]) if out["path"] and ctx.host.local_files else None)
            if fmt == "qcow2":
                raise ctx.error("a shareable disk must be raw: qcow2 metadata is not safe with two writers",
                                where + ".shareable", fix="Use a raw volume (format: raw)")
            if out["device"] == "cdrom":
                raise ctx.error("a CD-ROM is read-only; shareable is for disks and LUNs", where + ".shareable")
        out.update(serial=serial, wwn=wwn, shareable=shareable)

    @staticmethod
    def _check_lun(item, out, where, ctx):
        """SCSI LUN pass-through: a raw host block device on the SCSI bus, sgio and reservations only there."""
        if out["device"] != "lun":
            for key in ("sgio", "reservations"):
                if item.get(key) is not None:
                    raise ctx.error("%s is only for device: lun" % key, "%s.%s" % (where, key))
            return
        path = out["path"]
        if not path:
            raise ctx.error("a LUN needs the path of a host block device (/dev/...)", where + ".path")
        is_file = not path.startswith("/dev/") or (ctx.host.local_files and os.path.isfile(path))
        if is_file:
            raise ctx.error("%s is a file: a LUN is passed through from a host block device, and only raw" % path,
                            where + ".path", fix="Use /dev/disk/by-id/... of the LUN, or device: disk for an image")
        if out["format"] not in (None, "raw"):
            raise ctx.error("a LUN is raw (the guest sees the physical format), not %s" % out["format"],
                            where + ".format")
        if out["bus"] != "scsi":
            raise ctx.error("a LUN needs the scsi bus (SCSI commands reach the device), not %s" % out["bus"],
                            where + ".bus")
        if item.get("sgio") == "unfiltered" and _lib_version(ctx) >= 9000000:
            raise ctx.error("unfiltered sgio is no longer supported by libvirt %s on this host"
                            % _version_text(_lib_version(ctx)), where + ".sgio",
                            fix="Use sgio: filtered (privileged SCSI commands still need a privileged guest)")
        out["format"] = "raw"
        out["sgio"] = item.get("sgio")
        out["reservations"] = item.get("reservations")

    def current(self, root, ctx):
        out = super().current(root, ctx)
        # controller 0 is implicit (libvirt adds it for the first SATA disk)
        out["sata_controllers"] = len({0} | {int(c.get("index") or 0) for c in root.iterfind("devices/controller")
                                             if c.get("type") == "sata"})
        return out

    def compare(self, desired, current, ctx):
        if desired:
            final = {self.item_key(i): i for i in current.get("items", [])}
            if desired.get("purge"):
                final = {}
            for item in desired["items"]:
                final[self.item_key(item)] = dict(final.get(self.item_key(item)) or {}, **{
                    k: v for k, v in item.items() if v is not None})
            self.check_bus_limits(desired["items"], list(final.values()), current.get("sata_controllers", 0), ctx)
        return super().compare(desired, current, ctx)

    @staticmethod
    def check_bus_limits(wanted, final, sata_controllers, ctx):
        """4 IDE disks (two channels, master and slave), 6 SATA ports per AHCI controller."""
        limits = dict(ide=(BUS_LIMITS["ide"], "the IDE controller has 2 channels x 2 units = 4 devices"),
                      sata=(BUS_LIMITS["sata"] * max(1, sata_controllers),
                            "%d SATA controller(s) x 6 ports" % max(1, sata_controllers)))
        for bus, (limit, why) in limits.items():
            count = len([i for i in final if i.get("bus") == bus])
            if count <= limit:
                continue
            index = max(n for n, i in enumerate(wanted) if i.get("bus") == bus) if any(
                i.get("bus") == bus for i in wanted) else 0
            raise ctx.error("%d %s devices exceed the limit of %s (%s)" % (count, bus.upper(), limit, why),
                            "disks[%d].bus" % index,
                            fix="Use the virtio or scsi bus" + (", or add a SATA controller" if bus == "sata" else ""))

    def finish_items(self, items, raw, ctx):
        if ctx.get("creating"):
            self.check_bus_limits(items, items, 0, ctx)
        used = {i["dev"] for i in items if i["dev"]}
        for item in items:
            if item["dev"]:
                continue
            prefix = _DEV_PREFIX[item["bus"]]
            n = 0
            while _dev_name(prefix, n) in used:
                n += 1
            item["dev"] = _dev_name(prefix, n)
            used.add(item["dev"])
        return items

    def read_element(self, element, ctx):
        target = element.find("target")
        source = element.find("source")
        driver = element.find("driver")
        path = None
        if source is not None:
            path = source.get("file") or source.get("dev")
            if path is None and source.get("pool") and source.get("volume"):
                try:
                    path = ctx.host.volume_path(source.get("pool"), source.get("volume"), "disks")
                except Exception:
                    path = "%s/%s" % (source.get("pool"), source.get("volume"))
        return dict(
            dev=target.get("dev") if target is not None else None,
            bus=target.get("bus") if target is not None else None,
            device=element.get("device", "disk"),
            path=path,
            format=driver.get("type") if driver is not None else None,
            readonly=element.find("readonly") is not None,
            sgio=element.get("sgio"),
            reservations=(element.find("source/reservations") is not None
                          and element.find("source/reservations").get("managed") == "yes"),
            cache=driver.get("cache") if driver is not None else None,
            io=driver.get("io") if driver is not None else None,
            discard=driver.get("discard") if driver is not None else None,
            iotune=_read_numbers(element.find("iotune"), IOTUNE_KEYS, child_text=True),
            serial=element.findtext("serial"),
            wwn=canonical_wwn(element.findtext("wwn")) if element.findtext("wwn") else None,
            shareable=element.find("shareable") is not None,
        )

    def write_item(self, root, element, item, ctx):
        if element is None:
            element = self.new_element(root, dict(type="file", device=item["device"]))
        elif item.get("device"):
            element.set("device", item["device"])
        driver = element.find("driver")
        if driver is None:
            driver = etree.Element("driver", name="qemu")
            element.insert(0, driver)
        fmt = item.get("format") or driver.get("type") or ctx.host.format_hints.get(item.get("path")) or (
            detect_format(item["path"]) if item.get("path") else "raw")
        driver.set("type", fmt)
        for key in ("cache", "io", "discard"):
            if item.get(key):
                driver.set(key, item[key])
        if item.get("path"):
            element.set("type", "block" if item["path"].startswith("/dev/") else "file")
            source = element.find("source")
            if source is not None:
                element.remove(source)
            source = etree.Element("source", {"dev" if element.get("type") == "block" else "file": item["path"]})
            driver.addnext(source)
        if item.get("sgio"):
            element.set("sgio", item["sgio"])
        if item.get("reservations") is not None and element.find("source") is not None:
            remove(element.find("source/reservations"))
            if item["reservations"]:
                etree.SubElement(element.find("source"), "reservations", managed="yes")
        target = element.find("target")
        if target is None:
            target = etree.SubElement(element, "target")
        old_bus = target.get("bus")
        target.set("dev", item["dev"])
        target.set("bus", item["bus"])
        if old_bus and old_bus != item["bus"]:
            remove(element.find("address"))  # the old bus's address would not fit the new one
        if item.get("iotune") is not None:
            remove(element.find("iotune"))
            if item["iotune"]:
                node = etree.Element("iotune")
                for key in IOTUNE_KEYS:
                    if key in item["iotune"]:
                        etree.SubElement(node, key).text = str(item["iotune"][key])
                target.addnext(node)
        readonly = item.get("readonly")
        if readonly is None and element.get("device") == "cdrom" and element.find("readonly") is None:
            readonly = True
        if readonly and element.find("readonly") is None:
            target.addnext(etree.Element("readonly"))
        elif readonly is False:
            remove(element.find("readonly"))
        for key in ("serial", "wwn"):
            if item.get(key) is not None:
                set_text(element, key, item[key])
        if item.get("shareable") and element.find("shareable") is None:
            etree.SubElement(element, "shareable")
        elif item.get("shareable") is False:
            remove(element.find("shareable"))
        return element


def _read_numbers(node, keys, child_text=False):
    """{key: int} of the non-zero attributes (or child elements) of ``node``; {} when it is missing."""
    if node is None:
        return {}
    out = {}
    for key in keys:
        text = node.findtext(key) if child_text else node.get(key)
        if text not in (None, "") and int(text) != 0:
            out[key] = int(text)
    return out


BANDWIDTH_KEYS = dict(inbound=("average", "peak", "burst", "floor"), outbound=("average", "peak", "burst"))


def canonical_bandwidth(raw, where, kind, ctx):
    """{direction: {key: int > 0}}; peak/burst need average; floor only for NICs on a libvirt network."""
    if raw is None:
        return None
    out = {}
    for direction, keys in BANDWIDTH_KEYS.items():
        values = raw.get(direction)
        if values is None:
            continue
        values = {k: values[k] for k in keys if values.get(k) is not None}
        for key, value in values.items():
            if value <= 0:
                raise ctx.error("must be greater than 0 (%d given); leave it out for no limit" % value,
                                "%s.bandwidth.%s.%s" % (where, direction, key))
        if "floor" in values and kind != "network":
            raise ctx.error("a floor (guaranteed rate) needs an interface on a libvirt network",
                            "%s.bandwidth.inbound.floor" % where)
        if ("peak" in values or "burst" in values) and "average" not in values:
            raise ctx.error("peak and burst need average", "%s.bandwidth.%s.average" % (where, direction))
        if "peak" in values and values["peak"] < values["average"]:
            raise ctx.error("peak %d is below average %d" % (values["peak"], values["average"]),
                            "%s.bandwidth.%s.peak" % (where, direction))
        if values:
            out[direction] = values
    return out


_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def stable_mac(domain_name, index):
    """52:54:00:xx:xx:xx from the domain name and the NIC's position: the same on every run."""
    digest = hashlib.sha256(("%s/%d" % (domain_name, index)).encode("utf-8")).digest()
    return "52:54:00:%02x:%02x:%02x" % (digest[0], digest[1], digest[2])


class InterfaceGroup(DeviceGroup):
    """NICs keyed by MAC address (lower case); a stable MAC is derived when none is given."""

    name = "interfaces"
    option = "interfaces"
    tag = "interface"
    hotplug = True
    item_spec = dict(
        mac=dict(type="str"),
        type=dict(type="str", choices=["network", "bridge", "user", "direct", "hostdev"]),
        network=dict(type="str"),
        bridge=dict(type="str"),
        direct=dict(type="str"),
        pci=dict(type="str"),
        vlan=dict(type="int"),
        iommu_check=dict(type="bool"),
        model=dict(type="str", choices=["virtio", "e1000e", "e1000", "rtl8139"]),
        bandwidth=dict(type="dict", options=dict(
            inbound=dict(type="dict", options={k: dict(type="int") for k in BANDWIDTH_KEYS["inbound"]}),
            outbound=dict(type="dict", options={k: dict(type="int") for k in BANDWIDTH_KEYS["outbound"]}),
        )),
        app_qos=appqos.APP_QOS_SPEC,
    )
    live_fields = frozenset(["bandwidth", "app_qos"])
    _SOURCE_ATTR = dict(network="network", bridge="bridge", direct="dev")

    def item_key(self, item):
        return item["mac"]

    def desired_item(self, item, index, ctx):
        where = "interfaces[%d]" % index
        given = [k for k in ("network", "bridge", "direct", "pci") if item.get(k)]
        if len(given) > 1:
            raise ctx.error("give only one of network, bridge, direct, pci", where + "." + given[1])
        kind = item.get("type") or ({"pci": "hostdev"}.get(given[0], given[0]) if given else None)
        if kind is None:
            raise ctx.error("an interface needs network, bridge, direct, pci (an SR-IOV VF) or type: user",
                            where + ".network")
        if given and {"pci": "hostdev"}.get(given[0], given[0]) != kind:
            raise ctx.error("type %s does not go with %s" % (kind, given[0]), where + ".type")
        if kind in self._SOURCE_ATTR and not given:
            raise ctx.error("type %s needs the %s option" % (kind, kind), where + "." + kind)
        if kind == "hostdev":
            return self._desired_vf(item, index, where, ctx)
        for key in ("vlan", "iommu_check"):
            if item.get(key) is not None:
                raise ctx.error("%s is for SR-IOV VF interfaces (pci) only" % key, where + "." + key)
        source = item.get(kind) if kind in self._SOURCE_ATTR else None
        if kind == "network" and source not in ctx.host.network_names():
            raise ctx.error("network %r does not exist" % source, where + ".network",
                            fix="Create it first (virtforge.libvirt.network) or fix the name")
        if source is not None and not re.match(r"^[A-Za-z0-9_.:+-]+$", source):
            raise ctx.error("%r is not a valid name" % source, where + "." + kind)
        mac = self._mac(item, index, where, ctx)
        bandwidth = canonical_bandwidth(item.get("bandwidth"), where, kind, ctx)
        app_qos = appqos.canonical_app_qos(item.get("app_qos"), where, kind, bandwidth, ctx)
        if app_qos:
            appqos.warn_without_hook(ctx, where)
        return dict(mac=mac, type=kind, source=source, model=item.get("model") or "virtio",
                    bandwidth=bandwidth, app_qos=app_qos)

    def _desired_vf(self, item, index, where, ctx):
        """An SR-IOV virtual function given to the guest as a NIC (<interface type='hostdev'>, VFIO)."""
        from .hostdev import PCI_FORM, parse_pci_address  # pylint: disable=import-outside-toplevel
        if not item.get("pci"):
            raise ctx.error("type hostdev needs the VF's PCI address", where + ".pci", fix="Use " + PCI_FORM)
        address = parse_pci_address(item["pci"])
        if address is None:
            raise ctx.error("%r is not a PCI address" % item["pci"], where + ".pci", fix="Use " + PCI_FORM)
        for key in ("model", "bandwidth", "app_qos"):
            if item.get(key):
                raise ctx.error("a VF is the guest's own hardware: %s does not apply" % key, where + "." + key,
                                fix="Set rates on the PF (ip link set PF vf N max_tx_rate ...) or use a tap-based NIC")
        vlan = item.get("vlan")
        if vlan is not None and not 1 <= vlan <= 4094:
            raise ctx.error("VLAN %d is outside 1..4094" % vlan, where + ".vlan")
        mac = self._mac(item, index, where, ctx)
        return dict(mac=mac, type="hostdev", source=address, model=None, vlan=vlan, bandwidth=None, app_qos=None)

    @staticmethod
    def _mac(item, index, where, ctx):
        mac = item.get("mac")
        if not mac:
            return stable_mac(ctx["name"], index)
        mac = mac.strip().lower().replace("-", ":")
        if not _MAC_RE.match(mac) or int(mac[:2], 16) & 1:
            raise ctx.error("%r is not a unicast MAC address" % item["mac"], where + ".mac",
                            fix="Use six hex octets, e.g. 52:54:00:12:34:56")
        return mac

    def check_host(self, items, ctx):
        """VF interfaces go through the same IOMMU group check as PCI host devices."""
        from .hostdev import HostdevGroup  # pylint: disable=import-outside-toplevel
        vfs = [(where, dict(raw, pci=raw.get("pci")), dict(item, type="pci", managed=True))
               for where, raw, item in items if item.get("type") == "hostdev"]
        if vfs:
            HostdevGroup().check_host(vfs, ctx)

    def apply_live(self, target, changes, desired, ctx):
        """Bandwidth with virDomainSetInterfaceParameters, app_qos with tc; the rest as any device."""
        rest, qos = [], []
        touches_qos = any(
            (c.action == "update" and "app_qos" in c.after) or (c.action == "add" and (c.after or {}).get("app_qos"))
            or (c.action == "remove" and (c.before or {}).get("app_qos")) for c in changes)
        taps = appqos.live_taps(target) if touches_qos else {}  # read before a detach removes a tap
        for change in changes:
            if change.action == "update" and "app_qos" in change.after and set(change.after) <= self.live_fields:
                qos.append((change.key, change.after["app_qos"]))
            if change.action == "update" and "bandwidth" in change.after and set(change.after) <= self.live_fields:
                want, old = change.after["bandwidth"], (change.before or {}).get("bandwidth") or {}
                params = {}
                for direction, keys in BANDWIDTH_KEYS.items():
                    for key in keys:
                        value = want.get(direction, {}).get(key, 0)
                        if key == "floor" and not value and not old.get(direction, {}).get(key):
                            continue  # a floor needs QoS on the network: never mention it needlessly
                        params["%s.%s" % (direction, key)] = int(value)
                try:
                    target.setInterfaceParameters(change.key, params, AFFECT_LIVE)
                except libvirt.libvirtError as exc:
                    raise VirtforgeError(
                        "libvirt could not shape the running NIC: %s" % exc.get_error_message().strip(),
                        option="interfaces[%s].bandwidth" % change.key,
                        fix="libvirt shapes with tc (htb and sfq qdiscs, ingress police); the host kernel must "
                            "provide sch_htb, sch_sfq, sch_ingress, cls_u32 and act_police") from None
            elif not (change.action == "update" and set(change.after) <= self.live_fields):
                rest.append(change)
        if rest:
            super().apply_live(target, rest, desired, ctx)
        added = [c for c in rest if c.action == "add" and c.after.get("app_qos")]
        if added:
            taps.update(appqos.live_taps(target))
        qos += [(c.key, c.after["app_qos"]) for c in added]
        qos += [(c.key, {}) for c in rest if c.action == "remove" and c.before.get("app_qos")]  # its IFB
        if qos:
            appqos.apply_live(ctx, taps, qos)
            appqos.push_live_metadata(target, ctx["plan_after_root"])

    @staticmethod
    def _write_vf(element, item):
        for child_tag in ("source", "model", "bandwidth", "vlan"):
            remove(element.find(child_tag))
        element.attrib.clear()
        element.set("type", "hostdev")
        element.set("managed", "yes")
        domain, bus, rest = item["source"].split(":")
        slot, function = rest.split(".")
        source = etree.Element("source")
        element.find("mac").addnext(source)
        etree.SubElement(source, "address", type="pci", domain="0x" + domain, bus="0x" + bus, slot="0x" + slot,
                         function="0x" + function)
        if item.get("vlan"):
            etree.SubElement(etree.SubElement(element, "vlan"), "tag", id=str(item["vlan"]))
        return element

    def remove_item(self, root, key, ctx):
        super().remove_item(root, key, ctx)
        appqos.write_app_qos(root, key, {})  # its classes go with it

    def read_element(self, element, ctx):
        mac = element.find("mac")
        source = element.find("source")
        kind = element.get("type")
        model = element.find("model")
        attr = self._SOURCE_ATTR.get(kind)
        if kind == "hostdev":
            from .hostdev import read_pci_address  # pylint: disable=import-outside-toplevel
            address = element.find("source/address")
            tag = element.find("vlan/tag")
            return dict(
                mac=mac.get("address").lower() if mac is not None else None, type=kind,
                source=read_pci_address(address) if address is not None else None,
                model=None, vlan=int(tag.get("id")) if tag is not None else None, bandwidth={}, app_qos={})
        return dict(
            mac=mac.get("address").lower() if mac is not None else None,
            type=kind,
            source=source.get(attr) if source is not None and attr else None,
            model=model.get("type") if model is not None else None,
            bandwidth={d: v for d, v in ((d, _read_numbers(element.find("bandwidth/" + d), keys))
                                         for d, keys in BANDWIDTH_KEYS.items()) if v},
            app_qos=appqos.read_app_qos(element),
        )

    def write_item(self, root, element, item, ctx):
        if element is None:
            element = self.new_element(root, dict(type=item["type"]))
            etree.SubElement(element, "mac", address=item["mac"])
        if item["type"] == "hostdev":
            return self._write_vf(element, item)
        old_type = element.get("type")
        element.set("type", item["type"])
        source = element.find("source")
        if item["type"] in self._SOURCE_ATTR:
            if source is None or old_type != item["type"]:
                remove(source)
                source = etree.Element("source")
                element.find("mac").addnext(source)
            source.attrib.clear()
            source.set(self._SOURCE_ATTR[item["type"]], item["source"])
            if item["type"] == "direct":
                source.set("mode", "bridge")
        else:
            remove(source)
        if item.get("model"):
            model = element.find("model")
            if model is None:
                model = etree.SubElement(element, "model")
            model.set("type", item["model"])
        if item.get("bandwidth") is not None:
            remove(element.find("bandwidth"))
            if item["bandwidth"]:
                node = etree.SubElement(element, "bandwidth")
                for direction, keys in BANDWIDTH_KEYS.items():
                    if direction in item["bandwidth"]:
                        etree.SubElement(node, direction, {k: str(item["bandwidth"][direction][k])
                                                           for k in keys if k in item["bandwidth"][direction]})
        if item.get("app_qos") is not None:
            appqos.write_app_qos(root, item["mac"], item["app_qos"])
        return element


def _positive(value, option, ctx):
    if value is not None and value <= 0:
        raise ctx.error("must be greater than 0 (%d given)" % value, option)
    return value


class ControllerGroup(DeviceGroup):
    """Controllers keyed by ``type:index`` (``scsi:0``); libvirt's own default controllers are left alone."""

    name = "controllers"
    option = "controllers"
    tag = "controller"
    item_spec = dict(
        type=dict(type="str", choices=["scsi", "sata", "usb", "virtio-serial", "pci"]),
        index=dict(type="int"),
        model=dict(type="str", choices=["virtio-scsi", "lsilogic", "qemu-xhci", "nec-xhci", "ich9-ehci1",
                                        "piix3-uhci", "none", "pcie-root-port", "pci-bridge", "pcie-to-pci-bridge"]),
    )
    _MODELS = {
        "scsi": ("virtio-scsi", "lsilogic"),
        "usb": ("qemu-xhci", "nec-xhci", "ich9-ehci1", "piix3-uhci", "none"),
        "pci": ("pcie-root-port", "pci-bridge", "pcie-to-pci-bridge"),
    }
    _DEFAULT_MODEL = dict(scsi="virtio-scsi", usb="qemu-xhci", pci="pcie-root-port")

    def item_key(self, item):
        return "%s:%d" % (item["type"], item["index"])

    def hotpluggable(self, item):
        return (item or {}).get("type") in ("scsi", "virtio-serial")

    def purgeable(self, item):
        return item.get("type") != "pci"  # PCI controllers carry the other devices; libvirt adds most itself

    def needs_pci_slot(self, item):
        return item.get("type") != "pci"

    def desired_item(self, item, index, ctx):
        where = "controllers[%d]" % index
        if not item.get("type"):
            raise ctx.error("a controller needs a type", where + ".type")
        number = item.get("index") or 0
        if number < 0 or number > 255:
            raise ctx.error("index %d is outside 0..255" % number, where + ".index")
        if item["type"] == "pci" and number == 0:
            raise ctx.error("PCI controller 0 is the root bus, which libvirt manages", where + ".index",
                            fix="Give spare root ports or bridges an index above the ones libvirt uses (e.g. 10)")
        model = item.get("model")
        allowed = self._MODELS.get(item["type"], ())
        if model and model not in allowed:
            raise ctx.error("model %s is not a %s controller model" % (model, item["type"]), where + ".model",
                            fix="Use one of: %s" % (", ".join(allowed) or "none (leave model out)"))
        return dict(type=item["type"], index=number, model=model or self._DEFAULT_MODEL.get(item["type"]))

    def read_element(self, element, ctx):
        return dict(type=element.get("type"), index=int(element.get("index") or 0), model=element.get("model"))

    def elements(self, root):
        return [e for e in super().elements(root) if e.get("type") in self._types()]

    def _types(self):
        return self.item_spec["type"]["choices"]

    def write_item(self, root, element, item, ctx):
        if element is None:
            element = self.new_element(root, dict(type=item["type"], index=str(item["index"])))
        if item.get("model"):
            element.set("model", item["model"])
        return element


class RngGroup(DeviceGroup):
    """Random number generators (virtio-rng) keyed by the host source, with an optional rate limit."""

    name = "rngs"
    option = "rngs"
    tag = "rng"
    hotplug = True
    item_spec = dict(
        model=dict(type="str", choices=["virtio", "virtio-transitional", "virtio-non-transitional"]),
        backend=dict(type="str", choices=["/dev/urandom", "/dev/random", "/dev/hwrng"]),
        rate_bytes=dict(type="int"),
        rate_period=dict(type="int"),
    )

    def item_key(self, item):
        return item["backend"]

    def desired_item(self, item, index, ctx):
        where = "rngs[%d]" % index
        _positive(item.get("rate_bytes"), where + ".rate_bytes", ctx)
        _positive(item.get("rate_period"), where + ".rate_period", ctx)
        if item.get("rate_period") and not item.get("rate_bytes"):
            raise ctx.error("rate_period needs rate_bytes", where + ".rate_period")
        return dict(model=item.get("model") or "virtio", backend=item.get("backend") or "/dev/urandom",
                    rate_bytes=item.get("rate_bytes"), rate_period=item.get("rate_period"))

    def read_element(self, element, ctx):
        rate = element.find("rate")
        return dict(model=element.get("model"), backend=(element.findtext("backend") or "").strip() or None,
                    rate_bytes=int(rate.get("bytes")) if rate is not None and rate.get("bytes") else None,
                    rate_period=int(rate.get("period")) if rate is not None and rate.get("period") else None)

    def write_item(self, root, element, item, ctx):
        if element is None:
            element = self.new_element(root, dict(model=item["model"]))
            backend = etree.SubElement(element, "backend", model="random")
            backend.text = item["backend"]
        element.set("model", item["model"])
        if item.get("rate_bytes"):
            remove(element.find("rate"))
            rate = etree.Element("rate", bytes=str(item["rate_bytes"]))
            if item.get("rate_period"):
                rate.set("period", str(item["rate_period"]))
            element.insert(0, rate)
        return element


class WatchdogGroup(DeviceGroup):
    """Emulated watchdogs keyed by model (one of each); what the host does when the guest stops feeding it."""

    name = "watchdogs"
    option = "watchdogs"
    tag = "watchdog"
    item_spec = dict(
        model=dict(type="str", choices=["i6300esb", "ib700", "diag288", "itco"]),
        action=dict(type="str", choices=["reset", "shutdown", "poweroff", "pause", "none", "dump", "inject-nmi"]),
    )

    def needs_pci_slot(self, item):
        return (item or {}).get("model") == "i6300esb"  # ib700 is ISA, itco is in the q35 chipset

    def item_key(self, item):
        return item["model"]

    def desired_item(self, item, index, ctx):
        return dict(model=item.get("model") or "i6300esb", action=item.get("action") or "reset")

    def read_element(self, element, ctx):
        return dict(model=element.get("model"), action=element.get("action") or "reset")

    def write_item(self, root, element, item, ctx):
        if element is None:
            element = self.new_element(root, dict(model=item["model"]))
        element.set("action", item["action"])
        return element
