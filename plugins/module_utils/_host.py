# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Facts about a hypervisor host, read from procfs/sysfs and libvirt.

Every file is read relative to ``root`` so unit tests run on fixture trees. Nothing here writes.
"""

from __future__ import annotations

import glob
import os
import re

try:
    from lxml import etree
except ImportError:  # pragma: no cover - reported by _libvirt.check_libraries
    etree = None

_NESTED_PARAMS = (("kvm_intel", "intel"), ("kvm_amd", "amd"))
#: class code 0x0604xx: PCI-to-PCI bridge (passed through never; the devices behind it are)
PCI_BRIDGE_CLASS = 0x0604
#: drivers a device may be on while another member of its IOMMU group is given to a guest
SAFE_DRIVERS = ("vfio-pci", "pci-stub")
#: the ACPI table that describes the IOMMU, and the kernel arguments that turn it on and keep host devices
#: on identity mappings (iommu=pt: no translation cost for devices the host keeps)
IOMMU_FIRMWARE = (("DMAR", "intel", ["intel_iommu=on", "iommu=pt"]), ("IVRS", "amd", ["iommu=pt"]))


def _path(root, rel):
    return os.path.join(root, rel.lstrip("/"))


def read_text(root, rel):
    try:
        with open(_path(root, rel)) as handle:
            return handle.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _int(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def cpu_info(root="/"):
    text = read_text(root, "/proc/cpuinfo") or ""
    flags, vendor, model, count = [], None, None, 0
    for line in text.splitlines():
        key, _sep, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "processor":
            count += 1
        elif key == "flags" and not flags:
            flags = value.split()
        elif key == "vendor_id" and vendor is None:
            vendor = value
        elif key == "model name" and model is None:
            model = value
    virt = [f for f in ("vmx", "svm") if f in flags]
    return dict(vendor=vendor, model=model, count=count, virtualization_flags=virt,
                hardware_virtualization=bool(virt),
                virtualization=("VT-x" if "vmx" in virt else "AMD-V" if "svm" in virt else None))


def kvm_info(root="/", cpu=None):
    cpu = cpu or cpu_info(root)
    device = os.path.exists(_path(root, "/dev/kvm"))
    module = None
    nested = None
    for name, _vendor in _NESTED_PARAMS:
        if os.path.isdir(_path(root, "/sys/module/%s" % name)):
            module = name
            value = read_text(root, "/sys/module/%s/parameters/nested" % name)
            if value is not None:
                nested = value.upper() in ("Y", "1")
            break
    usable = bool(cpu["hardware_virtualization"]) and device
    if usable:
        reason = None
    elif not cpu["hardware_virtualization"]:
        reason = "the CPU has no vmx/svm flag (no VT-x/AMD-V, or it is hidden from this machine)"
    else:
        reason = "/dev/kvm does not exist (kvm module not loaded, or virtualization off in the firmware)"
    return dict(usable=usable, device=device, module=module, nested=nested, reason=reason)


def iommu_groups(root="/"):
    """{group number (str): [member devices, e.g. 0000:03:00.1]}; empty when the IOMMU is off."""
    groups = {}
    for path in sorted(glob.glob(_path(root, "/sys/kernel/iommu_groups/*/devices/*"))):
        group = os.path.basename(os.path.dirname(os.path.dirname(path)))
        groups.setdefault(group, []).append(os.path.basename(path))
    return groups


def _link_name(root, rel):
    """The last component of a sysfs link (a driver's or an IOMMU group's name), None without the link."""
    try:
        return os.path.basename(os.readlink(_path(root, rel)))
    except OSError:
        return None


def pci_device(root, address):
    """What sysfs says about PCI device ``address`` (0000:03:00.1): its driver (None: bound to none), class
    code (0x060400 for a PCI bridge) and IOMMU group (None: the IOMMU does not cover it); None when absent."""
    rel = "/sys/bus/pci/devices/%s" % address
    if not os.path.isdir(_path(root, rel)):
        return None
    text = read_text(root, rel + "/class")
    try:
        code = int(text, 16) if text else None
    except ValueError:
        code = None
    return dict(address=address, driver=_link_name(root, rel + "/driver"), class_code=code,
                iommu_group=_link_name(root, rel + "/iommu_group"))


PCI_FORM = "domain:bus:slot.function as `lspci -D` prints it, e.g. 0000:03:00.1 (03:00.1 means domain 0000)"
_PCI_RE = re.compile(r"^(?:([0-9a-f]{4}):)?([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$")


def parse_pci_address(text):
    """``0000:03:00.1`` or ``03:00.1`` (any case) -> ``0000:03:00.1``; None when malformed."""
    match = _PCI_RE.match(str(text).strip().lower())
    if not match or int(match.group(3), 16) > 0x1f:  # 5 bits of slot
        return None
    return "%s:%s:%s.%s" % (match.group(1) or "0000", match.group(2), match.group(3), match.group(4))


def is_pci_bridge(info):
    return info is not None and info["class_code"] is not None and info["class_code"] >> 8 == PCI_BRIDGE_CLASS


def iommu_info(root="/"):
    groups = iommu_groups(root)
    cmdline = (read_text(root, "/proc/cmdline") or "").split()
    args = [a for a in cmdline if re.match(r"^(intel_iommu|amd_iommu|iommu)(=|\.)", a)]
    units = sorted(os.listdir(_path(root, "/sys/class/iommu"))) if os.path.isdir(_path(root, "/sys/class/iommu")) \
        else []
    ordered = sorted(groups.items(), key=lambda kv: _int(kv[0]) if _int(kv[0]) is not None else kv[0])
    firmware, suggested = None, []
    for table, vendor, wanted in IOMMU_FIRMWARE:
        if os.path.exists(_path(root, "/sys/firmware/acpi/tables/" + table)):
            firmware, suggested = vendor, list(wanted)
            break
    return dict(enabled=bool(groups), group_count=len(groups),
                groups=[dict(id=_int(k) if _int(k) is not None else k, devices=v) for k, v in ordered],
                units=units, kernel_args=args, firmware=firmware, suggested_kernel_args=suggested)


def meminfo(root="/", rel="/proc/meminfo"):
    out = {}
    for line in (read_text(root, rel) or "").splitlines():
        match = re.match(r"^(?:Node \d+ )?([\w()]+):\s+(\d+)(?:\s+kB)?", line)
        if match:
            factor = 1024 if line.rstrip().endswith("kB") else 1
            out[match.group(1)] = int(match.group(2)) * factor
    return out


def memory_info(root="/"):
    info = meminfo(root)
    return dict(total=info.get("MemTotal"), available=info.get("MemAvailable"), free=info.get("MemFree"),
                swap_total=info.get("SwapTotal"), hugepage_size=info.get("Hugepagesize"))


def numa_info(root="/"):
    nodes = []
    for path in sorted(glob.glob(_path(root, "/sys/devices/system/node/node[0-9]*")),
                       key=lambda p: int(re.sub(r"\D", "", os.path.basename(p)))):
        ident = int(os.path.basename(path)[4:])
        info = meminfo(root, "/sys/devices/system/node/node%d/meminfo" % ident)
        nodes.append(dict(id=ident, cpus=read_text(root, "/sys/devices/system/node/node%d/cpulist" % ident),
                          memory_total=info.get("MemTotal"), memory_free=info.get("MemFree")))
    return dict(node_count=len(nodes), nodes=nodes)


def hugepages_info(root="/"):
    sizes = []
    for path in glob.glob(_path(root, "/sys/kernel/mm/hugepages/hugepages-*kB")):
        size_kb = int(re.search(r"(\d+)kB$", path).group(1))
        base = "/sys/kernel/mm/hugepages/%s" % os.path.basename(path)
        sizes.append(dict(size=size_kb * 1024, total=_int(read_text(root, base + "/nr_hugepages")),
                          free=_int(read_text(root, base + "/free_hugepages"))))
    sizes.sort(key=lambda s: s["size"])
    return dict(sizes=sizes, default_size=memory_info(root).get("hugepage_size"))


def network_info(root="/"):
    bridges, bonds = [], []
    for path in sorted(glob.glob(_path(root, "/sys/class/net/*"))):
        name = os.path.basename(path)
        rel = "/sys/class/net/%s" % name
        if os.path.isdir(os.path.join(path, "bridge")):
            brif = os.path.join(path, "brif")
            delay = _int(read_text(root, rel + "/bridge/forward_delay"))
            bridges.append(dict(
                name=name, ports=sorted(os.listdir(brif)) if os.path.isdir(brif) else [],
                stp=(_int(read_text(root, rel + "/bridge/stp_state")) or 0) != 0,
                forward_delay=None if delay is None else delay // 100,
                vlan_filtering=read_text(root, rel + "/bridge/vlan_filtering") == "1",
                mtu=_int(read_text(root, rel + "/mtu")), operstate=read_text(root, rel + "/operstate")))
        if os.path.isdir(os.path.join(path, "bonding")):
            mode = (read_text(root, rel + "/bonding/mode") or "").split()
            bonds.append(dict(
                name=name, mode=mode[0] if mode else None,
                members=sorted((read_text(root, rel + "/bonding/slaves") or "").split()),
                active_member=read_text(root, rel + "/bonding/active_slave") or None,
                miimon=_int(read_text(root, rel + "/bonding/miimon")),
                mtu=_int(read_text(root, rel + "/mtu")), operstate=read_text(root, rel + "/operstate")))
    return dict(bridges=bridges, bonds=bonds)


def _version(number):
    if not number:
        return None
    return "%d.%d.%d" % (number // 1000000, (number // 1000) % 1000, number % 1000)


def domain_capabilities(conn, virttype):
    """A summary of virConnectGetDomainCapabilities for ``virttype`` (kvm or qemu)."""
    xml = conn.getDomainCapabilities(None, None, None, virttype, 0)
    root = etree.fromstring(xml.encode())

    def values(path):
        return [v.text for v in root.xpath(path)]

    vcpu = root.find("vcpu")
    return dict(
        domain=root.findtext("domain"), arch=root.findtext("arch"), machine=root.findtext("machine"),
        emulator=root.findtext("path"),
        max_vcpus=_int(vcpu.get("max")) if vcpu is not None else None,
        firmware=values("./os/enum[@name='firmware']/value") or values("./os/loader/value"),
        disk_buses=values("./devices/disk/enum[@name='bus']/value"),
        hostdev=root.xpath("string(./devices/hostdev/@supported)") == "yes",
        hostdev_subsystems=values("./devices/hostdev/enum[@name='subsysType']/value"),
        cpu_modes=[m.get("name") for m in root.xpath("./cpu/mode[@supported='yes']")],
        iommu=root.xpath("string(./features/iommu/@supported)") == "yes" if root.find("features/iommu") is not None
        else None,
    )


def libvirt_info(connect, kvm_usable, uri=None):
    """Versions and domain capabilities; ``connect()`` opens the connection (errors are reported, not raised)."""
    try:
        conn = connect()
    except Exception as exc:  # the host may not have libvirt yet: a fact, not a failure
        return dict(reachable=False, error=getattr(exc, "message", str(exc)), uri=uri)
    try:
        out = dict(reachable=True, uri=conn.getURI(), version=_version(conn.getLibVersion()),
                   hypervisor=conn.getType(), hypervisor_version=_version(conn.getVersion()))
        out["qemu_version"] = out["hypervisor_version"] if out["hypervisor"] == "QEMU" else None
        virttype = "kvm" if kvm_usable else "qemu"
        out["domain_type"] = virttype
        try:
            out["domain_capabilities"] = domain_capabilities(conn, virttype)
        except Exception as exc:  # e.g. a driver without domain capabilities
            out["domain_capabilities"] = None
            out["domain_capabilities_error"] = str(exc)
        return out
    finally:
        conn.close()


def gather(root="/", connect=None, uri=None):
    """All host facts. ``connect`` None skips libvirt (libvirt-python missing)."""
    cpu = cpu_info(root)
    kvm = kvm_info(root, cpu)
    facts = dict(cpu=cpu, kvm=kvm, kvm_usable=kvm["usable"], iommu=iommu_info(root), numa=numa_info(root),
                 hugepages=hugepages_info(root), memory=memory_info(root), network=network_info(root))
    if connect is not None:
        facts["libvirt"] = libvirt_info(connect, kvm["usable"], uri)
    else:
        facts["libvirt"] = dict(reachable=False, error="libvirt-python is not installed", uri=uri)
    return facts
