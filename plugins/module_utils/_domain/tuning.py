# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CPU and memory tuning of a domain: <cputune>, <memtune>, <numatune>, <memoryBacking>.

Each is one option group of the domain engine. What libvirt can change on a running guest
is applied live through the same calls ``virsh schedinfo``, ``vcpupin``, ``emulatorpin`` and
``memtune`` use (cgroups and CPU affinity of the QEMU process); the rest waits for a restart
and is reported as ``restart_required``.
"""

from __future__ import annotations

from .._engine import OptionGroup, remove
from .._validate import parse_size, xml_size_to_bytes

try:
    from lxml import etree
except ImportError:  # pragma: no cover - reported by _libvirt.check_libraries
    etree = None

AFFECT_LIVE = 1  # libvirt.VIR_DOMAIN_AFFECT_LIVE
#: libvirt.VIR_DOMAIN_MEMORY_PARAM_UNLIMITED, in KiB: "no limit" for memtune values
MEMORY_UNLIMITED_KIB = 9007199254740991
UNLIMITED = "unlimited"

# option -> (XML element under <cputune>, virDomainSetSchedulerParameters key, minimum, maximum)
SCHED_KEYS = dict(
    shares=("shares", "cpu_shares", 2, 262144),
    period=("period", "vcpu_period", 1000, 1000000),
    quota=("quota", "vcpu_quota", 1000, 17592186044415),
    emulator_period=("emulator_period", "emulator_period", 1000, 1000000),
    emulator_quota=("emulator_quota", "emulator_quota", 1000, 17592186044415),
    global_period=("global_period", "global_period", 1000, 1000000),
    global_quota=("global_quota", "global_quota", 1000, 17592186044415),
)
MEMTUNE_KEYS = ("hard_limit", "soft_limit", "swap_hard_limit")
NUMA_MODES = ("strict", "preferred", "interleave", "restrictive")
HUGEPAGES_DIR = "/sys/kernel/mm/hugepages"


def parse_cpuset(value, option, ctx, known=None, what="CPU"):
    """``"0-3,^2,6"`` -> ``{0, 1, 3, 6}`` (libvirt's cpuset syntax); ``known`` are the ids that exist."""
    text = str(value).strip() if value is not None else ""
    chosen, excluded = set(), set()
    try:
        for part in text.split(","):
            part = part.strip()
            if not part:
                raise ValueError
            target = excluded if part.startswith("^") else chosen
            part = part.lstrip("^")
            if "-" in part:
                low, high = (int(x) for x in part.split("-", 1))
                if low > high or low < 0:
                    raise ValueError
                target.update(range(low, high + 1))
            else:
                number = int(part)
                if number < 0:
                    raise ValueError
                target.add(number)
    except ValueError:
        raise ctx.error("%r is not a %s set" % (value, what), option,
                        fix="Use libvirt's syntax: numbers and ranges separated by commas, ^N to exclude, "
                            "e.g. '0-3,^2' or '4,6'") from None
    result = chosen - excluded
    if not result:
        raise ctx.error("%r selects no %s" % (value, what), option)
    if known:
        missing = sorted(result - set(known))
        if missing:
            raise ctx.error("%s %s not on this host (it has %s)" % (
                what, format_cpuset(missing) + (" are" if len(missing) > 1 else " is"), format_cpuset(known)),
                option, fix="Pick %ss the host has (virtforge.libvirt.host_info lists them)" % what)
    return result


def format_cpuset(ids):
    """``{0, 1, 2, 5}`` -> ``"0-2,5"``: the canonical form libvirt writes back."""
    ids = sorted(set(int(i) for i in ids))
    out, start = [], None
    for pos, number in enumerate(ids):
        if start is None:
            start = number
        if pos + 1 == len(ids) or ids[pos + 1] != number + 1:
            out.append(str(start) if start == number else "%d-%d" % (start, number))
            start = None
    return ",".join(out)


def _host_ids(ctx, kind):
    getter = getattr(ctx.host, "host_%s_ids" % kind, None)
    try:
        return getter() if getter else None
    except Exception:  # pragma: no cover - a driver without host topology
        return None


def _cpumap(ids, ctx):
    total = ctx["conn"].getCPUMap(0)[0]
    return tuple(i in ids for i in range(total))


def _max_vcpus(root):
    node = root.find("vcpu")
    return int(node.text) if node is not None and node.text else None


def _max_memory(root):
    node = root.find("memory")
    return xml_size_to_bytes(node.text, node.get("unit")) if node is not None and node.text else None


class CpuTuneGroup(OptionGroup):
    """<cputune>: CFS shares, period and quota (vCPUs, emulator, whole domain); vCPU and emulator pinning."""

    name = "cputune"
    argument_spec = dict(cputune=dict(type="dict", options=dict(
        shares=dict(type="int"),
        period=dict(type="int"),
        quota=dict(type="int"),
        emulator_period=dict(type="int"),
        emulator_quota=dict(type="int"),
        global_period=dict(type="int"),
        global_quota=dict(type="int"),
        vcpu_pins=dict(type="dict"),
        emulator_pin=dict(type="str"),
    )))
    live_keys = frozenset(list(SCHED_KEYS) + ["vcpu_pins", "emulator_pin"])

    def desired(self, params, ctx):
        tune = params.get("cputune")
        if tune is None:
            return {}
        out = {}
        for key, (_tag, _param, low, high) in SCHED_KEYS.items():
            value = tune.get(key)
            if value is None:
                continue
            if key.endswith("quota") and value == -1:
                out[key] = -1  # no limit
                continue
            if not low <= value <= high:
                extra = " or -1 for no limit" if key.endswith("quota") else ""
                raise ctx.error("%d is out of range: %d to %d%s" % (value, low, high, extra), "cputune." + key,
                                fix="Quota and period are in microseconds; quota/period is the share of a "
                                    "host CPU (50000/100000 = half a CPU)" if "quota" in key or "period" in key
                                else "Shares are relative weights; 1024 is libvirt's default")
            out[key] = value
        cpus = _host_ids(ctx, "cpu")
        if tune.get("vcpu_pins") is not None:
            pins = {}
            for vcpu, cpuset in tune["vcpu_pins"].items():
                option = "cputune.vcpu_pins.%s" % vcpu
                try:
                    index = int(vcpu)
                    if index < 0:
                        raise ValueError
                except (TypeError, ValueError):
                    raise ctx.error("%r is not a vCPU number" % (vcpu,), option,
                                    fix="Map vCPU numbers (0, 1, ...) to host CPU sets, e.g. {0: '2', 1: '3'}"
                                    ) from None
                pins[index] = format_cpuset(parse_cpuset(cpuset, option, ctx, known=cpus))
            out["vcpu_pins"] = pins
        if tune.get("emulator_pin") is not None:
            out["emulator_pin"] = format_cpuset(parse_cpuset(tune["emulator_pin"], "cputune.emulator_pin", ctx,
                                                             known=cpus))
        return out

    def current(self, root, ctx):
        node = root.find("cputune")
        out = {key: None for key in SCHED_KEYS}
        out["vcpu_pins"] = {}
        out["emulator_pin"] = None
        if node is None:
            return out
        for key, (tag, _param, _low, _high) in SCHED_KEYS.items():
            text = node.findtext(tag)
            if text is not None:
                out[key] = int(text)
        for pin in node.iterfind("vcpupin"):
            out["vcpu_pins"][int(pin.get("vcpu"))] = format_cpuset(parse_cpuset(pin.get("cpuset"), "cputune", ctx))
        pin = node.find("emulatorpin")
        if pin is not None:
            out["emulator_pin"] = format_cpuset(parse_cpuset(pin.get("cpuset"), "cputune", ctx))
        return out

    def compare(self, desired, current, ctx):
        want = dict(desired)
        for key in [k for k in want if k.endswith("quota") and want[k] == -1]:
            if current.get(key) in (None, -1):
                del want[key]  # no limit either way: libvirt omits -1 or keeps it
        return super().compare(want, current, ctx)

    def write(self, root, desired, ctx):
        top = _max_vcpus(root)
        for vcpu in desired.get("vcpu_pins", {}):
            if top is not None and vcpu >= top:
                raise ctx.error("vCPU %d does not exist: the domain has at most %d vCPU(s), numbered from 0"
                                % (vcpu, top), "cputune.vcpu_pins",
                                fix="Pin vCPUs 0 to %d, or raise max_vcpus" % (top - 1))
        node = root.find("cputune")
        if node is None:
            node = etree.SubElement(root, "cputune")
        for key, (tag, _param, _low, _high) in SCHED_KEYS.items():
            if key not in desired:
                continue
            old = node.find(tag)
            if old is None:
                old = etree.SubElement(node, tag)
            old.text = str(desired[key])
        if "vcpu_pins" in desired:
            for pin in list(node.iterfind("vcpupin")):
                remove(pin)
            for vcpu, cpuset in sorted(desired["vcpu_pins"].items()):
                etree.SubElement(node, "vcpupin", vcpu=str(vcpu), cpuset=cpuset)
        if "emulator_pin" in desired:
            remove(node.find("emulatorpin"))
            etree.SubElement(node, "emulatorpin", cpuset=desired["emulator_pin"])
        if len(node) == 0:
            remove(node)

    def apply_live(self, target, changes, desired, ctx):
        keys = {c.key for c in changes}
        sched = {SCHED_KEYS[k][1]: desired[k] for k in keys if k in SCHED_KEYS}
        if sched:
            target.setSchedulerParametersFlags(sched, AFFECT_LIVE)
        everything = set(range(ctx["conn"].getCPUMap(0)[0]))
        if "vcpu_pins" in keys:
            online = target.vcpusFlags(AFFECT_LIVE)
            before = next(c.before for c in changes if c.key == "vcpu_pins") or {}
            pins = desired["vcpu_pins"]
            for vcpu in sorted(set(before) | set(pins)):
                if vcpu >= online:
                    continue  # an offline vCPU takes its pin from the definition when it is hot-added
                ids = parse_cpuset(pins[vcpu], "cputune.vcpu_pins", ctx) if vcpu in pins else everything
                target.pinVcpuFlags(vcpu, _cpumap(ids, ctx), AFFECT_LIVE)
        if "emulator_pin" in keys:
            target.pinEmulator(_cpumap(parse_cpuset(desired["emulator_pin"], "cputune.emulator_pin", ctx), ctx),
                               AFFECT_LIVE)


def _memtune_size(value, option, ctx):
    if isinstance(value, str) and value.strip().lower() == UNLIMITED:
        return UNLIMITED
    size = parse_size(value, ctx.opt(option), default_unit="mib")
    if size < 1024 ** 2:
        raise ctx.error("%r is below 1 MiB" % (value,), option,
                        fix="Give a size such as '2GiB', a number of MiB, or 'unlimited'")
    return size // 1024 * 1024


class MemTuneGroup(OptionGroup):
    """<memtune>: the QEMU process's memory cgroup limits (hard, soft, memory+swap)."""

    name = "memtune"
    argument_spec = dict(memtune=dict(type="dict", options=dict(
        hard_limit=dict(type="raw"),
        soft_limit=dict(type="raw"),
        swap_hard_limit=dict(type="raw"),
    )))
    live_keys = frozenset(MEMTUNE_KEYS)

    def desired(self, params, ctx):
        tune = params.get("memtune")
        if tune is None:
            return {}
        out = {key: _memtune_size(tune[key], "memtune." + key, ctx) for key in MEMTUNE_KEYS
               if tune.get(key) is not None}
        hard, swap, soft = out.get("hard_limit"), out.get("swap_hard_limit"), out.get("soft_limit")
        if isinstance(hard, int) and isinstance(swap, int) and swap < hard:
            raise ctx.error("swap_hard_limit (memory plus swap) is less than hard_limit", "memtune.swap_hard_limit",
                            fix="Set swap_hard_limit to at least hard_limit, or leave it out")
        if isinstance(hard, int) and isinstance(soft, int) and soft > hard:
            raise ctx.error("soft_limit is above hard_limit", "memtune.soft_limit",
                            fix="Set soft_limit below hard_limit")
        return out

    def current(self, root, ctx):
        out = {key: UNLIMITED for key in MEMTUNE_KEYS}
        node = root.find("memtune")
        if node is not None:
            for key in MEMTUNE_KEYS:
                item = node.find(key)
                if item is not None and item.text:
                    size = xml_size_to_bytes(item.text, item.get("unit"))
                    out[key] = UNLIMITED if size // 1024 >= MEMORY_UNLIMITED_KIB else size
        return out

    def write(self, root, desired, ctx):
        hard = desired.get("hard_limit")
        top = _max_memory(root)
        if isinstance(hard, int) and top is not None and hard <= top:
            raise ctx.error("a hard limit of %d MiB is not above the guest's memory (%d MiB): the kernel would "
                            "kill QEMU as soon as the guest uses its memory" % (hard // 1024 ** 2, top // 1024 ** 2),
                            "memtune.hard_limit",
                            fix="Allow the guest's maximum memory plus QEMU's own (a few hundred MiB), or leave "
                                "hard_limit out")
        node = root.find("memtune")
        if node is None:
            node = etree.SubElement(root, "memtune")
        for key in MEMTUNE_KEYS:
            if key not in desired:
                continue
            remove(node.find(key))
            if desired[key] != UNLIMITED:
                etree.SubElement(node, key, unit="KiB").text = str(desired[key] // 1024)
        if len(node) == 0:
            remove(node)

    def apply_live(self, target, changes, desired, ctx):
        values = {}
        for change in changes:
            value = desired[change.key]
            values[change.key] = MEMORY_UNLIMITED_KIB if value == UNLIMITED else value // 1024
        target.setMemoryParameters(values, AFFECT_LIVE)


class NumaTuneGroup(OptionGroup):
    """<numatune><memory mode nodeset>: which host NUMA nodes the guest's memory comes from."""

    name = "numatune"
    argument_spec = dict(numatune=dict(type="dict", options=dict(
        mode=dict(type="str", choices=list(NUMA_MODES)),
        nodeset=dict(type="str"),
    )))

    def desired(self, params, ctx):
        tune = params.get("numatune")
        if tune is None:
            return {}
        out = {}
        if tune.get("mode") is not None:
            out["mode"] = tune["mode"]
        if tune.get("nodeset") is not None:
            out["nodeset"] = format_cpuset(parse_cpuset(tune["nodeset"], "numatune.nodeset", ctx,
                                                        known=_host_ids(ctx, "numa_node"), what="NUMA node"))
        return out

    def current(self, root, ctx):
        node = root.find("numatune/memory")
        if node is None:
            return dict(mode=None, nodeset=None)
        nodeset = node.get("nodeset")
        return dict(mode=node.get("mode", "strict"),
                    nodeset=format_cpuset(parse_cpuset(nodeset, "numatune", ctx)) if nodeset else None)

    def compare(self, desired, current, ctx):
        want = dict(desired)
        if current.get("mode") is None and want.get("mode") == "strict" and "nodeset" not in want:
            want.pop("mode")  # strict is libvirt's default, and without a nodeset it says nothing
        return super().compare(want, current, ctx)

    def write(self, root, desired, ctx):
        tune = root.find("numatune")
        if tune is None:
            tune = etree.SubElement(root, "numatune")
        node = tune.find("memory")
        if node is None:
            node = etree.SubElement(tune, "memory")
        for key in ("mode", "nodeset"):
            if key in desired:
                node.set(key, desired[key])
        if node.get("nodeset") is None and node.get("mode") not in (None, "strict"):
            raise ctx.error("mode %s needs a nodeset" % node.get("mode"), "numatune.nodeset",
                            fix="Name the host NUMA nodes, e.g. nodeset: '0'")


class MemoryBackingGroup(OptionGroup):
    """<memoryBacking>: hugepages (of a given size) and locked (never swapped) guest memory."""

    name = "memory_backing"
    argument_spec = dict(memory_backing=dict(type="dict", options=dict(
        hugepages=dict(type="bool"),
        hugepage_size=dict(type="raw"),
        locked=dict(type="bool"),
    )))

    def desired(self, params, ctx):
        backing = params.get("memory_backing")
        if backing is None:
            return {}
        out = {}
        if backing.get("hugepage_size") is not None:
            if backing.get("hugepages") is False:
                raise ctx.error("a hugepage size goes with hugepages: true", "memory_backing.hugepage_size")
            size = parse_size(backing["hugepage_size"], ctx.opt("memory_backing.hugepage_size"), default_unit="kib")
            if size not in (2 * 1024 ** 2, 1024 ** 3, 64 * 1024, 32 * 1024 ** 2, 512 * 1024 ** 2, 16 * 1024 ** 3):
                raise ctx.error("%r is not a hugepage size" % (backing["hugepage_size"],),
                                "memory_backing.hugepage_size", fix="x86-64 hosts have '2MiB' and '1GiB' pages")
            out["hugepages"] = True
            out["hugepage_size"] = size
        if backing.get("hugepages") is not None:
            out["hugepages"] = backing["hugepages"]
        if backing.get("locked") is not None:
            out["locked"] = backing["locked"]
        if out.get("hugepages"):
            self._warn_free_pages(out.get("hugepage_size", 2 * 1024 ** 2), params, ctx)
        return out

    @staticmethod
    def _warn_free_pages(size, params, ctx):
        """A guest on hugepages does not start without enough free ones; say so at define time."""
        if not getattr(ctx.host, "local_files", False):
            return
        path = "%s/hugepages-%dkB/free_hugepages" % (HUGEPAGES_DIR, size // 1024)
        try:
            with open(path) as handle:
                free = int(handle.read().strip()) * size
        except (OSError, ValueError):
            ctx.host.warn("%s: this host has no %d KiB hugepages; the domain will not start until some are "
                          "reserved (vm.nr_hugepages or hugepages= on the kernel command line)"
                          % (ctx.opt("memory_backing"), size // 1024))
            return
        need = parse_size(params.get("max_memory") or params.get("memory") or 0, "memory", default_unit="mib")
        if free == 0 or free < need:
            ctx.host.warn("%s: %d MiB of free %d KiB hugepages on this host, the guest needs %d MiB; it will not "
                          "start until more are reserved" % (ctx.opt("memory_backing"), free // 1024 ** 2,
                                                             size // 1024, need // 1024 ** 2))

    def current(self, root, ctx):
        node = root.find("memoryBacking")
        out = dict(hugepages=False, hugepage_size=None, locked=False)
        if node is None:
            return out
        pages = node.find("hugepages")
        if pages is not None:
            out["hugepages"] = True
            page = pages.find("page")
            if page is not None:
                out["hugepage_size"] = xml_size_to_bytes(page.get("size"), page.get("unit"))
        out["locked"] = node.find("locked") is not None
        return out

    def write(self, root, desired, ctx):
        node = root.find("memoryBacking")
        if node is None:
            node = etree.SubElement(root, "memoryBacking")
        if "hugepages" in desired:
            remove(node.find("hugepages"))
            if desired["hugepages"]:
                pages = etree.SubElement(node, "hugepages")
                if desired.get("hugepage_size"):
                    etree.SubElement(pages, "page", size=str(desired["hugepage_size"] // 1024), unit="KiB")
        if "locked" in desired:
            remove(node.find("locked"))
            if desired["locked"]:
                etree.SubElement(node, "locked")
        if len(node) == 0:
            remove(node)
