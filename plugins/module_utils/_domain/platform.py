# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Devices a domain has at most one of: the memory balloon, the TPM and the virtual IOMMU.

The balloon's size is the ``memory`` option (applied live by MemoryGroup); this group declares the
device itself: model, statistics period (changed live), autodeflate and free page reporting.
"""

from __future__ import annotations

from .._engine import OptionGroup, path_element, remove

try:
    from lxml import etree
except ImportError:  # pragma: no cover - reported by _libvirt.check_libraries
    etree = None

AFFECT_LIVE = 1
TPM_MODELS = ("tpm-crb", "tpm-tis", "spapr-tpm-proxy")


def _on_off(value):
    return None if value is None else ("on" if value else "off")


class BalloonGroup(OptionGroup):
    """<memballoon model autodeflate freePageReporting><stats period/></memballoon>."""

    name = "balloon"
    argument_spec = dict(balloon=dict(type="dict", options=dict(
        model=dict(type="str", choices=["virtio", "virtio-transitional", "virtio-non-transitional", "none"]),
        stats_period=dict(type="int"),
        autodeflate=dict(type="bool"),
        free_page_reporting=dict(type="bool"),
    )))
    live_keys = frozenset(["stats_period"])

    def desired(self, params, ctx):
        raw = params.get("balloon")
        if raw is None:
            return {}
        out = {k: raw[k] for k in ("model", "stats_period", "autodeflate", "free_page_reporting")
               if raw.get(k) is not None}
        if out.get("stats_period") is not None and not 0 <= out["stats_period"] <= 86400:
            raise ctx.error("%d seconds is out of range 0 (off) to 86400" % out["stats_period"],
                            "balloon.stats_period")
        if out.get("model") == "none" and len(out) > 1:
            raise ctx.error("model none removes the balloon: nothing else can be set",
                            "balloon." + sorted(k for k in out if k != "model")[0])
        return out

    def current(self, root, ctx):
        node = root.find("devices/memballoon")
        if node is None:
            return dict(model=None, stats_period=0, autodeflate=False, free_page_reporting=False)
        stats = node.find("stats")
        return dict(model=node.get("model"),
                    stats_period=int(stats.get("period", "0")) if stats is not None else 0,
                    autodeflate=node.get("autodeflate") == "on",
                    free_page_reporting=node.get("freePageReporting") == "on")

    def compare(self, desired, current, ctx):
        changes = super().compare(desired, current, ctx)
        if any(c.key != "stats_period" for c in changes):
            for change in changes:  # a new balloon device or its settings: at the next start
                change.live = False if ctx.get("running") else None
        return changes

    def write(self, root, desired, ctx):
        devices = path_element(root, "devices", create=True)
        node = devices.find("memballoon")
        if node is None:
            node = etree.SubElement(devices, "memballoon", model=desired.get("model") or "virtio")
        if "model" in desired:
            node.set("model", desired["model"])
            if desired["model"] == "none":
                for child in list(node):
                    remove(child)
                for attr in ("autodeflate", "freePageReporting"):
                    node.attrib.pop(attr, None)
                return
        for key, attr in (("autodeflate", "autodeflate"), ("free_page_reporting", "freePageReporting")):
            if key in desired:
                node.set(attr, _on_off(desired[key]))
        if "stats_period" in desired:
            remove(node.find("stats"))
            if desired["stats_period"]:
                stats = etree.Element("stats", period=str(desired["stats_period"]))
                node.insert(0, stats)

    def apply_live(self, target, changes, desired, ctx):
        target.setMemoryStatsPeriod(desired["stats_period"], AFFECT_LIVE)


class TpmGroup(OptionGroup):
    """<tpm model><backend type='emulator' version/> or type='passthrough' with the host's device</tpm>.

    No live keys: a TPM changes at the next start.
    """

    name = "tpm"
    argument_spec = dict(tpm=dict(type="dict", options=dict(
        enabled=dict(type="bool", default=True),
        model=dict(type="str", choices=list(TPM_MODELS)),
        backend=dict(type="str", choices=["emulator", "passthrough"]),
        version=dict(type="str", choices=["2.0", "1.2"]),
        device=dict(type="path"),
    )))

    def desired(self, params, ctx):
        raw = params.get("tpm")
        if raw is None:
            return {}
        if raw.get("enabled") is False:
            return dict(enabled=False)
        backend = raw.get("backend") or "emulator"
        if backend == "passthrough":
            if raw.get("version") is not None:
                raise ctx.error("the version is the host TPM's own with passthrough", "tpm.version")
            device = raw.get("device") or "/dev/tpm0"
            if not device.startswith("/dev/"):
                raise ctx.error("%r is not a device path" % device, "tpm.device", fix="e.g. /dev/tpm0")
        else:
            if raw.get("device") is not None:
                raise ctx.error("a device path goes with backend passthrough", "tpm.device")
            device = None
        version = raw.get("version") or ("2.0" if backend == "emulator" else None)
        model = raw.get("model") or "tpm-crb"
        if model == "tpm-crb" and version == "1.2":
            raise ctx.error("tpm-crb is a TPM 2.0 interface", "tpm.model", fix="Use tpm-tis for TPM 1.2")
        return dict(enabled=True, model=model, backend=backend, version=version, device=device)

    def current(self, root, ctx):
        node = root.find("devices/tpm")
        if node is None:
            return dict(enabled=False, model=None, backend=None, version=None, device=None)
        backend = node.find("backend")
        kind = backend.get("type") if backend is not None else None
        device = backend.find("device") if backend is not None else None
        return dict(enabled=True, model=node.get("model"), backend=kind,
                    version=(backend.get("version") or "2.0") if kind == "emulator" else None,
                    device=device.get("path") if device is not None else None)

    def write(self, root, desired, ctx):
        devices = path_element(root, "devices", create=True)
        remove(devices.find("tpm"))
        if not desired.get("enabled"):
            return
        node = etree.SubElement(devices, "tpm", model=desired["model"])
        backend = etree.SubElement(node, "backend", type=desired["backend"])
        if desired["backend"] == "emulator":
            backend.set("version", desired["version"])
        else:
            etree.SubElement(backend, "device", path=desired["device"])


IOMMU_MODELS = ("intel", "smmuv3", "virtio", "amd")
IOMMU_SWITCHES = ("intremap", "caching_mode", "eim", "iotlb")  # on/off attributes of <driver>


class IommuGroup(OptionGroup):
    """<iommu model><driver intremap caching_mode eim iotlb aw_bits/></iommu>: a virtual IOMMU in the guest.

    It gives the guest's devices IOMMU groups (VFIO and DPDK inside the guest, device assignment in a
    nested host). Interrupt remapping needs the split I/O APIC (<features><ioapic driver='qemu'/>),
    which is written with it. Changes apply at the next start.
    """

    name = "iommu"
    argument_spec = dict(iommu=dict(type="dict", options=dict(
        enabled=dict(type="bool", default=True),
        model=dict(type="str", choices=list(IOMMU_MODELS)),
        intremap=dict(type="bool"),
        caching_mode=dict(type="bool"),
        eim=dict(type="bool"),
        iotlb=dict(type="bool"),
        aw_bits=dict(type="int", choices=[39, 48]),
    )))

    def desired(self, params, ctx):
        raw = params.get("iommu")
        if raw is None:
            return {}
        if raw.get("enabled") is False:
            return dict(enabled=False)
        model = raw.get("model") or "intel"
        out = dict(enabled=True, model=model)
        for key in IOMMU_SWITCHES + ("aw_bits",):
            if raw.get(key) is not None:
                if model != "intel":
                    raise ctx.error("driver settings are for the intel model, not %s" % model, "iommu." + key)
                out[key] = raw[key]
        if out.get("eim") and not out.get("intremap"):
            raise ctx.error("extended interrupt mode needs interrupt remapping", "iommu.eim",
                            fix="Set iommu.intremap: true as well")
        machine = params.get("machine")
        if model == "intel" and machine and "q35" not in machine:
            raise ctx.error("the intel IOMMU needs a q35 machine, not %s" % machine, "iommu.model",
                            fix="Set machine: q35 (a new machine type needs the guest to be redefined)")
        return out

    def current(self, root, ctx):
        node = root.find("devices/iommu")
        if node is None:
            return dict(enabled=False, model=None)
        driver = node.find("driver")
        driver = driver if driver is not None else {}
        out = dict(enabled=True, model=node.get("model"))
        for key in IOMMU_SWITCHES:
            out[key] = driver.get(key) == "on"
        out["aw_bits"] = int(driver.get("aw_bits")) if driver.get("aw_bits") else None
        return out

    def write(self, root, desired, ctx):
        devices = path_element(root, "devices", create=True)
        node = devices.find("iommu")
        if not desired.get("enabled"):
            remove(node)
            return
        if node is not None and node.get("model") != desired["model"]:
            remove(node)
            node = None
        if node is None:
            node = etree.SubElement(devices, "iommu", model=desired["model"])
        keys = [k for k in IOMMU_SWITCHES + ("aw_bits",) if k in desired]
        if keys:
            driver = node.find("driver")
            if driver is None:
                driver = etree.SubElement(node, "driver")
            for key in keys:
                driver.set(key, str(desired[key]) if key == "aw_bits" else _on_off(desired[key]))
        if desired.get("intremap"):
            ioapic = path_element(root, "features/ioapic", create=True)
            ioapic.set("driver", "qemu")
