# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The domain document: its option groups in order, an optional user XML as the base, and the
``domain`` module's argument_spec (group options + lifecycle options + ``domains`` batches)."""

from __future__ import annotations

import copy

from .._engine import DocumentSpec, parse_xml
from .._libvirt import CONNECTION_ARGSPEC
from .buslimits import check_hotplug_slots
from .devices import ControllerGroup, DiskGroup, InterfaceGroup, RngGroup, WatchdogGroup
from .hostdev import HostdevGroup
from .groups import (
    AutostartGroup, CpuGroup, DomainTypeGroup, GraphicsGroup, GuestAgentGroup, IdentityGroup, MemoryGroup,
    OsGroup, SerialConsoleGroup, TagsGroup,
)
from .platform import BalloonGroup, IommuGroup, TpmGroup
from .tuning import CpuTuneGroup, MemoryBackingGroup, MemTuneGroup, NumaTuneGroup

try:
    from lxml import etree
except ImportError:  # pragma: no cover - reported by _libvirt.check_libraries
    etree = None

STATES = ["present", "running", "stopped", "paused", "absent"]

# Options that steer what happens to a domain rather than describe it.
LIFECYCLE_ARGSPEC = dict(
    state=dict(type="str", choices=STATES),
    xml=dict(type="str"),
    allow_restart=dict(type="bool"),
    force_stop=dict(type="bool"),
    shutdown_timeout=dict(type="int"),
    wait_for=dict(type="list", elements="str", choices=["agent", "ip"]),
    wait_timeout=dict(type="int"),
    remove_storage=dict(type="bool"),
)
LIFECYCLE_DEFAULTS = dict(state="present", allow_restart=False, force_stop=False, shutdown_timeout=120,
                          wait_timeout=300, remove_storage=False)
# Options never inherited by the items of ``domains`` from the top level.
NOT_SHARED = ("name", "uuid", "xml")


class DomainSpec(DocumentSpec):
    kind = "domain"
    root_tag = "domain"
    groups = (
        IdentityGroup(), DomainTypeGroup(), CpuGroup(), MemoryGroup(), CpuTuneGroup(), MemTuneGroup(),
        NumaTuneGroup(), MemoryBackingGroup(), OsGroup(), ControllerGroup(), DiskGroup(),
        InterfaceGroup(), RngGroup(), WatchdogGroup(), HostdevGroup(), BalloonGroup(), TpmGroup(), IommuGroup(),
        SerialConsoleGroup(), GuestAgentGroup(), GraphicsGroup(), TagsGroup(), AutostartGroup(),
    )

    def new_root(self, ctx):
        base = ctx.get("base_root")
        if base is not None:
            return copy.deepcopy(base)
        root = etree.Element("domain")
        etree.SubElement(root, "name").text = ctx["name"]
        features = etree.SubElement(root, "features")
        etree.SubElement(features, "acpi")
        etree.SubElement(features, "apic")
        return root

    def plan(self, name, params, current_xml, ctx):
        plan = super().plan(name, params, current_xml, ctx)
        hotplug = any(c.action == "add" and c.live for c in plan.changes)
        if hotplug and ctx.get("running") and ctx.get("domain") is not None:
            if ctx.get("live_root") is None:
                ctx["live_root"] = parse_xml(ctx["domain"].XMLDesc(0))
            check_hotplug_slots(plan.changes, {g.name: g for g in self.groups}, ctx["live_root"])
        return plan

    def desired(self, params, ctx):
        base = ctx.get("base_root")
        if base is not None and not ctx.get("creating"):
            return {g.name: self._merge_base(g, g.current(base, ctx), g.desired(params, ctx))
                    for g in self.groups}
        return super().desired(params, ctx)

    @staticmethod
    def _merge_base(group, from_base, want):
        """On an existing domain the user's XML says what it contains, nothing about what it lacks."""
        if not getattr(group, "xml", True):
            return want
        if "items" in from_base:
            if not from_base["items"]:
                return want
            items = {group.item_key(i): i for i in from_base["items"] if group.item_key(i)}
            for item in (want or {}).get("items", []):
                items[group.item_key(item)] = item
            return dict(items=list(items.values()), purge=bool((want or {}).get("purge")))
        absent = (None, "", [], False, "none", "bios")
        out = {k: v for k, v in from_base.items() if v not in absent and k != "name"}
        if group.name in ("serial_console", "guest_agent") and not from_base.get("enabled"):
            out = {}
        out.update(want)
        # An option that raises the current value above the XML's maximum raises the maximum
        # (as it does without XML), unless the maximum is an option too.
        for cur, top in (("memory", "max_memory"), ("vcpus", "max_vcpus")):
            if cur in want and top not in want and top in out and out[top] < want[cur]:
                del out[top]
        return out


def parse_base_xml(text, option):
    root = parse_xml(text, option=option)
    if root.tag != "domain":
        from .._errors import VirtforgeError
        raise VirtforgeError("the root element is <%s>, not <domain>" % root.tag, option=option,
                             fix="Pass a libvirt domain XML document")
    return root


def base_facts(root):
    """What a user XML already sets, so creation defaults do not override it."""
    return dict(vcpu=root.find("vcpu") is not None, memory=root.find("memory") is not None,
                os=root.find("os/boot") is not None, graphics=root.find("devices/graphics") is not None,
                type=bool(root.get("type")))


def module_argument_spec():
    """Top-level options = group options + lifecycle options (with defaults) + ``domains``."""
    groups = DomainSpec().argument_spec()
    top = dict(copy.deepcopy(groups), **copy.deepcopy(LIFECYCLE_ARGSPEC))
    for key, default in LIFECYCLE_DEFAULTS.items():
        top[key]["default"] = default
    # Items are validated one by one against item_argument_spec() (see manager.Entry): the
    # documentation then describes each option once, not once more under domains.
    top["domains"] = dict(type="list", elements="raw")
    top.update(CONNECTION_ARGSPEC)
    return top


def item_argument_spec():
    """The options one item of ``domains`` takes: all top-level ones but ``domains`` and ``uri``."""
    return dict(copy.deepcopy(DomainSpec().argument_spec()), **copy.deepcopy(LIFECYCLE_ARGSPEC))


def validate_item(item, index):
    """Validate and convert one ``domains`` item like Ansible validates top-level options."""
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
    from .._errors import VirtforgeError
    if isinstance(item, str) and item:
        item = dict(name=item)  # a bare name: the domain with the top-level options
    if not isinstance(item, dict):
        raise VirtforgeError("each item must be a dictionary of domain options or a domain name",
                             option="domains[%d]" % index)
    result = ArgumentSpecValidator(item_argument_spec()).validate(item)
    if result.error_messages:
        raise VirtforgeError("; ".join(result.error_messages), option="domains[%d]" % index,
                             fix="Each item takes the module's own options (name, vcpus, memory, disks...)")
    return result.validated_parameters
