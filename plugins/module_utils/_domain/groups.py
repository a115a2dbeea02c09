# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Domain option groups for the parts of a domain that occur once (identity, CPU, memory...).

Each group is declared once on :class:`_engine.OptionGroup`: its options, the canonical
desired dict (only what the user set, plus creation defaults when the domain is new),
reading the same dict from XML, writing it with lxml, and applying live changes.
"""

from __future__ import annotations

import re

from .._engine import OptionGroup, path_element, remove, set_text
from .._libvirt import METADATA_NS, METADATA_PREFIX, METADATA_ROOT
from .._validate import check_positive_int, parse_size, xml_size_to_bytes

try:
    from lxml import etree
except ImportError:  # pragma: no cover - reported by _libvirt.check_libraries
    etree = None

AFFECT_LIVE = 1  # libvirt.VIR_DOMAIN_AFFECT_LIVE
METADATA_DESCRIPTION = 0  # libvirt.VIR_DOMAIN_METADATA_DESCRIPTION
METADATA_TITLE = 1
METADATA_ELEMENT = 2

_UUID_RE = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$")


def _set(params, key):
    return params.get(key) is not None


class IdentityGroup(OptionGroup):
    """<name>, <uuid>, <title>, <description>. The name is the key and is never changed."""

    name = "identity"
    argument_spec = dict(
        name=dict(type="str"),
        uuid=dict(type="str"),
        title=dict(type="str"),
        description=dict(type="str"),
    )
    live_keys = frozenset(["title", "description"])

    def desired(self, params, ctx):
        out = {}
        if ctx.get("creating"):
            out["name"] = ctx["name"]
        if _set(params, "uuid"):
            uuid = params["uuid"].strip().lower()
            if not _UUID_RE.match(uuid):
                raise ctx.error("%r is not a UUID" % params["uuid"], "uuid")
            if "-" not in uuid:
                uuid = "-".join([uuid[:8], uuid[8:12], uuid[12:16], uuid[16:20], uuid[20:]])
            out["uuid"] = uuid
        for key in ("title", "description"):
            if _set(params, key):
                if key == "title" and "\n" in params[key]:
                    raise ctx.error("must be a single line", key)
                out[key] = params[key]
        return out

    def current(self, root, ctx):
        return dict(
            name=root.findtext("name"),
            uuid=(root.findtext("uuid") or "").lower() or None,
            title=root.findtext("title") or "",
            description=root.findtext("description") or "",
        )

    def compare(self, desired, current, ctx):
        if "uuid" in desired and current.get("uuid") and desired["uuid"] != current["uuid"]:
            raise ctx.error("domain %r exists with UUID %s; a UUID cannot be changed" % (ctx["name"], current["uuid"]),
                            "uuid", fix="Remove the uuid option or undefine the domain first")
        return super().compare(desired, current, ctx)

    def write(self, root, desired, ctx):
        if "name" in desired:
            set_text(root, "name", desired["name"])
        if "uuid" in desired:
            set_text(root, "uuid", desired["uuid"])
        for key in ("title", "description"):
            if key in desired:
                if desired[key]:
                    set_text(root, key, desired[key])
                else:
                    remove(root.find(key))
        # libvirt wants name, uuid, title, description first; keep them in that order.
        for pos, tag in enumerate(t for t in ("name", "uuid", "title", "description") if root.find(t) is not None):
            node = root.find(tag)
            if root.index(node) != pos:
                root.remove(node)
                root.insert(pos, node)

    def apply_live(self, target, changes, desired, ctx):
        for change in changes:
            kind = METADATA_TITLE if change.key == "title" else METADATA_DESCRIPTION
            target.setMetadata(kind, change.after or None, None, None, AFFECT_LIVE)


class DomainTypeGroup(OptionGroup):
    """<domain type='kvm|qemu'>: kvm only where the host has hardware virtualization."""

    name = "domain_type"
    argument_spec = dict(domain_type=dict(type="str", choices=["kvm", "qemu"]))

    def desired(self, params, ctx):
        if _set(params, "domain_type"):
            return dict(type=params["domain_type"])
        if ctx.get("creating") and not ctx.get("base_root_has", {}).get("type"):
            return dict(type=ctx.host.default_domain_type())
        return {}

    def current(self, root, ctx):
        return dict(type=root.get("type"))

    def write(self, root, desired, ctx):
        root.set("type", desired["type"])


class CpuGroup(OptionGroup):
    """<vcpu current='N'>MAX</vcpu> and <cpu mode=...>."""

    name = "cpu"
    argument_spec = dict(
        vcpus=dict(type="int"),
        max_vcpus=dict(type="int"),
        cpu_mode=dict(type="str", choices=["host-model", "host-passthrough", "custom", "maximum"]),
        cpu_model=dict(type="str"),
    )
    live_keys = frozenset(["vcpus"])

    def desired(self, params, ctx):
        out = {}
        vcpus = check_positive_int(params.get("vcpus"), ctx.opt("vcpus"), maximum=4096)
        max_vcpus = check_positive_int(params.get("max_vcpus"), ctx.opt("max_vcpus"), maximum=4096)
        if vcpus is not None:
            out["vcpus"] = vcpus
        elif ctx.get("creating") and not ctx.get("base_root_has", {}).get("vcpu"):
            out["vcpus"] = 1
        if max_vcpus is not None:
            if out.get("vcpus") and max_vcpus < out["vcpus"]:
                raise ctx.error("%d is less than vcpus (%d)" % (max_vcpus, out["vcpus"]), "max_vcpus",
                                fix="Set max_vcpus to at least vcpus")
            out["max_vcpus"] = max_vcpus
        if _set(params, "cpu_mode"):
            out["cpu_mode"] = params["cpu_mode"]
            if params["cpu_mode"] == "custom" and not _set(params, "cpu_model"):
                raise ctx.error("cpu_mode custom needs a CPU model", "cpu_model", fix="Set cpu_model, e.g. qemu64")
        if _set(params, "cpu_model"):
            if params.get("cpu_mode") not in (None, "custom"):
                raise ctx.error("a CPU model goes with cpu_mode custom only", "cpu_model")
            out["cpu_mode"] = "custom"
            out["cpu_model"] = params["cpu_model"]
        return out

    def current(self, root, ctx):
        node = root.find("vcpu")
        out = dict(vcpus=None, max_vcpus=None, cpu_mode=None, cpu_model=None)
        if node is not None and node.text:
            out["max_vcpus"] = int(node.text)
            out["vcpus"] = int(node.get("current", node.text))
        cpu = root.find("cpu")
        if cpu is not None:
            out["cpu_mode"] = cpu.get("mode", "custom" if cpu.find("model") is not None else None)
            out["cpu_model"] = cpu.findtext("model")
        return out

    def compare(self, desired, current, ctx):
        want = dict(desired)
        if "vcpus" in want and "max_vcpus" not in want and current.get("max_vcpus") is not None \
                and want["vcpus"] > current["max_vcpus"]:
            want["max_vcpus"] = want["vcpus"]  # raising the maximum needs a restart
        if "max_vcpus" in want and "vcpus" not in want and current.get("vcpus") is not None \
                and want["max_vcpus"] < current["vcpus"]:
            want["vcpus"] = want["max_vcpus"]
        changes = super().compare(want, current, ctx)
        if any(c.key == "max_vcpus" for c in changes):
            for change in changes:
                change.live = False if ctx.get("running") else None
        return changes

    def write(self, root, desired, ctx):
        node = root.find("vcpu")
        if node is None:
            node = etree.SubElement(root, "vcpu", placement="static")
        have_max = int(node.text) if node.text else None
        have_cur = int(node.get("current", node.text)) if node.text else None
        cur = desired.get("vcpus", have_cur)
        top = desired.get("max_vcpus", have_max)
        if top is None or (cur is not None and cur > top):
            top = cur
        if cur is None or cur > top:
            cur = top
        node.text = str(top)
        if cur != top:
            node.set("current", str(cur))
        elif "current" in node.attrib:
            del node.attrib["current"]
        if "cpu_mode" in desired:
            cpu = root.find("cpu")
            if cpu is None:
                cpu = etree.SubElement(root, "cpu")
            keep = {k: v for k, v in cpu.attrib.items() if k not in ("mode", "match", "check", "migratable")}
            cpu.attrib.clear()
            cpu.attrib.update(keep)
            cpu.set("mode", desired["cpu_mode"])
            model = cpu.find("model")
            if desired["cpu_mode"] == "custom":
                cpu.set("match", "exact")
                if model is None:
                    model = etree.Element("model")
                    cpu.insert(0, model)
                model.set("fallback", "allow")
                model.text = desired.get("cpu_model") or model.text
            else:
                remove(model)

    def apply_live(self, target, changes, desired, ctx):
        target.setVcpusFlags(desired["vcpus"], AFFECT_LIVE)


class MemoryGroup(OptionGroup):
    """<currentMemory> (``memory``) and <memory> (``max_memory``), canonical bytes."""

    name = "memory"
    argument_spec = dict(memory=dict(type="raw"), max_memory=dict(type="raw"))
    live_keys = frozenset(["memory"])

    @staticmethod
    def _size(params, key, ctx):
        value = params.get(key)
        if value is None:
            return None
        size = parse_size(value, ctx.opt(key), default_unit="mib")
        if size < 16 * 1024 ** 2:
            raise ctx.error("%r is below the minimum of 16 MiB" % (value,), key,
                            fix="Give a size such as 256 (MiB), '512MiB' or '2G'")
        return size // 1024 * 1024  # libvirt stores KiB

    def desired(self, params, ctx):
        out = {}
        memory = self._size(params, "memory", ctx)
        max_memory = self._size(params, "max_memory", ctx)
        if memory is not None:
            out["memory"] = memory
        elif ctx.get("creating") and not ctx.get("base_root_has", {}).get("memory"):
            out["memory"] = 512 * 1024 ** 2
        if max_memory is not None:
            if out.get("memory") and max_memory < out["memory"]:
                raise ctx.error("%s is less than memory" % params["max_memory"], "max_memory",
                                fix="Set max_memory to at least memory")
            out["max_memory"] = max_memory
        return out

    def current(self, root, ctx):
        out = dict(memory=None, max_memory=None)
        node = root.find("memory")
        if node is not None and node.text:
            out["max_memory"] = xml_size_to_bytes(node.text, node.get("unit"))
        node = root.find("currentMemory")
        if node is not None and node.text:
            out["memory"] = xml_size_to_bytes(node.text, node.get("unit"))
        elif out["max_memory"] is not None:
            out["memory"] = out["max_memory"]
        return out

    def compare(self, desired, current, ctx):
        want = dict(desired)
        if "memory" in want and "max_memory" not in want and current.get("max_memory") is not None \
                and want["memory"] > current["max_memory"]:
            want["max_memory"] = want["memory"]
        if "max_memory" in want and "memory" not in want and current.get("memory") is not None \
                and want["max_memory"] < current["memory"]:
            want["memory"] = want["max_memory"]
        changes = super().compare(want, current, ctx)
        if any(c.key == "max_memory" for c in changes):
            for change in changes:
                change.live = False if ctx.get("running") else None
        return changes

    def write(self, root, desired, ctx):
        have = self.current(root, ctx)
        cur = desired.get("memory", have["memory"])
        top = desired.get("max_memory", have["max_memory"])
        if top is None or (cur is not None and cur > top):
            top = cur
        if cur is None or cur > top:
            cur = top
        for tag, value in (("memory", top), ("currentMemory", cur)):
            node = root.find(tag)
            if node is None:
                node = etree.SubElement(root, tag)
            node.set("unit", "KiB")
            node.text = str(value // 1024)

    def apply_live(self, target, changes, desired, ctx):
        target.setMemoryFlags(desired["memory"] // 1024, AFFECT_LIVE)


SECURE_BOOT_FEATURES = ("secure-boot", "enrolled-keys")


class OsGroup(OptionGroup):
    """<os>: arch, machine, firmware (bios/efi), Secure Boot and the boot order.

    Secure Boot is asked of libvirt's firmware auto-selection (<os firmware='efi'><firmware><feature
    name='secure-boot'/><feature name='enrolled-keys'/>): it picks the firmware build whose descriptor
    has both (OVMF with SMM and the Microsoft keys in its variable store template); that firmware
    needs SMM (<features><smm state='on'/>) and a q35 machine.
    """

    name = "os"
    argument_spec = dict(
        arch=dict(type="str"),
        machine=dict(type="str"),
        firmware=dict(type="str", choices=["bios", "efi"]),
        secure_boot=dict(type="bool"),
        boot=dict(type="list", elements="str"),
    )
    BOOT_DEVICES = ("hd", "cdrom", "network", "fd")

    def desired(self, params, ctx):
        out = {}
        if _set(params, "arch"):
            out["arch"] = params["arch"]
        if _set(params, "machine"):
            out["machine"] = ctx.host.canonical_machine(params["machine"], params.get("arch"))
        if _set(params, "firmware"):
            out["firmware"] = params["firmware"]
        if _set(params, "secure_boot"):
            out["secure_boot"] = params["secure_boot"]
            if params["secure_boot"]:
                if params.get("firmware") == "bios":
                    raise ctx.error("Secure Boot is a UEFI feature", "secure_boot", fix="Set firmware: efi")
                out["firmware"] = "efi"
                machine = out.get("machine")
                if machine and "q35" not in machine:
                    raise ctx.error("Secure Boot firmware needs a q35 machine, not %s" % machine, "secure_boot",
                                    fix="Set machine: q35 (a new machine type needs the guest to be redefined)")
                if not machine and ctx.get("creating") and not ctx.get("base_root_has", {}).get("os"):
                    out["machine"] = ctx.host.canonical_machine("q35", params.get("arch"))
        if params.get("boot") is not None:
            for i, dev in enumerate(params["boot"]):
                if dev not in self.BOOT_DEVICES:
                    raise ctx.error("%r is not a boot device" % dev, "boot[%d]" % i,
                                    fix="Use %s" % ", ".join(self.BOOT_DEVICES))
            out["boot"] = list(params["boot"])
        elif ctx.get("creating") and not ctx.get("base_root_has", {}).get("os"):
            out["boot"] = ["hd"]
        return out

    def current(self, root, ctx):
        os_node = root.find("os")
        out = dict(arch=None, machine=None, firmware="bios", secure_boot=False, boot=[])
        if os_node is None:
            return out
        type_node = os_node.find("type")
        if type_node is not None:
            out["arch"] = type_node.get("arch")
            out["machine"] = type_node.get("machine")
        loader = os_node.find("loader")
        if os_node.get("firmware") == "efi" or (loader is not None and loader.get("type") == "pflash"):
            out["firmware"] = "efi"
        out["secure_boot"] = self._secure_boot(os_node)
        out["boot"] = [b.get("dev") for b in os_node.iterfind("boot")]
        return out

    def write(self, root, desired, ctx):
        os_node = path_element(root, "os", create=True)
        type_node = os_node.find("type")
        if type_node is None:
            type_node = etree.Element("type")
            os_node.insert(0, type_node)
        type_node.text = type_node.text or "hvm"
        for key in ("arch", "machine"):
            if key in desired:
                type_node.set(key, desired[key])
        if "firmware" in desired:
            if desired["firmware"] == "efi":
                os_node.set("firmware", "efi")
            else:
                os_node.attrib.pop("firmware", None)
                remove(os_node.find("loader"))
                remove(os_node.find("nvram"))
                remove(os_node.find("firmware"))
        if "secure_boot" in desired:
            self._write_secure_boot(root, os_node, type_node, desired["secure_boot"], ctx)
        if "boot" in desired:
            for node in os_node.findall("boot"):
                remove(node)
            pos = os_node.index(type_node) + 1
            for offset, dev in enumerate(desired["boot"]):
                os_node.insert(pos + offset, etree.Element("boot", dev=dev))

    @staticmethod
    def _secure_boot(os_node):
        feature = os_node.find("firmware/feature[@name='secure-boot']")
        if feature is not None:
            return feature.get("enabled") == "yes"
        loader = os_node.find("loader")
        return loader is not None and loader.get("secure") == "yes"

    def _write_secure_boot(self, root, os_node, type_node, enabled, ctx):
        """Ask auto-selection again, only when the setting changes (the group is rewritten for any change)."""
        if self._secure_boot(os_node) == enabled:
            return
        machine = type_node.get("machine") or ""
        if enabled and machine and "q35" not in machine:
            raise ctx.error("Secure Boot firmware needs a q35 machine, not %s" % machine, "secure_boot",
                            fix="Set machine: q35 (a new machine type needs the guest to be redefined)")
        if os_node.get("firmware") != "efi":
            raise ctx.error("the domain's UEFI firmware is set by path (<loader>), not chosen by libvirt",
                            "secure_boot", fix="Set firmware: efi as well, to let libvirt choose the firmware")
        firmware = os_node.find("firmware")
        if firmware is None:
            firmware = etree.Element("firmware")
            os_node.insert(os_node.index(type_node) + 1, firmware)
        for name in SECURE_BOOT_FEATURES:
            node = firmware.find("feature[@name='%s']" % name)
            if node is None:
                node = etree.SubElement(firmware, "feature")
            node.set("enabled", "yes" if enabled else "no")
            node.set("name", name)
        # the firmware build and variable store template chosen for the old setting (libvirt 9.2 and later
        # keep them in the definition, and a template that does not match filters every candidate out):
        # auto-selection chooses again; the store's own path stays
        remove(os_node.find("loader"))
        nvram = os_node.find("nvram")
        if nvram is not None:
            for key in ("template", "templateFormat"):
                nvram.attrib.pop(key, None)
        if enabled:
            path_element(root, "features/smm", create=True).set("state", "on")


def _devices(root):
    return path_element(root, "devices", create=True)


class SerialConsoleGroup(OptionGroup):
    """A serial port on a pty and the console on it (``virsh console``)."""

    name = "serial_console"
    argument_spec = dict(serial_console=dict(type="bool"))

    def desired(self, params, ctx):
        if _set(params, "serial_console"):
            return dict(enabled=params["serial_console"])
        if ctx.get("creating") and not ctx.get("base_root_has"):
            return dict(enabled=True)
        return {}

    def current(self, root, ctx):
        return dict(enabled=root.find("./devices/serial") is not None or root.find("./devices/console") is not None)

    def write(self, root, desired, ctx):
        devices = _devices(root)
        if desired["enabled"]:
            if devices.find("serial") is None:
                serial = etree.SubElement(devices, "serial", type="pty")
                etree.SubElement(serial, "target", port="0")
            if devices.find("console") is None:
                console = etree.SubElement(devices, "console", type="pty")
                etree.SubElement(console, "target", type="serial", port="0")
        else:
            for tag in ("serial", "console"):
                for node in devices.findall(tag):
                    remove(node)


AGENT_CHANNEL = "org.qemu.guest_agent.0"


class GuestAgentGroup(OptionGroup):
    """The virtio-serial channel of the QEMU guest agent."""

    name = "guest_agent"
    argument_spec = dict(guest_agent=dict(type="bool"))

    def desired(self, params, ctx):
        if _set(params, "guest_agent"):
            return dict(enabled=params["guest_agent"])
        if ctx.get("creating") and not ctx.get("base_root_has"):
            return dict(enabled=True)
        return {}

    @staticmethod
    def _channels(root):
        return [c for c in root.iterfind("./devices/channel") if c.find("target") is not None
                and c.find("target").get("name") == AGENT_CHANNEL]

    def current(self, root, ctx):
        return dict(enabled=bool(self._channels(root)))

    def write(self, root, desired, ctx):
        found = self._channels(root)
        if desired["enabled"] and not found:
            channel = etree.SubElement(_devices(root), "channel", type="unix")
            etree.SubElement(channel, "target", type="virtio", name=AGENT_CHANNEL)
        elif not desired["enabled"]:
            for node in found:
                remove(node)


class GraphicsGroup(OptionGroup):
    """Graphics: none, or VNC/SPICE listening on loopback unless told otherwise."""

    name = "graphics"
    argument_spec = dict(
        graphics=dict(type="str", choices=["none", "vnc", "spice"]),
        graphics_listen=dict(type="str"),
    )

    def desired(self, params, ctx):
        kind = params.get("graphics")
        if kind is None and _set(params, "graphics_listen"):
            raise ctx.error("graphics_listen needs graphics vnc or spice", "graphics_listen")
        if kind is None:
            return dict(type="none") if ctx.get("creating") and not ctx.get("base_root_has", {}).get("graphics") \
                else {}
        if kind == "none":
            return dict(type="none")
        return dict(type=kind, listen=params.get("graphics_listen") or "127.0.0.1")

    def current(self, root, ctx):
        node = root.find("./devices/graphics")
        if node is None:
            return dict(type="none", listen=None)
        listen = node.get("listen")
        lnode = node.find("listen")
        if listen is None and lnode is not None:
            listen = lnode.get("address")
        return dict(type=node.get("type"), listen=listen)

    def write(self, root, desired, ctx):
        devices = _devices(root)
        nodes = devices.findall("graphics")
        if desired["type"] == "none":
            for node in nodes:
                remove(node)
            return
        node = nodes[0] if nodes and nodes[0].get("type") == desired["type"] else None
        for other in nodes:
            if other is not node:
                remove(other)
        if node is None:
            node = etree.SubElement(devices, "graphics", type=desired["type"], autoport="yes")
        node.set("listen", desired["listen"])
        for lnode in node.findall("listen"):
            remove(lnode)
        etree.SubElement(node, "listen", type="address", address=desired["listen"])


def metadata_instance(root, create=False):
    """The collection's own element in <metadata> (<vf:instance>): tags, traffic classes."""
    metadata = root.find("metadata")
    if metadata is None:
        if not create:
            return None
        metadata = etree.SubElement(root, "metadata")
    node = metadata.find("{%s}%s" % (METADATA_NS, METADATA_ROOT))
    if node is None and create:
        node = etree.SubElement(metadata, "{%s}%s" % (METADATA_NS, METADATA_ROOT),
                                nsmap={METADATA_PREFIX: METADATA_NS})
    return node


class TagsGroup(OptionGroup):
    """Tags in the collection's own <metadata> element (read by domain_info and the inventory)."""

    name = "tags"
    argument_spec = dict(tags=dict(type="list", elements="str"))
    live_keys = frozenset(["tags"])

    def desired(self, params, ctx):
        if params.get("tags") is None:
            return {}
        tags = []
        for i, tag in enumerate(params["tags"]):
            tag = str(tag).strip()
            if not tag or "\n" in tag:
                raise ctx.error("%r is not a tag" % params["tags"][i], "tags[%d]" % i,
                                fix="Tags are non-empty single-line strings")
            if tag not in tags:
                tags.append(tag)
        return dict(tags=sorted(tags))

    _instance = staticmethod(metadata_instance)

    def current(self, root, ctx):
        node = self._instance(root)
        if node is None:
            return dict(tags=[])
        return dict(tags=sorted({t.text.strip() for t in node.iterfind("{%s}tag" % METADATA_NS) if t.text}))

    def write(self, root, desired, ctx):
        node = self._instance(root, create=True)
        for tag in node.findall("{%s}tag" % METADATA_NS):
            node.remove(tag)
        for tag in desired["tags"]:
            etree.SubElement(node, "{%s}tag" % METADATA_NS).text = tag

    def apply_live(self, target, changes, desired, ctx):
        from .appqos import push_live_metadata
        push_live_metadata(target, ctx["plan_after_root"])


class AutostartGroup(OptionGroup):
    """Start the domain with libvirtd. Not XML: read and set through the domain object."""

    name = "autostart"
    argument_spec = dict(autostart=dict(type="bool"))
    live_keys = frozenset(["autostart"])
    xml = False

    def desired(self, params, ctx):
        return dict(autostart=params["autostart"]) if _set(params, "autostart") else {}

    def current(self, root, ctx):
        dom = ctx.get("domain")
        return dict(autostart=bool(dom.autostart()) if dom is not None else False)

    def write(self, root, desired, ctx):
        """Nothing in the XML; the manager calls setAutostart after defining."""

    def apply_live(self, target, changes, desired, ctx):
        """Applied by the manager whatever the domain's state."""
